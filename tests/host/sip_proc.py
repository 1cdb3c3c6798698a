"""Start the SIP stack (sipua.sip.echo_server) as a subprocess on MicroPython or CPython."""

import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")


def micropython():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else shutil.which("micropython")


class EchoServer:
    """``with EchoServer("micropython", ip, port) as srv:`` — stopped (by its pid) on exit."""

    def __init__(self, interp, ip, port, level="warn", heap="256K"):
        self.ip, self.port = ip, port
        env = dict(os.environ)
        if interp == "micropython":
            # The ESP32 has ~100 KB of heap for everything: run the stack in far less.
            cmd = [micropython(), "-X", "heapsize=" + heap]
            env["MICROPYPATH"] = FIRMWARE + ":.frozen"
        else:
            cmd = [sys.executable]
            env["PYTHONPATH"] = FIRMWARE
        cmd += ["-m", "sipua.sip.echo_server", ip, str(port), level]
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
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def free_port(ip):
    import socket

    for port in range(25060, 25160):
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
