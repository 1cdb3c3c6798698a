"""The board on a Raspberry Pi (sipfw.serialrunner): the vboard's runner attached to a serial
line. A socat pty pair stands in for the Pi's UART: the runner holds one end, as it would
hold /dev/ttyGS0 or /dev/serial0; the host tools use the other end, as a PC on the far side
of the cable does. Each interpreter the runner supports is tried: MicroPython's unix port
from PyPI (pip), a micropython executable (the venv's, standing in for one built on the Pi
from source) and CPython (sipfw.cpyboard)."""

from __future__ import annotations

import json
import subprocess

import pytest
from hostfix import BIN, SIPFW, firmware_tree, sipfw
from sipfw import serialrunner
from sipfw.boardcheck import PI_INTERPRETERS, PiLine, pi_round
from sipfw.vboard import VboardError


@pytest.fixture(params=sorted(PI_INTERPRETERS))
def line(request, tmp_path, registry):
    interpreter, board = PI_INTERPRETERS[request.param]
    wire = PiLine(tmp_path, interpreter, board)
    yield wire
    wire.stop()


def test_flash_console_config_logs_over_the_line(tmp_path, line):
    got = pi_round(line, tmp_path)  # what bench/bench_boards.py reports, step by step
    r = got["flash"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "agent ready in" in r.stdout, r.stdout
    manifest = json.loads((line.root / "sipfw.json").read_text())
    assert manifest["board"] == line.board
    if line.board == "rpi_cpython":  # sources, and the host stand-ins CPython needs
        assert "sipua/_cpython.py" in manifest["files"] and "sipua/log.py" in manifest["files"]
        assert "heap: not checked" in r.stdout
    else:
        assert "sipua/log.mpy" in manifest["files"]
        assert "on a 64-bit board; this board has" in r.stdout
    r = got["reflash"]
    assert r.returncode == 0 and "0 file(s) to copy" in r.stdout, r.stdout + r.stderr

    r = got["status"]
    assert r.returncode == 0, r.stderr
    ans = json.loads(r.stdout)
    assert ans["cmd"] == "status" and ans["ok"] is True and ans["accounts"] == 0

    r = got["push"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((line.root / "config.json").read_text())["accounts"][0]["user"] == "1001"
    r = got["pull"]
    assert r.returncode == 0 and '"1001"' in r.stdout, r.stdout + r.stderr

    rc, err, lines = got["logs"]
    assert rc == 0, err + "\n".join(lines)
    assert any("soft reboot" in x for x in lines), lines
    assert any("INFO app start" in x for x in lines), lines
    assert got["first_log_s"] is not None and 0 < got["first_log_s"] < 20
    print("%s: flash %.1f s, first log line %.2f s after the soft reboot"
          % (line.board, got["flash_s"], got["first_log_s"]))


def test_mpremote_works_on_the_far_end(tmp_path, line):
    mpremote = str(BIN / "mpremote")
    (tmp_path / "hello.txt").write_text("hi\n")
    r = subprocess.run([mpremote, "connect", line.device, "fs", "cp", str(tmp_path / "hello.txt"),
                        ":hello.txt", "+", "fs", "ls", "+", "exec",
                        "import os; print(open('/hello.txt').read().strip(), os.getcwd())"],
                       capture_output=True, text=True, timeout=40)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (line.root / "hello.txt").read_text() == "hi\n"  # the board's / is its root folder
    assert "hi /" in r.stdout and "hello.txt" in r.stdout
    r = subprocess.run([mpremote, "connect", line.device, "fs", "cat", ":nothing-here"],
                       capture_output=True, text=True, timeout=40)
    assert r.returncode != 0 and "No such file" in r.stdout + r.stderr, r.stdout + r.stderr


def test_cpython_board_refuses_mpy(tmp_path, registry):
    wire = PiLine(tmp_path, "cpython")
    try:
        src = firmware_tree(tmp_path / "fw")
        r = sipfw("flash", "--port", wire.device, "--board", "rpi", "--source", str(src))
        assert r.returncode == 5, r.stdout + r.stderr
        assert ("this board runs CPython, which cannot load .mpy files: flash it with --board "
                "rpi_cpython (sources). Nothing was copied.") in r.stderr
        assert not (wire.root / "sipua").exists()
    finally:
        wire.stop()


def test_runner_refuses_bad_arguments(tmp_path):
    with pytest.raises(VboardError, match="--interpreter must be pip, cpython or a micropython"):
        serialrunner.SerialBoard(tmp_path, "/dev/null", interpreter="nope")
    with pytest.raises(VboardError, match="baud rate 1234 is not one of"):
        serialrunner.SerialBoard(tmp_path, "/dev/null", baud=1234)
    with pytest.raises(VboardError, match="not a serial device"):
        serialrunner.SerialBoard(tmp_path, "/dev/null").start()
    r = subprocess.run([str(BIN / "python"), "-m", "sipfw.serialrunner", "--root",
                        str(tmp_path), "--serial", str(tmp_path / "no-such-tty")],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "no-such-tty: cannot open: No such file" in r.stderr
    r = subprocess.run([SIPFW, "vboard", "--root", str(tmp_path), "--serial", "/dev/null",
                        "--link", str(tmp_path / "l")], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1 and "--link is for a vboard's own pty" in r.stderr, r.stderr
