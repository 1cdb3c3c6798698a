"""Will the firmware fit this board's heap? Asked before ``sipfw flash`` copies anything.

The need comes from ``board_configs/budgets/heap32.json``: per phase, the live heap the
firmware keeps as ``.mpy`` files on a stock 32-bit MicroPython (``guard``: today's measured
upper bound; ``budget``: the target). The need for a board is the largest guard over the
phases (a phone that boots but dies in its first call does not fit), scaled:

* **word size** (the board's ``sys.maxsize``): a 64-bit port (the vboard, a Pi's unix port)
  keeps more, since every object, pointer and small int is twice as wide; bytecode and
  strings are not. Measured ratios 64-bit/32-bit of the same firmware: 1.26 registered
  over TCP (177/140 KB), 1.33 in a call (193/145 KB), 1.55 with every module imported
  (212/137 KB). ``WORD_FACTOR[8]`` = 1.4.
* **layout**: with the bytecode in a ROMFS partition (``flash --romfs``) it is executed in
  place and only module dicts, functions, classes and qstrs stay in RAM. Measured on the
  64-bit unix port (``bench/bench_boards.py``): the modules a registered phone keeps, 0.61
  of what they keep as ``.mpy`` files (every module: 0.56). The phone's state (a fifth of a
  registered phase) is not shrunk, so ``LAYOUT_FACTOR["romfs"]`` = 0.7.
  A frozen build (``flash --frozen``) keeps less still, its strings and constants in flash
  too: registered over TCP, 31.1 KB frozen against 62.9 KB ``.mpy`` on a 32-bit unix build
  and 52.5 against 111.2 KB on the 64-bit one, with a call 37.7 against 77.8 KB
  (docs/architecture.md, "Heap") = 0.47-0.50; ``LAYOUT_FACTOR["frozen"]`` = 0.5.

The board's free heap is ``gc.mem_free()`` after ``gc.collect()``, read by flash's survey
exec right after the raw-REPL soft reset (boot.py has run, main.py has not).
"""

from __future__ import annotations

import json
import os

from .errors import ConfigError
from .paths import BOARD_CONFIGS_DIR

BUDGETS_FILE = os.path.join(BOARD_CONFIGS_DIR, "budgets", "heap32.json")
WORD_FACTOR = {4: 1.0, 8: 1.4}
LAYOUT_FACTOR = {"mpy": 1.0, "romfs": 0.7, "frozen": 0.5}
TIGHT = 1.25  # free heap below need x this: said, not refused
LAYOUT_WORDS = {"mpy": "as .mpy files", "romfs": "with its bytecode in ROMFS",
                "frozen": "frozen into the MicroPython image"}


def load_budgets(path: str = BUDGETS_FILE) -> dict:
    """The budgets file, checked: every phase has an integer ``guard`` and ``budget``."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise ConfigError("%s: cannot read the heap budgets: %s" % (path, e.strerror)) from None
    except ValueError as e:
        raise ConfigError("%s: not JSON: %s" % (path, e)) from None
    phases = data.get("phases") if isinstance(data, dict) else None
    if not isinstance(phases, dict) or not phases:
        raise ConfigError("%s: 'phases' must be an object with at least one phase" % path)
    for name, entry in phases.items():
        for key in ("guard", "budget"):
            value = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError("%s: phases.%s.%s must be a positive number of bytes"
                                  % (path, name, key))
    return data


def word_bytes(maxsize: int) -> int:
    """4 or 8, from the board's ``sys.maxsize`` (2**31-1 on ESP32/rp2, 2**63-1 on 64-bit)."""
    return 8 if maxsize > 2 ** 31 else 4


def need_bytes(budgets: dict, words: int, layout: str = "mpy") -> int:
    """The heap this firmware needs on a board of that word size and layout."""
    worst = max(p["guard"] for p in budgets["phases"].values())
    return int(worst * WORD_FACTOR.get(words, 1.0) * LAYOUT_FACTOR[layout])


def verdict(free: int, maxsize: int, layout: str = "mpy",
            budgets: dict | None = None) -> tuple[bool, str]:
    """(fits, one line for the user). ``free`` < 0: the board could not say (not MicroPython's
    ``gc``): fits, and the line says it was not checked."""
    if free < 0:
        return True, "heap: not checked (the board does not report its free heap)"
    words = word_bytes(maxsize)
    need = need_bytes(budgets or load_budgets(), words, layout)
    line = ("heap: the firmware needs ~%d KB %s on a %d-bit board; this board has %d KB free"
            % (need // 1024, LAYOUT_WORDS[layout], words * 8, free // 1024))
    if need <= free < need * TIGHT:
        line += " (little room for garbage and fragmentation: expect collections mid-call)"
    return free >= need, line


def advice(layout: str = "mpy") -> str:
    """What to do when it does not fit."""
    hint = {"mpy": "use --romfs or a frozen build", "romfs": "use a frozen build"}.get(
        layout, "a board with more RAM")
    return "%s (docs/boards.md), or --force to copy anyway" % hint
