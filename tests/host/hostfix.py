"""Helpers for the host-tool tests: virtual boards, the sipfw CLI as a subprocess, a firmware
tree to flash. Every wait is bounded: a stuck board fails a test, never hangs it. The
fixtures (``registry``, ``vboards``) are in conftest.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

# shared with bench/bench_boards.py: sipfw.boardcheck
from sipfw.boardcheck import (  # noqa: F401
    BIN,
    SIPFW,
    START_LINE,
    Tail,
    agent_main,
    firmware_tree,
    sipfw,
    spawn_vboard,
)
from sipfw.procs import stop_process

ROOT = Path(__file__).resolve().parents[2]


class Vboard:
    """One `sipfw vboard` process."""

    def __init__(self, root: Path, registry: Path, link: Path | None = None,
                 heap: str | None = None):
        self.root, self.registry, self.link, self.heap = root, registry, link, heap
        self.start()

    def start(self):
        env = dict(os.environ, SIPFW_VBOARD_DIR=str(self.registry))
        self.proc, self.device = spawn_vboard(self.root, self.heap, self.link, env)

    @property
    def id(self) -> str:
        from sipfw import vboard

        return vboard.device_id(self.root)

    def interpreter_pids(self) -> list[int]:
        return children(self.proc.pid)

    def stop(self):
        stop_process(self.proc, grace_s=5)
        if self.proc.stdout:
            self.proc.stdout.close()

    def send(self, data: bytes):
        """Bytes to the board as another program would (no lock taken)."""
        fd = os.open(self.device, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def soft_reboot(self):
        """Stop whatever runs (Ctrl-C), then Ctrl-D at the friendly REPL: main.py runs."""
        self.send(b"\x03")
        time.sleep(0.3)
        self.send(b"\r\x02\x04")

    def wait_file(self, name: str, timeout: float = 5.0) -> str:
        path = self.root / name
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if path.exists():
                return path.read_text()
            time.sleep(0.02)
        raise AssertionError("%s never appeared on the board" % name)


def board_files(root: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def children(pid: int) -> list[int]:
    """Live (non-zombie) child processes of ``pid``, from /proc."""
    kids = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[1] == str(pid) and fields[0] != "Z":
            kids.append(int(entry.name))
    return kids


def read_until(port, marker: bytes, timeout: float = 5) -> bytes:
    """Bytes from a serial port until ``marker`` shows; fails the test after ``timeout``."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        data += port.read(port.in_waiting or 1)
    assert marker in data, data
    return data
