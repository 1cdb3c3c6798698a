"""Every name the firmware will use, interned at boot while the heap is still whole.

MicroPython interns the identifiers and short strings of each ``.mpy`` it loads in qstr
pools that are never freed. A full pool is followed by one twice its size, allocated in one
piece (py/qstr.c): pools of 20, 40, ... 640 entries hold 1260 names, and the 1261st needs
1280 entries at once (~9 KB on a 32-bit board, ~14 KB on a 64-bit one). A phone's life as
``.mpy`` files reaches ~1350 names (registration, DNS, calls both ways, hold, the console,
a failover), so it meets that pool some day: at boot the block is there; months later a
fragmented heap can have 200 KB free and no 9 KB hole, and from then on every first import
fails (the hang-up's, say) while ordinary allocations still work.

So where the heap can afford the names up front (start-up decides: a Pico W, a Pi, the
virtual board; not a 100 KB ESP32, which should run a frozen build anyway), every module of
the package is imported once here and forgotten: its names stay, its bytecode goes. A frozen
build has its names in ROM and no package folder: nothing to do.
"""

import sys

from .compat import const, forget

_DIR = const(0x4000)


def _walk(path, pkg, out):
    import os

    for entry in os.ilistdir(path):
        name = entry[0]
        if entry[1] == _DIR:
            _walk(path + "/" + name, pkg + "." + name, out)
        elif name.endswith(".mpy") or name.endswith(".py"):
            name = name.rsplit(".", 1)[0]
            out.append(pkg if name == "__init__" else pkg + "." + name)


def claim(log):
    """Import and forget every module of the package not loaded yet; returns how many."""
    import gc
    import time

    path = getattr(sys.modules["sipua"], "__file__", None) or ""
    mods = []
    try:
        _walk(path.rsplit("/", 1)[0] if "/" in path else ".", "sipua", mods)
    except OSError:  # frozen: not a folder
        return 0
    t0 = time.ticks_ms()
    had = set(sys.modules)
    n = 0
    for name in mods:
        if name in had:
            continue
        full = False
        try:
            __import__(name)
        except MemoryError:
            full = True
        except Exception:  # noqa: BLE001 - no ssl or machine on this port: its names are in
            pass
        for loaded in list(sys.modules):
            if loaded not in had:
                forget(loaded)
        # the bytecode goes at once, so the next module's lands where it was rather than
        # beside it: the names' chunks stay packed and the big pools find their block
        gc.collect()
        if full:
            log.warn("app", "names_unclaimed", module=name)
            break
        n += 1
    log.info("app", "names_claimed", modules=n, ms=time.ticks_diff(time.ticks_ms(), t0))
    return n
