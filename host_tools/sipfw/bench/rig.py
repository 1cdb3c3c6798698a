"""Driving a virtual board against a PBX from the host: shared by `make demo` and `sipfw bench`.

``VBoard`` starts a virtual board, flashes it with ``sipfw flash`` and pushes a config with
``sipfw config push`` (the same commands a person types), or clones an already flashed
board's folder (``clone``: a storm of 100 boards flashes once, not 100 times). ``Watch`` is
the ONE serial connection to a board: every line it reads is kept (``lines``) with the host
time of its first byte, console answers are matched by id (``session.Session``),
and ``until(RE)`` finds a log line in what was already read before reading more, so a line
that arrived while a console answer was awaited is never lost.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

from ..procs import stop_process

STEP_TIMEOUT_S = 30
# The unix port is 64-bit: every object and pointer is twice an ESP32's, so the agent that
# an ESP32 runs in ~100 KB needs more here (`make bench` measures the smallest heap).
HEAP = "384k"


def sipfw_bin() -> str:
    return os.path.join(os.path.dirname(sys.executable), "sipfw")


def sipfw(*args: str, echo: bool = True, timeout: float = 120) -> None:
    """Run one sipfw command (as a person would); output shown when echo, else kept quiet."""
    if echo:  # on stderr, as the board's lines: stdout is a --json command's answer
        print("$ sipfw " + " ".join(args), file=sys.stderr, flush=True)
    out = 2 if echo else subprocess.PIPE
    proc = subprocess.run([sipfw_bin(), *args], timeout=timeout, stdout=out, stderr=out,
                          text=True, check=False)
    if proc.returncode != 0:
        detail = "" if echo else ": " + (proc.stderr or proc.stdout or "").strip()[-300:]
        raise RuntimeError("sipfw %s failed (%d)%s" % (" ".join(args), proc.returncode, detail))


class StepTimeout(RuntimeError):
    """A board did not log what a step waited for within its timeout."""


class _Recording:
    """A LineReader seen through a tape: every event it yields is also appended to lines."""

    def __init__(self, reader, lines: list):
        self.reader = reader
        self.lines = lines

    @property
    def port(self):
        return self.reader.port

    def write(self, data: bytes) -> None:
        self.reader.write(data)

    def events(self, deadline=None):
        for ev in self.reader.events(deadline):
            self.lines.append(ev)
            yield ev


class Watch:
    """One connection to the board: its log lines (timestamped, all kept) and console answers."""

    def __init__(self, link: str, echo=None, answer_timeout: float = 5.0):
        from .. import boards
        from ..monitor import LineReader
        from ..session import Session

        self.link = link
        self.lines: list = []  # every Event read, in order
        self.cursor = 0  # until() looks at lines[cursor:] first
        self.echo = echo  # None, or a regex of lines to print as they are found
        self.reader = LineReader(link, boards.resolve_port(link), reconnect=True)
        self.reader.open()
        self.tape = _Recording(self.reader, self.lines)
        self.session = Session(self.tape, answer_timeout)

    def mark(self) -> int:
        """Forget what was read so far for until(); returns the index of the next line."""
        self.cursor = len(self.lines)
        return self.cursor

    def _show(self, ev) -> None:
        if self.echo and re.search(self.echo, ev.text) and "DEBUG" not in ev.text:
            print("   board| " + ev.text[:150], file=sys.stderr, flush=True)

    def until(self, pattern: str, timeout: float = STEP_TIMEOUT_S):
        """The first log line at or after the cursor that matches: (host time, line)."""
        rx = re.compile(pattern)
        while self.cursor < len(self.lines):
            ev = self.lines[self.cursor]
            self.cursor += 1
            self._show(ev)
            if rx.search(ev.text):
                return ev.t, ev.text
        deadline = time.monotonic() + timeout
        for ev in self.tape.events(deadline):
            self.cursor = len(self.lines)
            self._show(ev)
            if rx.search(ev.text):
                return ev.t, ev.text
        raise StepTimeout("timed out after %.0f s waiting for %r" % (timeout, pattern))

    def read_for(self, seconds: float) -> None:
        """Just read (and keep) the log for a while."""
        for _ in self.tape.events(time.monotonic() + seconds):
            pass

    def ask(self, command: str) -> dict:
        return self.session.ask(command)

    def close(self) -> None:
        self.reader.close()


class VBoard:
    """A virtual board process in its own folder under work; stop() ends only it."""

    def __init__(self, work: str, name: str = "board", heap: str = HEAP):
        self.work = work
        self.name = name
        self.heap = heap
        self.root = os.path.join(work, name + ".root")
        self.link = os.path.join(work, name + ".tty")
        self.proc: subprocess.Popen | None = None
        self.device = ""

    def start(self) -> str:
        os.makedirs(self.root, exist_ok=True)
        self.proc = subprocess.Popen(
            [sipfw_bin(), "vboard", "--root", self.root, "--link", self.link,
             "--heap", self.heap], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.device = self.proc.stdout.readline().strip()
        if not self.device:
            self.stop()
            raise RuntimeError("vboard %s did not start" % self.name)
        return self.device

    def flash(self, echo: bool = True) -> None:
        # --force: benches run boards on heaps below the firmware's need on purpose (the
        # smallest-heap search); they measure what happens there, not flash's refusal.
        sipfw("flash", "--port", self.link, "--board", "vboard", "--force", echo=echo)

    def push_config(self, cfg: dict, echo: bool = True) -> None:
        path = os.path.join(self.work, self.name + ".config.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        sipfw("config", "push", path, "--port", self.link, "--reset", echo=echo)

    def clone(self, flashed: VBoard, cfg: dict) -> None:
        """Take a flashed board's files and a config of our own (before start())."""
        shutil.rmtree(self.root, ignore_errors=True)
        # instance.id is the board's own RFC 5626 identity: a clone makes its own at boot
        shutil.copytree(flashed.root, self.root,
                        ignore=shutil.ignore_patterns("config.json", "instance.id"))
        with open(os.path.join(self.root, "config.json"), "w") as f:
            json.dump(cfg, f)

    @property
    def pids(self) -> list[int]:
        """The supervisor and its interpreter (for memory figures)."""
        if self.proc is None:
            return []
        out = [self.proc.pid]
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return out

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


def smallest_heap(ok, lo_kb: int, hi_kb: int, step_kb: int) -> int:
    """The smallest heap (KB, a multiple of ``step_kb``) in (lo_kb, hi_kb] at which
    ``ok(kb)`` holds, by binary search: ``ok(lo_kb)`` is taken to fail and ``ok(hi_kb)`` to
    pass (neither is asked; the caller checks the ends it doubts). One search for every
    bench that looks for the edge (bench_heap.py, bench_scenarios.py)."""
    lo, hi = lo_kb // step_kb, hi_kb // step_kb
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid * step_kb):
            hi = mid
        else:
            lo = mid
    return hi * step_kb


def server_of(status: dict) -> str:
    acc = status["accounts"][0]
    s = acc.get("server") or {}
    return "%s %s (%s:%s)" % (acc["state"], s.get("host"), s.get("transport"), s.get("ip"))
