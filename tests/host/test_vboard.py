"""`sipfw vboard` driven as a user would: the CLI as a subprocess, stock mpremote and pyserial
on its serial device.  Every wait is bounded; a stuck vboard fails a test, never hangs it."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from hostfix import children, read_until
from sipfw import vboard

BIN = Path(sys.executable).parent  # the venv's bin: sipfw and mpremote live beside python
START_TIMEOUT_S = 10
STOP_TIMEOUT_S = 5
CMD_TIMEOUT_S = 20

BOOT_PY = 'print("boot ran")\n'
# Appends one line per run, so a test can count how often main.py ran.
MAIN_COUNTING = 'f = open("/boots.txt", "a")\nf.write("x\\n")\nf.close()\nprint("main ran")\n'
MAIN_LOOPING = 'import time\nwhile True:\n    print("tick")\n    time.sleep(0.1)\n'


class Vboard:
    """One `sipfw vboard` process and what it printed."""

    def __init__(self, root: Path, registry: Path, link: Path | None = None, heap=None):
        self.root, self.link = root, link
        argv = [str(BIN / "sipfw"), "vboard", "--root", str(root)]
        argv += ["--link", str(link)] if link else []
        argv += ["--heap", heap] if heap else []
        env = dict(os.environ, SIPFW_VBOARD_DIR=str(registry))
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        self.device = _readline(self.proc.stdout, START_TIMEOUT_S).strip()
        assert self.device.startswith("/dev/pts/"), self.device
        self.heap_line = self.proc.stdout.readline().strip()  # printed with the device line

    def interpreter_pids(self) -> list[int]:
        return children(self.proc.pid)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def _readline(stream, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "vboard printed no device path"
    return stream.readline()


@pytest.fixture
def registry(tmp_path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def start_vboard(tmp_path, registry):
    started = []

    def start(name="board", files=None, **kwargs) -> Vboard:
        root = tmp_path / name
        root.mkdir()
        for fname, text in (files or {}).items():
            (root / fname).write_text(text)
        board = Vboard(root, registry, **kwargs)
        started.append(board)
        return board

    yield start
    stuck = []
    for board in started:  # stop every one, even if another one hangs
        try:
            board.stop()
        except subprocess.TimeoutExpired:
            stuck.append(board.device)
    assert not stuck, f"vboards ignored SIGTERM: {stuck}"


def mpremote(device: str, *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "mpremote"), "connect", device, *args],
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT_S,
        check=False,  # the assertion below shows mpremote's own words
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def main_runs(board: Vboard, timeout: float = 5) -> int:
    """How often main.py ran, once it ran at least once: Ctrl-C before that would stop
    boot.py or main.py half-way, on a board as here."""
    boots = board.root / "boots.txt"
    deadline = time.monotonic() + timeout
    while not boots.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return boots.read_text().count("x")


def friendly_prompt(device: str) -> serial.Serial:
    """Open the port and get to the friendly REPL, whatever the board was doing."""
    port = serial.Serial(device, 115200, timeout=0.1)
    port.write(b"\r\x03\x02")  # interrupt anything running; leave raw REPL if in it
    read_until(port, b">>> ")
    deadline = time.monotonic() + 2
    while port.read(4096) and time.monotonic() < deadline:
        pass  # each key above may answer with its own prompt: let them all pass
    return port


# --------------------------------------------------------------------------- pure helpers


def test_strip_friendly_banner_keeps_boot_output_and_raw_banner():
    data = b'boot ran\nMicroPython v1 on x; linux\r\nType "help()".\r\n>>> \r\n'
    data += vboard.RAW_REPL_BANNER + b">"
    assert vboard.strip_friendly_banner(data) == b"boot ran\n" + vboard.RAW_REPL_BANNER + b">"
    assert vboard.strip_friendly_banner(b"no banner yet") == b"no banner yet"


def test_raw_reset_told_from_friendly_exit_by_the_last_bytes():
    assert vboard.is_raw_reset(b"\x04\x04>OK\r\n")
    assert vboard.is_raw_reset(b"CTRL-B to exit\r\n>OK\r\n")
    assert not vboard.is_raw_reset(b">>> \r\n")


def test_heap_sizes():
    assert vboard.parse_heap("100k") == 100 * 1024
    assert vboard.parse_heap("2M") == 2 * 1024 * 1024
    for bad in ("", "k", "10x", "1k"):
        with pytest.raises(ValueError):
            vboard.parse_heap(bad)


def test_stale_registry_entries_are_dropped(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / f"{gone.pid}.json").write_text(
        f'{{"pid": {gone.pid}, "device": "/dev/pts/999", "starttime": 1}}'
    )
    assert vboard.list_vboards(tmp_path) == []
    assert not list(tmp_path.glob("*.json"))


# --------------------------------------------------------------------------- a running vboard


def test_mpremote_fs_cp_ls_exec_run_on_board_paths(start_vboard, tmp_path):
    board = start_vboard(files={"boot.py": BOOT_PY})
    src = tmp_path / "lib_mod.py"
    src.write_text("VALUE = 42\n")
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint('run says', sys.platform)\n")

    mpremote(board.device, "fs", "cp", str(src), ":x.py", "+", "fs", "mkdir", ":/lib")
    mpremote(board.device, "fs", "cp", str(src), ":/lib/lib_mod.py")
    assert (board.root / "x.py").read_text() == "VALUE = 42\n"
    assert (board.root / "lib" / "lib_mod.py").exists()

    listing = mpremote(board.device, "fs", "ls", ":")
    assert "x.py" in listing and "lib/" in listing and "boot.py" in listing

    code = "import os, sys, gc, lib_mod\nfor v in (os.getcwd(), sys.path, lib_mod.VALUE, "
    code += "gc.mem_free() + gc.mem_alloc()):\n    print(v)"
    cwd, path, value, heap = mpremote(board.device, "exec", code).splitlines()
    assert cwd == "/" and path == "['', '.frozen', '/lib']" and value == "42"
    # --heap default: room for the firmware (~250k as .mpy on 64 bits) and a call
    assert 500_000 < int(heap) <= 524_288
    assert board.heap_line == "heap 512k (524288 bytes; --heap to change it), filesystem %s" % (
        board.root)
    assert "run says linux" in mpremote(board.device, "run", str(script))


def test_soft_reboot_from_friendly_repl_reruns_boot_and_main(start_vboard):
    board = start_vboard(files={"boot.py": BOOT_PY, "main.py": MAIN_COUNTING})
    runs_before = main_runs(board)
    port = friendly_prompt(board.device)
    pids_before = board.interpreter_pids()

    started = time.monotonic()
    port.write(b"\x04")
    seen = read_until(port, b">>> ")
    reboot_s = time.monotonic() - started
    port.close()

    assert b"MPY: soft reboot\r\n" in seen
    assert seen.index(b"soft reboot") < seen.index(b"boot ran") < seen.index(b"main ran")
    assert main_runs(board) == runs_before + 1
    assert board.interpreter_pids() != pids_before  # a new interpreter, same serial port
    assert reboot_s < 2, reboot_s


def test_raw_repl_reset_skips_main_and_stays_in_raw_repl(start_vboard):
    board = start_vboard(files={"boot.py": BOOT_PY, "main.py": MAIN_COUNTING})
    runs_before = main_runs(board)
    port = friendly_prompt(board.device)

    port.write(b"\r\x01")
    read_until(port, vboard.RAW_REPL_BANNER + b">")
    port.write(b"\x04")
    seen = read_until(port, vboard.RAW_REPL_BANNER + b">")
    port.write(b"\x02")
    port.close()

    # What a board sends: OK, the reboot line, boot.py's output, the raw banner; no main.py.
    assert seen.startswith(b"OK\r\nMPY: soft reboot\r\nboot ran\n"), seen
    assert b"MicroPython " not in seen and b"main ran" not in seen
    mpremote(board.device, "soft-reset")
    assert "ok" in mpremote(board.device, "exec", "print('ok')")
    assert main_runs(board) == runs_before


def test_ctrl_c_interrupts_looping_main_into_repl(start_vboard):
    board = start_vboard(files={"main.py": MAIN_LOOPING})
    port = serial.Serial(board.device, 115200, timeout=0.1)
    read_until(port, b"tick\n")
    port.write(b"\x03")
    seen = read_until(port, b">>> ")
    port.write(b"print(6 * 7)\r")
    answer = read_until(port, b">>> ")
    port.close()
    assert b"KeyboardInterrupt" in seen
    assert b"42" in answer


def test_plain_mpremote_exec_while_main_loops(start_vboard):
    board = start_vboard(files={"main.py": MAIN_LOOPING})
    assert "still here" in mpremote(board.device, "exec", "print('still here')")
    # After mpremote's soft reset the board sits at the REPL, main.py not running.
    assert "6" in mpremote(board.device, "resume", "exec", "print(2 * 3)")


def test_mpremote_repl_on_a_terminal(start_vboard):
    board = start_vboard()
    master, slave = pty.openpty()  # mpremote repl wants a terminal on its stdin
    repl = subprocess.Popen(
        [str(BIN / "mpremote"), "connect", board.device, "repl"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    try:
        _pty_read_until(master, b"Connected to MicroPython")
        os.write(master, b"print(6 * 7)\r")
        _pty_read_until(master, b"42")
        os.write(master, b"\x1d")  # Ctrl-]: leave the repl
        assert repl.wait(timeout=CMD_TIMEOUT_S) == 0
    finally:
        if repl.poll() is None:
            repl.kill()
            repl.wait()
        os.close(master)


def _pty_read_until(fd: int, marker: bytes, timeout: float = 5) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            data += os.read(fd, 4096)
    assert marker in data, data
    return data


def test_link_registry_and_clean_stop_on_sigterm(start_vboard, registry, tmp_path):
    link = tmp_path / "dev" / "vboard0"
    board = start_vboard(link=link, heap="200k")
    assert os.readlink(link) == board.device
    assert "linked" in mpremote(str(link), "exec", "print('linked')")
    [entry] = vboard.list_vboards(registry)
    assert entry["device"] == board.device and entry["link"] == str(link)
    assert entry["root"] == str(board.root) and entry["heap"] == "200k"
    assert board.heap_line.startswith("heap 200k (204800 bytes;")
    assert entry["id"].startswith("vb-")
    interpreters = board.interpreter_pids()
    assert interpreters

    assert board.stop() == 0
    assert not os.path.lexists(link)
    assert not any(vboard.pid_alive(pid) for pid in interpreters)
    assert vboard.list_vboards(registry) == []


def test_link_of_a_running_vboard_is_not_taken_over(start_vboard, registry, tmp_path):
    link = tmp_path / "vboard0"
    board = start_vboard(link=link)
    second = subprocess.run(
        [str(BIN / "sipfw"), "vboard", "--root", str(tmp_path / "other"), "--link", str(link)],
        env=dict(os.environ, SIPFW_VBOARD_DIR=str(registry)),
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT_S,
        check=False,
    )
    assert second.returncode != 0 and "belongs to the running vboard" in second.stderr
    assert second.stdout == ""
    assert os.readlink(link) == board.device
    assert len(vboard.list_vboards(registry)) == 1


def test_two_vboards_at_once(start_vboard, registry):
    one = start_vboard("one")
    two = start_vboard("two")
    assert one.device != two.device
    with_files = [(one, "a.txt"), (two, "b.txt")]
    procs = [
        subprocess.Popen(
            [str(BIN / "mpremote"), "connect", b.device, "exec", f"open('{n}', 'w').write('hi')"],
        )
        for b, n in with_files
    ]
    assert [p.wait(timeout=CMD_TIMEOUT_S) for p in procs] == [0, 0]
    assert (one.root / "a.txt").exists() and not (one.root / "b.txt").exists()
    assert (two.root / "b.txt").exists() and not (two.root / "a.txt").exists()
    devices = {e["device"] for e in vboard.list_vboards(registry)}
    assert devices == {one.device, two.device}
    assert one.stop(signal.SIGINT) == 0  # Ctrl-C in its terminal stops a vboard as well
    assert [e["device"] for e in vboard.list_vboards(registry)] == [two.device]
    assert "two" in mpremote(two.device, "exec", "print('two')")


def test_sys_exit_in_main_soft_reboots_as_on_a_board(start_vboard):
    main = 'import sys, time\nprint("main start")\ntime.sleep(0.3)\nsys.exit()\n'
    board = start_vboard(files={"main.py": main})
    port = serial.Serial(board.device, 115200, timeout=0.1)
    read_until(port, b"MPY: soft reboot\r\nmain start\n")
    port.close()


def test_supervisor_idles_after_gc_closes_the_launcher_pipe(start_vboard):
    # The launcher's control-pipe file object becomes garbage after boot; once MicroPython's
    # GC closes it, a supervisor that kept polling the pipe would spin at 100% CPU.
    board = start_vboard()
    mpremote(board.device, "exec", "import gc; gc.collect()")
    ticks = os.sysconf("SC_CLK_TCK")
    before = _cpu_ticks(board.proc.pid)
    time.sleep(0.5)
    assert _cpu_ticks(board.proc.pid) - before < 0.1 * ticks  # under 20% of a CPU


def _cpu_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime
