"""Sharing one serial port between a ``sipfw monitor`` and other sipfw commands.

A serial line has one reader (two get half the bytes each), so the monitor that owns it
(or a ``sipfw logs`` tail) opens a Unix socket beside a small JSON file naming it (pid,
since, which command), both under a runtime dir ($SIPFW_RUNTIME_DIR or $XDG_RUNTIME_DIR
/sipfw, else /tmp/sipfw-UID) and keyed by the port's resolved device path. Another sipfw
command on that port (``console``, ``logs``, ``flash``, ``config``) first calls
``borrow(port)``: when a holder is there it connects and sends one line,
``{"op": "lend", "pid": N, "what": "..."}``; the holder closes the port and answers
``{"ok": true}``; the command then opens the port itself and does exactly what it does
alone; when its process ends (or it closes the socket) the holder reopens the port and goes
on streaming. The protocol is that one exchange: the borrower's EOF is the hand-back.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from .errors import PortError

LEND_TIMEOUT_S = 5.0
_borrowed: list[socket.socket] = []  # kept open for the life of the process


def runtime_dir() -> Path:
    base = os.environ.get("SIPFW_RUNTIME_DIR") or os.environ.get("XDG_RUNTIME_DIR")
    d = Path(base) / "sipfw" if base else Path(tempfile.gettempdir()) / ("sipfw-%d" % os.getuid())
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def key(device: str) -> str:
    real = os.path.realpath(device)
    return "%s-%s" % (os.path.basename(real), hashlib.sha1(real.encode()).hexdigest()[:10])


def paths(device: str) -> tuple[Path, Path]:
    base = runtime_dir() / key(device)
    return base.with_suffix(".sock"), base.with_suffix(".json")


def holder(device: str) -> dict | None:
    """The live monitor holding ``device`` ({"pid", "since", "device"}), or None."""
    sock_path, info_path = paths(device)
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(info["pid"]), 0)
    except (OSError, KeyError, ValueError, TypeError):
        return None  # a monitor that died without cleaning up
    return info if sock_path.exists() else None


def describe(info: dict) -> str:
    since = time.strftime("%H:%M:%S", time.localtime(info.get("since", 0)))
    return "held by sipfw %s pid %s since %s" % (info.get("what", "monitor"), info.get("pid"),
                                                  since)


def borrow(port, what: str | None = None) -> bool:
    """Ask the monitor holding ``port`` (if any) to let go of it until this process ends.
    True when a monitor lent it, False when nobody holds it."""
    if _borrowed:
        return True  # already lent to this process
    info = holder(port.device)
    if info is None or info.get("pid") == os.getpid():
        return False  # nobody holds it, or this process does (the monitor's own flash)
    sock_path, _ = paths(port.device)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(LEND_TIMEOUT_S)
    try:
        s.connect(str(sock_path))
        what = what or " ".join(w for w in sys.argv[1:3] if not w.startswith("-"))
        req = {"op": "lend", "pid": os.getpid(), "what": what}
        s.sendall((json.dumps(req) + "\n").encode())
        reply = s.makefile("rb").readline()
        ans = json.loads(reply.decode() or "{}")
    except (OSError, ValueError) as e:
        s.close()
        raise PortError("%s: %s and it did not lend the port: %s"
                        % (port.device, describe(info), e)) from None
    if not ans.get("ok"):
        s.close()
        raise PortError("%s: %s, which refused to lend it: %s"
                        % (port.device, describe(info), ans.get("error", "?")))
    s.settimeout(None)
    _borrowed.append(s)
    return True


def give_back() -> None:
    while _borrowed:
        _borrowed.pop().close()


class Server:
    """The monitor's side: a listening socket and the file that names the holder."""

    def __init__(self, device: str, what: str = "monitor"):
        self.device = device
        self.sock_path, self.info_path = paths(device)
        info = holder(device)
        if info is not None:
            raise PortError("%s: port is %s" % (device, describe(info)))
        for p in (self.sock_path, self.info_path):
            p.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.sock_path))
        self.sock.listen(4)
        self.sock.setblocking(False)
        self.since = time.time()
        self.info_path.write_text(json.dumps({"pid": os.getpid(), "since": self.since,
                                              "what": what,
                                              "device": os.path.realpath(device)}))

    def fileno(self) -> int:
        return self.sock.fileno()

    def accept(self):
        """A pending lend request: (conn, request) or None."""
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return None
        conn.settimeout(LEND_TIMEOUT_S)
        try:
            req = json.loads(conn.makefile("rb").readline().decode() or "{}")
        except (OSError, ValueError):
            conn.close()
            return None
        return conn, req

    @staticmethod
    def lend(conn, req) -> None:
        """Port already closed by the caller: say so, then wait for the borrower's EOF."""
        try:
            conn.sendall(b'{"ok": true}\n')
            conn.settimeout(None)
            while conn.recv(256):
                pass
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()
        for p in (self.sock_path, self.info_path):
            p.unlink(missing_ok=True)


def retake(reader, timeout: float = 15.0) -> bool:
    """Reopen ``reader``'s port after a lend: the borrower's serial fd may close a moment
    after its socket does (both at its exit), so "busy" is retried too."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if reader._reopen(deadline):
                return True
        except PortError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
