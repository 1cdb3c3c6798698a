"""Reading a board's console as timestamped lines that survive resets and re-plugging.

``LineReader`` opens the port with pyserial (exclusively: two readers on one serial port
each get half of the bytes), cuts the byte stream into lines, and stamps each line with the
time its FIRST byte arrived (a slow line must not look later than it was). When the port
goes away (unplugged, vboard stopped, USB re-enumeration after a hard reset) it yields a
``gap`` event and reopens the port by re-resolving the user's ``--port`` (serial number,
vboard id, link or path), then a ``reconnect`` event saying how long it was away.

It is the one line reader of the host tools: ``sipfw logs``/``monitor``/``console``, the
boot reading after a flash or config push (``board.Board.watch_boot``, over the board's
already open serial object with ``attach``) and the lab's ``tests/lab/agentboard.py``.

``classify`` tags each line: a log line (parsed with the firmware's own
``sipua.log.parse_line``), a boot (``soft reboot`` / the app's start line), a traceback and
its lines, a console answer (``@{...}``), or other output.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import deque
from dataclasses import dataclass, field

import serial

from . import boards
from .board import port_error
from .errors import PortError
from .paths import use_firmware

BOOT_RE = re.compile(r"soft reboot|\bINFO app start\b|^rst:0x|^MicroPython v\d")
START_RE = re.compile(r"\bINFO app start\b")
TRACEBACK_START = "Traceback (most recent call last)"
MAX_LINE = 4096
PARTIAL_S = 0.5  # a line longer than this (binary noise) is cut


@dataclass
class Event:
    t: float  # host wall-clock time of the line's first byte
    kind: str  # log | boot | traceback | answer | other | gap | reconnect
    text: str
    fields: dict = field(default_factory=dict)  # parsed log line (ms, level, area, event, ...)

    def as_dict(self) -> dict:
        out = {"t": round(self.t, 3), "kind": self.kind, "text": self.text}
        if self.fields:
            out["log"] = self.fields
        return out


class Classifier:
    """Stateful (a traceback spans lines), so one per stream."""

    def __init__(self):
        use_firmware()
        from sipua.log import parse_line

        self._parse = parse_line
        self._in_tb = False

    def __call__(self, t: float, text: str) -> Event:
        if self._in_tb:
            # Traceback body: indented frames, then one "SomeError: message" line.
            if text.startswith("  ") or not text.strip():
                return Event(t, "traceback", text)
            self._in_tb = False
            return Event(t, "traceback", text)
        if text.startswith(TRACEBACK_START):
            self._in_tb = True
            return Event(t, "traceback", text)
        if text.startswith("@{"):
            return Event(t, "answer", text)
        fields = self._parse(text)
        if fields is not None:
            kind = "boot" if START_RE.search(text) else "log"
            return Event(t, kind, text, fields)
        if BOOT_RE.search(text):
            return Event(t, "boot", text)
        return Event(t, "other", text)


class LineReader:
    """Yields Events from a port until ``stop()``/deadline; reconnects when it vanishes."""

    def __init__(self, spec: str | None, port: boards.Port, reconnect: bool = True,
                 retry_s: float = 0.3, clock=time.time):
        self.spec = spec
        self.port = port
        self.reconnect = reconnect
        self.retry_s = retry_s
        self.clock = clock
        self.ser: serial.Serial | None = None
        self.stopped = False
        self.classify = Classifier()
        self._pending: deque[Event] = deque()  # read, not yet handed out
        self._buf = bytearray()  # the line being read
        self._first: float | None = None  # when its first byte arrived
        self._lost: float | None = None  # when the port went away, until it is back

    def open(self) -> None:
        try:
            self.ser = serial.Serial(self.port.device, 115200, timeout=0.1, exclusive=True)
        except (serial.SerialException, OSError) as e:
            raise port_error(self.port.device, e) from None

    def attach(self, ser) -> None:
        """Read an already open serial object (a ``board.Board``'s, a test rig's)."""
        self.ser = ser
        self._pending.clear()
        self._buf.clear()
        self._first = None

    def close(self) -> None:
        if self.ser is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                self.ser.close()
            self.ser = None

    def write(self, data: bytes) -> None:
        if self.ser is not None:
            self.ser.write(data)

    def stop(self) -> None:
        self.stopped = True

    def _reopen(self, deadline: float | None) -> bool:
        while not self.stopped and (deadline is None or time.monotonic() < deadline):
            try:
                self.port = self._find()
                self.open()
                return True
            except PortError as e:
                if "busy" in str(e):
                    raise
            time.sleep(self.retry_s)
        return False

    def _find(self) -> boards.Port:
        # The same board, by serial number when it has one (a re-plugged USB board may come
        # back as another ttyACMn); else whatever --port names now (a link, a path).
        sn = self.port.serial_number
        if sn:
            for p in boards.list_ports():
                if p.serial_number == sn:
                    return p
        return boards.resolve_port(self.spec or self.port.device)

    def events(self, deadline: float | None = None):
        """Events until ``deadline`` (time.monotonic) or ``stop()``.

        A caller may stop iterating at any event (an answer found, a line waited for): what
        was read beyond it — the rest of the chunk, a partial line — stays in the reader
        for the next call. (Each call once kept its own buffer, so the log lines that
        arrived in the same read as a console answer were lost.)"""
        pending = self._pending
        if self.ser is None and self._lost is not None:
            # lost in an earlier call whose deadline came first: keep trying here
            if not self.reconnect or not self._reopen(deadline):
                return
            self._back()
        elif self.ser is None:
            self.open()
        while True:
            while pending:
                yield pending.popleft()
            if self.stopped or (deadline is not None and time.monotonic() >= deadline):
                break
            try:
                assert self.ser is not None
                chunk = self.ser.read(self.ser.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError, AttributeError):
                # TypeError/AttributeError: pyserial 3.5 trips over its own fd after a hangup
                lost = self.clock()
                self._flush_line()
                self.close()
                pending.append(Event(lost, "gap", "-- %s disconnected --" % self.port.device))
                while pending:
                    yield pending.popleft()
                self._lost = lost
                if not self.reconnect or not self._reopen(deadline):
                    return
                self._back()
                continue
            if not chunk:
                # A prompt (">>> ") never ends its line: show it once the board is quiet.
                if self._first is not None and self.clock() - self._first > PARTIAL_S:
                    self._flush_line()
                continue
            now = self.clock()
            buf = self._buf
            for b in chunk:
                if self._first is None:
                    self._first = now
                if b == 0x0A or len(buf) >= MAX_LINE:
                    self._flush_line()
                elif b != 0x0D and b != 0x04:  # CR and the raw REPL's Ctrl-D markers
                    buf.append(b)
        if self.stopped:
            self._flush_line()
            while pending:
                yield pending.popleft()

    def _back(self) -> None:
        back = self.clock()
        lost, self._lost = self._lost or back, None
        self._pending.append(Event(back, "reconnect", "-- %s reconnected after %.1f s --"
                                   % (self.port.device, back - lost)))

    def _flush_line(self) -> None:
        """The line being read, finished (newline, length cap, quiet board, port lost or
        reader stopped), stamped with the arrival of its first byte."""
        if self._first is not None:
            self._pending.append(self.classify(self._first, _text(self._buf)))
        self._buf.clear()  # in place: events() holds it
        self._first = None


def _text(buf: bytes) -> str:
    return bytes(buf).decode("utf-8", "replace")
