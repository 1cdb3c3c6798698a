"""Start the SIP stack (sip_echo_server.py beside this file) as a subprocess on MicroPython
or CPython."""

import os
import shutil
import subprocess
import sys
import time

from sipfw.procs import stop_process

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")
HERE = os.path.dirname(os.path.abspath(__file__))  # sip_echo_server.py


def micropython():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else shutil.which("micropython")


_MPY = []


def mpy_tree():
    """The firmware compiled to .mpy, as `sipfw flash` puts it on a board (built once)."""
    if not _MPY:
        import tempfile

        from sipfw import build

        out = tempfile.mkdtemp(prefix="sipfw-mpy-")
        build.write_tree(FIRMWARE, out)
        _MPY.append(out)
    return _MPY[0]


class EchoServer:
    """``with EchoServer("micropython", ip, port) as srv:`` — stopped (by its pid) on exit.

    On MicroPython it runs the .mpy build, as a board would, in a 192 KB heap on this
    64-bit port (objects about twice an ESP32's size). Measured: it starts in 80 KB and
    answers ordinary traffic in 128 KB, but RFC 4475's 3.5 KB longreq after a run of other
    requests needs more than 160 KB here — see docs/architecture.md, SIP core figures.
    """

    def __init__(self, interp, ip, port, level="warn", heap="192K", mpy=True):
        self.ip, self.port = ip, port
        env = dict(os.environ)
        if interp == "micropython":
            cmd = [micropython(), "-X", "heapsize=" + heap]
            env["MICROPYPATH"] = "%s:%s:.frozen" % (mpy_tree() if mpy else FIRMWARE, HERE)
        else:
            cmd = [sys.executable]
            env["PYTHONPATH"] = FIRMWARE + os.pathsep + HERE
        cmd += ["-m", "sip_echo_server", ip, str(port), level]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, cwd=ROOT, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError("echo server did not start: %r" % (line + self.output()))

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        """What the process printed; stops it first (a live pipe would block the read)."""
        self.stop()
        try:
            return self.proc.stdout.read() or ""
        except ValueError:
            return ""

    def stop(self):
        stop_process(self.proc, grace_s=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def free_port(ip):
    """A port free for both UDP and TCP on ``ip`` (a SIP or DNS server needs both)."""
    import random
    import socket

    for _ in range(100):
        port = random.randint(20000, 60000)
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind((ip, port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise OSError("no free port on " + ip)


def wait_until(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()
