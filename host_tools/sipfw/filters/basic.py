"""Level, area and regex filters. Markers (gap, reconnect, boot) always pass: they are what
tells a reader that lines are missing or that the board restarted."""

from __future__ import annotations

import re

from .base import Filter

LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "ERROR": 40}
MARKERS = ("gap", "reconnect", "boot")


class LevelFilter(Filter):
    """Log lines below ``level`` are dropped; tracebacks count as ERROR, other output as
    INFO (so ``--level warn`` hides REPL chatter but never a traceback)."""

    name = "level"

    def __init__(self, level: str):
        key = level.upper()
        if key == "WARNING":
            key = "WARN"
        if key not in LEVELS:
            raise ValueError("unknown level %r (one of %s)" % (level, ", ".join(
                k.lower() for k in LEVELS)))
        self.min = LEVELS[key]

    def __call__(self, ev):
        if ev.kind in MARKERS:
            return ev
        if ev.kind == "traceback":
            lv = LEVELS["ERROR"]
        elif ev.fields:
            lv = LEVELS.get(ev.fields.get("level", "INFO"), 20)
        else:
            lv = LEVELS["INFO"]
        return ev if lv >= self.min else None


class AreaFilter(Filter):
    """Only log lines of the given areas (other output passes)."""

    name = "area"

    def __init__(self, areas):
        self.areas = set(areas)

    def __call__(self, ev):
        if ev.fields and ev.kind not in MARKERS:
            return ev if ev.fields.get("area") in self.areas else None
        return ev


class GrepFilter(Filter):
    name = "grep"

    def __init__(self, pattern: str):
        self.re = re.compile(pattern)

    def __call__(self, ev):
        if ev.kind in ("gap", "reconnect"):
            return ev
        return ev if self.re.search(ev.text) else None
