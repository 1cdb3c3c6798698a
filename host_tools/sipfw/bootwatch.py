"""What a board did after a reset: ready, a traceback, a crash loop, or nothing at all.

`sipfw flash` and `sipfw config push` (both the REPL write + soft reset and the reboot
through the agent's console) reset the board, then read its boot through ``watch``: the
lines in, one ``Outcome`` out, reported by ``report`` the same way for both commands.

* **ready**: the app's ``INFO app ready`` line (or the caller's pattern), with its figures
  (``ip``, ``heap_free``) and any ERROR line the boot logged on the way (a bad config.json,
  Wi-Fi down).
* **agent_failed**: ``ERROR app agent_failed``: the agent could not start (a MemoryError on a
  small heap, say); the firmware stays in safe idle mode with its console up.
* **traceback**: main.py raised and the board sat at its REPL. After a traceback the watch
  goes on for ``LOOP_WAIT_S`` (an 8 s watchdog's reset and the next boot) to tell this apart
  from:
* **crash_loop**: the board restarts by itself (soft-reboot banner, watchdog reset, an
  ESP32's ``rst:`` line, a second ``app start``) and fails again, or restarts twice, without
  a ready line. Reported with the first traceback.
* **stopped**: main.py ended without a traceback and without the ready line (the REPL banner).
* **timeout**: none of these before the deadline; the report quotes what the board said.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

READY_RE = r"\bINFO app ready\b"
START_RE = re.compile(r"\bINFO app start\b")
FAILED_RE = re.compile(r"\bERROR app agent_failed\b")
# Lines a board prints when it starts again: MicroPython's soft reboot, the virtual board's
# watchdog, an ESP32's ROM (reset cause, ROM banner).
RESTART_RE = re.compile(r"soft reboot|^vboard: watchdog reset|^rst:0x|^ets [A-Z][a-z]{2} +\d")
REPL_BANNER = 'Type "help()" for more information.'
TRACEBACK = "Traceback (most recent call last)"
LOOP_WAIT_S = 10.0  # after a traceback: an 8 s watchdog resets the board, and it boots again
TRACEBACK_WAIT_S = 1.0  # after `app agent_failed`: for the traceback the app prints next
SHOWN_LINES = 8  # what a timeout quotes of the board's last words


@dataclass
class Outcome:
    state: str  # ready | agent_failed | traceback | crash_loop | stopped | timeout
    seconds: float  # from the start of the watch to the decision
    lines: list[str] = field(default_factory=list)  # everything the board printed
    figures: dict = field(default_factory=dict)  # key=value of the ready/agent_failed line
    traceback: list[str] = field(default_factory=list)  # the first one
    restarts: int = 0  # times the board started again by itself
    errors: list[str] = field(default_factory=list)  # ERROR log lines of the last boot
    ready: str = ""  # the pattern waited for
    timeout: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "ready"

    def exception(self) -> str:
        """The first traceback's last line ("MemoryError: ..."), or ""."""
        return self.traceback[-1].strip() if len(self.traceback) > 1 else ""

    def summary(self) -> str:
        again = " after %d restart%s" % (self.restarts, "" if self.restarts == 1 else "s") \
            if self.restarts else ""
        if self.state == "ready":
            figs = " ".join("%s=%s" % kv for kv in self.figures.items())
            return "agent ready in %.2f s%s%s" % (self.seconds, again,
                                                  (" (%s)" % figs) if figs else "")
        if self.state == "agent_failed":
            return ("the agent did not start%s: %s. The board stays up in safe mode (its "
                    "console answers `status`): push a smaller config or another firmware"
                    % (again, self.figures.get("err", "?")))
        if self.state == "crash_loop":
            first = self.exception()
            return ("the board is in a crash loop: it restarted %d time%s in %.0f s without "
                    "a ready line; %s" % (self.restarts, "" if self.restarts == 1 else "s",
                                          self.seconds,
                                          ("the first boot raised " + first) if first
                                          else "no traceback was printed"))
        if self.state == "traceback":
            return "main.py raised %s (the board stopped at its REPL)" % (
                self.exception() or "an exception")
        if self.state == "stopped":
            return "main.py ended without the ready line: the board is at its REPL"
        said = [x for x in self.lines if x.strip()]
        return "no line matching %r within %.0f s%s" % (
            self.ready, self.timeout,
            "; the board said nothing" if not said else
            " (%d line%s, the last: %r)" % (len(said), "" if len(said) == 1 else "s",
                                            said[-1][:120]))

    def details(self) -> list[str]:
        """What to show under the summary: the traceback, or the last lines seen."""
        if self.state in ("traceback", "crash_loop", "agent_failed") and self.traceback:
            return list(self.traceback)
        if self.state in ("timeout", "stopped"):
            return [x for x in self.lines if x.strip()][-SHOWN_LINES:]
        return []


