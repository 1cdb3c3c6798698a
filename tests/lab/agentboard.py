"""The agent on a virtual board, driven the way a person drives a board: serial log + console.

    board = AgentBoard(tmp_path / "b1", config, heap="256k")
    board.start()                     # firmware compiled as `sipfw flash` does, then booted
    board.wait("reg", "registered", timeout=10)
    board.cmd("call 6904")            # -> the @{...} answer as a dict
    board.stop()

The firmware goes on the board as `sipfw flash` would put it (``sipfw.build``: main.py as
source, sipua/*.mpy), written straight into the board's folder — the flash command itself is
tested elsewhere. main.py is written only after the serial port is open and the board sits at
its REPL, and a Ctrl-D then soft-reboots it, so not one line of the boot is lost (pyserial
flushes what came before the open). The board's lines are read by the host tools' one line
reader (``sipfw.monitor.LineReader``) and console commands sent and matched by their console
client (``sipfw.session.request``/``answer``), as ``sipfw monitor`` does.
Used by tests/lab/test_agent.py and bench/bench_failover.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 15

for p in (str(FIRMWARE), str(ROOT / "host_tools")):
    if p not in sys.path:
        sys.path.insert(0, p)

from sipfw.procs import stop_process  # noqa: E402
from sipfw.session import answer, request  # noqa: E402
from sipua.log import parse_line  # noqa: E402


class BoardError(AssertionError):
    """The board did not do what the test waited for (the message quotes its log)."""


class AgentBoard:
    def __init__(self, root: Path, config: dict, heap: str = "256k"):
        self.root = Path(root)
        self.config = config
        self.heap = heap
        self.proc: subprocess.Popen | None = None
        self.serial = None
        self.lines: list[tuple[float, str]] = []  # (host monotonic time, line)
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._rid = 0

    # -- life cycle --------------------------------------------------------------------------
    def install(self) -> None:
        from sipfw import build

        self.root.mkdir(parents=True, exist_ok=True)
        for item in build.build(str(FIRMWARE), "host"):
            if item.remote == "main.py":
                self._main = item.data
                continue
            path = self.root / item.remote
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.data)
        (self.root / "config.json").write_text(json.dumps(self.config))
        (self.root / "main.py").unlink(missing_ok=True)

    def start(self, wait_ready: bool = True) -> None:
        import serial

        self.install()
        env = dict(os.environ, SIPFW_VBOARD_DIR=str(self.root.parent / "vboards"))
        self.proc = subprocess.Popen(
            [str(BIN / "sipfw"), "vboard", "--root", str(self.root), "--heap", self.heap],
            stdout=subprocess.PIPE, text=True, env=env)
        device = self._readline_timeout(self.proc.stdout, START_TIMEOUT_S).strip()
        if not device.startswith("/dev/"):
            raise BoardError("vboard printed no device: %r" % device)
        self.serial = serial.Serial(device, 115200, timeout=0.05)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        # No main.py yet: the board is at its friendly REPL. Put main.py there and soft-reboot.
        self.wait_line(lambda s: s.startswith(">>>"), 10, poke=b"\r\n")
        (self.root / "main.py").write_bytes(self._main)
        self.t_boot = time.monotonic()
        self.serial.write(b"\x04")
        if wait_ready:
            self.wait("app", "ready", timeout=START_TIMEOUT_S)

    def release(self) -> str:
        """Hand the serial line over (to ``sipfw monitor``): reading stops, the board runs
        on. Returns the device."""
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=2)
        device = self.serial.port
        self.serial.close()
        self.serial = None
        return device

    def retire(self) -> None:
        """At a test's end: un-REGISTER if it still runs (no binding left behind in the lab
        for the next test), then stop."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.cmd("unreg", timeout=2, ok=False)
                time.sleep(0.2)
        except AssertionError:
            pass
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=2)
        if self.serial is not None:
            self.serial.close()
            self.serial = None
        stop_process(self.proc)

    @staticmethod
    def _readline_timeout(stream, timeout: float) -> str:
        import select

        ready, _, _ = select.select([stream], [], [], timeout)
        return stream.readline() if ready else ""

    def _read_loop(self) -> None:
        from sipfw.boards import Port
        from sipfw.monitor import LineReader

        reader = LineReader(None, Port(device=self.serial.port, kind="virtual"),
                            reconnect=False, clock=time.monotonic)
        reader.attach(self.serial)
        while not self._stop.is_set():
            # short slices so stop() is seen; a prompt (">>> ", no newline) comes out once
            # the board is quiet (LineReader.PARTIAL_S)
            for ev in reader.events(time.monotonic() + 0.1):
                if ev.kind == "gap":  # port closed under us at stop()
                    return
                with self._lock:
                    self.lines.append((ev.t, ev.text))

    # -- reading the log ---------------------------------------------------------------------
    def mark(self) -> int:
        """Index of the next line: pass as ``since`` to look only at what follows."""
        with self._lock:
            return len(self.lines)

    def text(self, since: int = 0) -> str:
        with self._lock:
            return "\n".join(x for _, x in self.lines[since:])

    def events(self, area=None, event=None, since: int = 0, **match) -> list[dict]:
        """Parsed log lines (``sipua.log.parse_line``) with ``host_t`` added."""
        with self._lock:
            lines = self.lines[since:]
        out = []
        for t, line in lines:
            if not line[:1].isdigit():
                continue
            e = parse_line(line)
            if not e or (area and e["area"] != area) or (event and e["event"] != event):
                continue
            if any(not _matches(e.get(k), v) for k, v in match.items()):
                continue
            e["host_t"] = t
            out.append(e)
        return out

    def wait(self, area, event, timeout: float, since: int = 0, **match) -> dict:
        """The first matching event at or after ``since``; BoardError after ``timeout``."""
        end = time.monotonic() + timeout
        while True:
            found = self.events(area, event, since, **match)
            if found:
                return found[0]
            if time.monotonic() > end:
                raise BoardError("no '%s %s' %s within %.1f s; board log:\n%s" % (
                    area, event, match or "", timeout, self.text(max(0, since - 5))[-6000:]))
            time.sleep(0.02)

    def wait_line(self, pred, timeout: float, since: int = 0, poke: bytes | None = None) -> str:
        end = time.monotonic() + timeout
        next_poke = 0.0
        while time.monotonic() < end:
            with self._lock:
                for _, line in self.lines[since:]:
                    if pred(line):
                        return line
            if poke and time.monotonic() > next_poke:
                self.serial.write(poke)
                next_poke = time.monotonic() + 1.0
            time.sleep(0.02)
        raise BoardError("no matching line within %.1f s:\n%s" % (timeout, self.text()[-3000:]))

    # -- console -----------------------------------------------------------------------------
    def cmd(self, command: str, timeout: float = 5, ok: bool = True) -> dict:
        """Send one console command, return its ``@{...}`` answer (asserting ok by default)."""
        self._rid += 1
        rid = str(self._rid)
        since = self.mark()
        self.serial.write(request(rid, command))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                lines = self.lines[since:]
            for _, line in lines:
                ans = answer(line)
                if ans is not None and ans.get("id") == rid:
                    if ok and not ans.get("ok"):
                        raise BoardError("%r answered %r" % (command, ans))
                    return ans
            time.sleep(0.02)
        raise BoardError("no answer to %r within %.1f s:\n%s" % (command, timeout,
                                                                  self.text(since)[-3000:]))

    def status(self) -> dict:
        return self.cmd("status")

    def account(self, leg: int = 0) -> dict:
        return self.status()["accounts"][leg]


def _matches(value, want) -> bool:
    if value is None:
        return False
    if isinstance(want, re.Pattern):
        return bool(want.search(str(value)))
    return str(value) == str(want)


def board_config(lab, ip: str, port: int, user: str = "6903", expires: int = 180,
                 failback: dict | None = None, redundancy: str | None = None,
                 auto_answer: bool = False, debug: bool = True,
                 transport: str = "dns-srv") -> dict:
    """The lab's firmware config (``Lab.firmware_config``) for one board on ip:port."""
    cfg = lab.firmware_config(user, transport=transport, expires=expires)
    acc = cfg["accounts"][0]
    if transport != "dns-srv":
        acc.pop("port", None)  # a port would mean "A record, no SRV" (RFC 3263 §4.2)
    if failback:
        acc["failback"] = failback
    if redundancy:
        acc["redundancy"] = redundancy
    if auto_answer:
        acc["auto_answer"] = True
    cfg["sip"].update({"local_ip": ip, "local_port": port})
    cfg["log"] = {"level": "info", "areas": {"sip": "debug", "dns": "debug"} if debug else {}}
    return cfg
