"""The console's stdin reader on the real MicroPython unix port: select.poll on sys.stdin
inside the scheduler, commands written into a pseudo-terminal as a host would."""

import os
import pty
import select
import subprocess
import sys
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")

SCRIPT = """
from sipua.sched import Scheduler
from sipua.console import Console
from sipua.log import log
s = Scheduler(log=log)
c = Console(log=log)
c.register("quit", lambda args: s.call_later(10, s.stop))
c.register("ticks", lambda args: {"now": s.now() >= 0})
c.start(s)
print("ready")
s.run(until_ms=10000)
print("stopped")
"""


def read_until(fd, marker, timeout=5.0):
    buf = b""
    end = time.monotonic() + timeout
    while marker not in buf and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return buf


def test_commands_over_a_pty_reach_the_running_scheduler():
    master, slave = pty.openpty()
    tty.setraw(slave)
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
    proc = subprocess.Popen([MICROPYTHON, "-c", SCRIPT], stdin=slave, stdout=slave,
                            stderr=subprocess.PIPE, env=env)
    os.close(slave)
    try:
        assert b"ready" in read_until(master, b"ready")
        os.write(master, b"help\r\n#5 ticks\n")
        out = read_until(master, b'"id": "5"')
        os.write(master, b"quit\n")
        out += read_until(master, b"stopped")
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    lines = [x for x in out.decode().splitlines() if x.startswith("@")]
    assert lines[0].startswith('@{"') and '"cmd": "help"' in lines[0]
    assert '"now": true' in lines[1] and '"id": "5"' in lines[1]
    assert '"cmd": "quit"' in lines[2]
    assert "stopped" in out.decode()


def test_stdin_at_end_of_file_is_dropped_not_polled_for_ever():
    # stdin is /dev/null (a Pi's systemd service): always "readable", never any data
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
    script = SCRIPT.replace("s.run(until_ms=10000)", "s.run(until_ms=300)")
    t0 = time.monotonic()
    proc = subprocess.run([MICROPYTHON, "-c", script], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=env, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert "WARN console input_closed" in proc.stdout
    assert proc.stdout.count("input_closed") == 1
    assert "stopped" in proc.stdout and time.monotonic() - t0 < 5
