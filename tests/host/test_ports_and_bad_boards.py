"""`sipfw ports`, --port resolution, and the bad situations: no port, a busy port, several
boards, a port with no MicroPython behind it (silence or garbage). Each is one clear line on
stderr and a non-zero exit, within a bounded time."""

from __future__ import annotations

import json
import os
import pty
import threading
import time
import tty
from types import SimpleNamespace

import pytest
import serial
from hostfix import sipfw
from sipfw import boards
from sipfw.errors import PortError


def one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_ports_lists_virtual_boards_with_their_id(vboards):
    a = vboards("a")
    r = sipfw("ports", "--json")
    assert r.returncode == 0, r.stderr
    [entry] = [json.loads(x) for x in r.stdout.splitlines()]
    assert entry["device"] == a.device and entry["board"] == "vboard"
    assert entry["serial_number"] == a.id and entry["kind"] == "virtual"
    assert a.device in sipfw("ports").stdout


def test_auto_with_two_boards_refuses_to_guess(vboards):
    a, b = vboards("a"), vboards("b")
    r = sipfw("console", "status")
    assert r.returncode == 3
    line = one_line(r)
    assert "2 boards attached, not guessing" in line
    assert a.device in line and b.device in line
    r = sipfw("flash", "--dry-run")
    assert r.returncode == 3 and "not guessing" in one_line(r)
    # named by device, by vboard id, or through $SIPFW_PORT: no question
    assert boards.resolve_port(b.id).device == b.device
    assert boards.resolve_port(a.device).serial_number == a.id
    os.environ["SIPFW_PORT"] = b.id
    try:
        assert boards.resolve_port(None).device == b.device
    finally:
        del os.environ["SIPFW_PORT"]


def test_no_board_and_no_such_port(registry):
    r = sipfw("console", "status")
    assert r.returncode == 3 and "no board found" in one_line(r)
    r = sipfw("flash", "--port", "/dev/does-not-exist", "--board", "esp32")
    assert r.returncode == 3 and "no such port" in one_line(r)


def test_busy_port(vboards):
    board = vboards()
    holder = serial.Serial(board.device, exclusive=True)  # another program has it
    try:
        for argv in (["flash", "--dry-run"], ["logs", "--duration", "1"],
                     ["console", "status"], ["config", "pull"]):
            r = sipfw(*argv, "--port", board.device)
            assert r.returncode == 3, (argv, r.stderr)
            assert "port is busy" in one_line(r)
    finally:
        holder.close()


class FakeDevice:
    """A pty whose far end is not MicroPython: silent, or answering with garbage."""

    def __init__(self, garbage: bytes | None = None):
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.device = os.ttyname(slave)
        self.slave = slave  # kept open so the port does not hang up
        self.garbage = garbage
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        import select

        while not self.stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                try:
                    os.read(self.master, 1024)
                except OSError:
                    return
                if self.garbage:
                    os.write(self.master, self.garbage)

    def close(self):
        self.stop = True
        self.thread.join(1)
        os.close(self.master)
        os.close(self.slave)


@pytest.mark.parametrize("garbage", [None, b"\x00\xffets Jun  8 2016 rst:0x10 \xfe"])
def test_no_micropython_is_explained_not_a_hang(registry, garbage):
    dev = FakeDevice(garbage)
    try:
        t0 = time.monotonic()
        r = sipfw("flash", "--port", dev.device, "--board", "esp32")
        took = time.monotonic() - t0
    finally:
        dev.close()
    assert r.returncode == 5
    line = one_line(r)
    assert "no MicroPython REPL" in line
    assert "To install it: esptool.py --chip esp32 erase_flash" in line
    assert ("no answer" in line) if garbage is None else ("not as MicroPython" in line)
    assert took < 15


def test_usb_ports_matched_to_board_configs_and_refound_by_serial(monkeypatch):
    from serial.tools import list_ports

    seen = [[("/dev/ttyACM0", 0x303A, 0x1001, "AB12"), ("/dev/ttyUSB9", 0x1234, 0x5678, "x")]]

    def comports():
        return [SimpleNamespace(device=d, vid=v, pid=p, serial_number=sn, description="usb")
                for d, v, p, sn in seen[0]]

    monkeypatch.setattr(list_ports, "comports", comports)
    monkeypatch.setattr(boards, "virtual_ports", lambda: [])
    monkeypatch.setattr(boards.os.path, "exists", lambda p: True)
    [esp] = boards.list_ports()
    assert (esp.board, esp.vid_pid, esp.serial_number) == ("esp32", "303a:1001", "AB12")
    assert len(boards.list_ports(only_known=False)) == 2
    assert boards.resolve_port(None).device == "/dev/ttyACM0"
    # after a hard reset the board comes back as ttyACM1: found again by serial number
    seen[0] = [("/dev/ttyACM1", 0x303A, 0x1001, "AB12")]
    assert boards.refind(esp, timeout=1).device == "/dev/ttyACM1"
    seen[0] = []
    with pytest.raises(PortError, match="did not come back"):
        boards.refind(esp, timeout=0.3, interval=0.1)


def test_board_found_again_by_serial_number_after_it_vanished(vboards):
    from sipfw.board import open_board

    board = vboards()
    b = open_board(boards.resolve_port(board.device))
    try:
        board.stop()  # gone, as a USB board re-enumerating after a reset
        board.start()  # back, under a new device name, with the same serial number (id)
        ser = b._reattach(time.monotonic() + 5)
        assert b.port.device == board.device and ser.is_open
        assert b.port.serial_number == board.id
    finally:
        b.close()
