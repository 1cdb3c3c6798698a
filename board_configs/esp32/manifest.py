# Freeze manifest for an ESP32 MicroPython image with sipfw built in (docs/boards.md):
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=<this repo>/board_configs/esp32/manifest.py
# The port's own frozen modules first (asyncio, network helpers, ...), then the firmware.
include("$(PORT_DIR)/boards/manifest.py")
include("../sipua_manifest.py")
