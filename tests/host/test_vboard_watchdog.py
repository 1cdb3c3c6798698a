"""The virtual board's watchdog: a stalled scheduler is reset, a turning one never is.

The board side is the real ``sipua.hal`` (unix heartbeat file) and ``sipua.sched`` feeding
it once per loop turn; the supervisor is the real ``sipfw vboard``. Every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import serial
from hostfix import read_until
from sipfw.procs import stop_process

BIN = Path(sys.executable).parent
FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
PERIOD_MS = 1500

# Counts its boots; stalls (a callback that never returns) on the first boot only.
MAIN = """\
from sipua import hal
from sipua.sched import Scheduler
f = open("/boots.txt", "a")
f.write("x\\n")
f.close()
boots = open("/boots.txt").read().count("x")
s = Scheduler()
print("armed", hal.watchdog_start(%d), "boot", boots)
s.watchdog = hal.feed

def stall():
    import time
    print("stalling")
    time.sleep(60)

if boots == 1:
    s.call_later(800, stall)
s.run()
""" % PERIOD_MS


def test_stalled_loop_is_reset_and_a_turning_one_is_not(tmp_path):
    root = tmp_path / "board"
    root.mkdir()
    shutil.copytree(FIRMWARE / "sipua", root / "sipua")
    (root / "main.py").write_text(MAIN)
    env = dict(os.environ, SIPFW_VBOARD_DIR=str(tmp_path / "registry"))
    proc = subprocess.Popen([str(BIN / "sipfw"), "vboard", "--root", str(root), "--heap", "512k"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        device = proc.stdout.readline().strip()
        assert device.startswith("/dev/pts/"), device
        port = serial.Serial(device, 115200, timeout=0.1)
        out = read_until(port, b"armed True boot 1", 15)
        out += read_until(port, b"stalling", 5)
        t0 = time.monotonic()
        out += read_until(port, b"armed True boot 2", 15)
        took = time.monotonic() - t0
        assert b"vboard: watchdog reset" in out
        # A period after the last heartbeat, which came at most a loop turn (<= 1 s idle)
        # before the stall; the supervisor looks at least once a second.
        assert PERIOD_MS / 1000 - 1.0 <= took < PERIOD_MS / 1000 + 2.5, took
        # The second boot does not stall: fed every turn, it must not be reset again.
        later = b""
        deadline = time.monotonic() + 3 * PERIOD_MS / 1000
        while time.monotonic() < deadline:
            later += port.read(port.in_waiting or 1)
        assert b"watchdog reset" not in later and b"boot 3" not in later, later
        assert (root / "boots.txt").read_text().count("x") == 2
        port.close()
    finally:
        stop_process(proc)


def test_heartbeat_file_only_when_a_supervisor_asks(tmp_path, monkeypatch):
    from sipua.hal import unix

    path = tmp_path / "wdt"
    monkeypatch.delenv(unix.WATCHDOG_ENV, raising=False)
    monkeypatch.setattr(unix, "_wdt", [None, 0, 0])
    assert unix.watchdog_start(8000) is False
    unix.feed()
    assert not path.exists()
    monkeypatch.setenv(unix.WATCHDOG_ENV, str(path))
    assert unix.watchdog_start(0) is False  # 0: off
    assert unix.watchdog_start(8000) is True
    assert path.read_text() == "8000\n"
    path.unlink()
    unix.feed()  # within period/4 of the last beat: no write
    assert not path.exists()
    unix._wdt[2] -= 2001  # the last beat 2 s ago
    unix.feed()
    assert path.read_text() == "8000\n"
