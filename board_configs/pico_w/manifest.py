# Freeze manifest for a Raspberry Pi Pico W MicroPython image with sipfw built in
# (docs/boards.md):
#   make -C ports/rp2 BOARD=RPI_PICO_W FROZEN_MANIFEST=<this repo>/board_configs/pico_w/manifest.py
# The board's own manifest (the rp2 port's modules and the Pico W's networking bundle) first,
# then the firmware.
include("$(BOARD_DIR)/manifest.py")
include("../sipua_manifest.py")
