"""What differs per board, behind one small API chosen by ``sys.platform``.

``network_up(cfg, log) -> ip or None``, ``led(on)``, ``watchdog_start(ms)``, ``feed()``,
``heap_free()``, ``machine_id()``, ``link(ip, follow)`` (the address in use, None while the link is
down: the link watch's probe) and ``reconnect()``. esp32 and rp2 (Pico W) share ``mcu``
(``machine`` + Wi-Fi via ``network.WLAN``); everything else (``linux``: the virtual board,
a Raspberry Pi running the unix port, and CPython in tests) uses ``unix``, where the OS
owns the network.
Only the chosen module is imported, so a board never loads the other's code.
"""

import sys

PLATFORM = sys.platform

if PLATFORM in ("esp32", "rp2"):
    from .mcu import feed, heap_free, led, link, machine_id, network_up, reconnect, watchdog_start
else:
    from .unix import feed, heap_free, led, link, machine_id, network_up, reconnect, watchdog_start  # type: ignore

__all__ = ("feed", "heap_free", "led", "link", "machine_id", "network_up", "reconnect",
           "watchdog_start")
