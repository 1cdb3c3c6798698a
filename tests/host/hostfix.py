"""Helpers for the host-tool tests: virtual boards, the sipfw CLI as a subprocess, a firmware
tree to flash. Every wait is bounded: a stuck board fails a test, never hangs it. The
fixtures (``registry``, ``vboards``) are in conftest.py."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sipfw.procs import stop_process

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SIPFW = str(BIN / "sipfw")
CMD_TIMEOUT_S = 40

START_LINE = "0 INFO app start version=%s"


class Vboard:
    """One `sipfw vboard` process."""

    def __init__(self, root: Path, registry: Path, link: Path | None = None,
                 heap: str | None = None):
        self.root, self.registry, self.link, self.heap = root, registry, link, heap
        self.start()

    def start(self):
        argv = [SIPFW, "vboard", "--root", str(self.root)]
        if self.link:
            argv += ["--link", str(self.link)]
        if self.heap:
            argv += ["--heap", self.heap]
        env = dict(os.environ, SIPFW_VBOARD_DIR=str(self.registry))
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        assert ready, "vboard printed no device path"
        self.device = self.proc.stdout.readline().strip()
        assert self.device.startswith("/dev/"), self.device

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


def sipfw(*args: str, env: dict | None = None, timeout: float = CMD_TIMEOUT_S,
          stdin: str | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([SIPFW, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, input=stdin)


def firmware_tree(dest: Path, main: str | None = None, version: str = "test") -> Path:
    """A copy of firmware/ (the real sipua package) with a small main.py that imports the
    package the way the app will and prints the start line."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "firmware" / "sipua", dest / "sipua",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if main is None:
        main = ("from sipua import config, log, sched, console\n"
                "cfg, err = config.load('/config.json')\n"
                "print(%r)\n" % (START_LINE % version))
    (dest / "main.py").write_text(main)
    return dest


def board_files(root: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


class Tail:
    """`sipfw ARGS` running in the background; its stdout lines as they come."""

    def __init__(self, *args: str):
        import queue
        import threading

        self.proc = subprocess.Popen([SIPFW, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._q: queue.Queue = queue.Queue()
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self):
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        import queue

        end = time.monotonic() + timeout
        for line in self.lines:
            if text in line:
                return line
        while time.monotonic() < end:
            try:
                line = self._q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError("no %r in the output: %s" % (text, "\n".join(self.lines)))

    def finish(self, timeout: float = 20.0) -> tuple[int, str]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._t.join(2)
        while not self._q.empty():
            line = self._q.get()
            if line is not None:
                self.lines.append(line)
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self.proc.stdout.close()
        return self.proc.returncode, err

    def opened(self, device: str, timeout: float = 5.0) -> None:
        """Wait until this process holds ``device`` open (pyserial flushes input on open:
        what the board prints before that is not seen, on a real board as here)."""
        real = os.path.realpath(device)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                for fd in os.listdir("/proc/%d/fd" % self.proc.pid):
                    try:
                        if os.readlink("/proc/%d/fd/%s" % (self.proc.pid, fd)) == real:
                            time.sleep(0.1)
                            return
                    except OSError:
                        pass
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("sipfw never opened %s" % device)


# An agent as the app will run it: scheduler + console, config loaded at start, a boot
# counter on the board (/boots.txt) so a test can tell a reload from a reset.
AGENT_MAIN = """\
from sipua.sched import Scheduler
from sipua.console import Console
from sipua.log import log
from sipua import config
with open('/boots.txt', 'a') as f:
    f.write('x')
s = Scheduler(log=log)
c = Console(log=log)
state = {"cfg": config.load("config.json")[0]}
c.register("status", lambda args: {"accounts": len(state["cfg"]["accounts"])}, "status")
def reload():
    state["cfg"], err = config.load("config.json")
    log.info("app", "config_reloaded", accounts=len(state["cfg"]["accounts"]))
    return {"accounts": len(state["cfg"]["accounts"])}
if RELOAD:
    c.reload_hook = reload
c.start(s)
log.info("app", "start", version="t", accounts=len(state["cfg"]["accounts"]))
s.run()
"""


def agent_main(reload: bool = True) -> str:
    return "RELOAD = %r\n" % reload + AGENT_MAIN


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