class BootWatch:
    """Fed the board's lines one by one; ``feed`` returns the Outcome once it is clear."""

    def __init__(self, ready: str = READY_RE, loop_wait_s: float = LOOP_WAIT_S,
                 clock=time.monotonic):
        from .paths import use_firmware

        use_firmware()
        from sipua.log import parse_line

        self.parse = parse_line
        self.ready_text = ready
        self.ready = re.compile(ready)
        self.loop_wait_s = loop_wait_s
        self.clock = clock
        self.t0 = clock()
        self.decide_by: float | None = None  # an earlier deadline: a traceback, no reset yet
        self.out = Outcome("timeout", 0.0, ready=ready)
        self._in_tb = False
        self._tb_seen = False
        self._failures = 0  # tracebacks (finished) in all boots
        self._booting = False  # this boot got somewhere: a restart line now is a new boot
        self._app_started = False  # this boot printed the app's start line
        self._began = False  # a boot began (the REPL banner before that is the old session's)
        self._agent_failed = False  # the app said so; its traceback follows

    def _done(self, state: str) -> Outcome:
        self.out.state = state
        self.out.seconds = self.clock() - self.t0
        return self.out

    def feed(self, text: str) -> Outcome | None:
        out = self.out
        out.lines.append(text)
        if self._in_tb:
            if not self._tb_seen:
                out.traceback.append(text)
            if text.startswith(" ") or not text.strip():
                return None
            self._in_tb = False  # "SomeError: message" ends it
            self._tb_seen = True
            if self._agent_failed:
                return self._done("agent_failed")  # with the traceback that follows the line
            self._failures += 1
            if out.restarts:
                return self._done("crash_loop")  # failed again after a restart
            self.decide_by = self.clock() + self.loop_wait_s
            return None
        if text.startswith(TRACEBACK):
            self._in_tb = self._booting = True
            if not self._tb_seen:
                out.traceback = [text]
            return None
        if self.ready.search(text):
            out.figures = self._figures(text)
            return self._done("ready")
        if FAILED_RE.search(text) and not self._agent_failed:
            out.figures = self._figures(text)
            self._agent_failed = True
            self.decide_by = self.clock() + TRACEBACK_WAIT_S
            return None
        started = START_RE.search(text) is not None
        if RESTART_RE.search(text) or (started and self._app_started):
            self._began = True
            if self._booting:
                out.restarts += 1
                out.errors = []
                self._booting = self._app_started = False
                self.decide_by = None  # watch the next boot, up to the deadline
                if out.restarts >= 2:
                    return self._done("crash_loop")
        if started:
            self._booting = self._app_started = self._began = True
        if text.startswith(REPL_BANNER) and self._began and not self._failures:
            return self._done("stopped")
        fields = self.parse(text)
        if fields is not None and fields.get("level") == "ERROR":
            out.errors.append(text)
        return None

    def _figures(self, text: str) -> dict:
        fields = self.parse(text) or {}
        return {k: v for k, v in fields.items() if k not in ("ms", "level", "area", "event")}

    def finish(self, timeout: float) -> Outcome:
        """No decision from the lines: the deadline (or the traceback's wait) has passed."""
        self.out.timeout = timeout
        if self._agent_failed:
            return self._done("agent_failed")
        if self.out.restarts:
            return self._done("crash_loop")
        if self._failures or self._in_tb:
            return self._done("traceback")
        return self._done("timeout")


def watch(next_line, timeout: float, ready: str = READY_RE, loop_wait_s: float = LOOP_WAIT_S,
          echo=None, clock=time.monotonic) -> Outcome:
    """Read a boot: ``next_line(until)`` returns the board's next line, or None once the
    ``until`` (a ``clock()`` time) has passed without one. Bounded by ``timeout``."""
    w = BootWatch(ready, loop_wait_s, clock)
    w.out.timeout = timeout
    end = w.t0 + timeout
    while True:
        until = min(end, w.decide_by) if w.decide_by is not None else end
        if clock() >= until:
            return w.finish(timeout)
        line = next_line(until)
        if line is None:
            continue
        if echo is not None:
            echo(line)
        out = w.feed(line)
        if out is not None:
            return out


def report(outcome: Outcome, what: str, say=print, warn=None) -> None:
    """One report for every command that resets a board. Ready: the summary (plus the ERROR
    lines the boot logged, as warnings). Anything else: the traceback or the last lines on
    stderr, then BoardError (exit status 5): "``what``, but <summary>"."""
    import sys

    from .errors import BoardError

    if warn is None:
        def warn(line):
            print(line, file=sys.stderr, flush=True)

    if outcome.ok:
        say(outcome.summary())
        for line in outcome.errors:
            warn("  the board logged: %s" % line)
        return
    for line in outcome.details():
        warn("  | %s" % line)
    for line in outcome.errors:
        warn("  the board logged: %s" % line)
    raise BoardError("%s, but %s" % (what, outcome.summary()))
