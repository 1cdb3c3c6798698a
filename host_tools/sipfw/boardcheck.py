"""What issue 11 checks on boards, run the same way by the tests (tests/host) and by
``bench/bench_boards.py``, so that both exercise and measure one code path:

* ``sipfw`` (the CLI as a subprocess), ``spawn_vboard`` (a ``sipfw vboard`` process and its
  device), ``Tail`` (a ``sipfw`` command read line by line, each line's host time kept);
* ``firmware_tree``: a copy of firmware/ with a small main.py (``AGENT_MAIN``: scheduler,
  console, config, log; no network);
* ``PiLine`` and ``pi_round``: the Raspberry Pi runner (sipfw.serialrunner) on a socat pty
  pair, and what a person does with it: flash, flash again, console status, config push and
  pull, logs across a soft reboot;
* ``romfs_heap``: the heap the firmware's modules keep on MicroPython's unix port imported as
  ``.mpy`` files and from a ``vfs.VfsRom`` image (heapcheck's ROMFS layout factor).

Every wait is bounded; a failure raises ``CheckFailed`` (an AssertionError, so a test shows
it as one).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .paths import FIRMWARE_DIR
from .procs import stop_process

BIN = Path(sys.executable).parent
SIPFW = str(BIN / "sipfw")
CMD_TIMEOUT_S = 40

START_LINE = "0 INFO app start version=%s"
READY_LINE = "1 INFO app ready heap_free=1234 ip=127.0.0.1"  # what `sipfw flash` waits for


LOG_LINE = re.compile(r"(^|\s)\d+ (DEBUG|INFO|WARN|ERROR) \S+ \S+")  # firmware/sipua/log.py


class CheckFailed(AssertionError):
    pass


def check(ok, what) -> None:
    if not ok:
        raise CheckFailed(what)


def sipfw(*args: str, env: dict | None = None, timeout: float = CMD_TIMEOUT_S,
          stdin: str | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([SIPFW, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, input=stdin)


def spawn_vboard(root, heap: str | None = None, link=None,
                 env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """``sipfw vboard --root ROOT`` started; (its process, the device path it printed)."""
    argv = [SIPFW, "vboard", "--root", str(root)]
    if link:
        argv += ["--link", str(link)]
    if heap:
        argv += ["--heap", heap]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    device = proc.stdout.readline().strip() if ready else ""
    if not device.startswith("/dev/"):
        stop_process(proc, grace_s=5)
        proc.stdout.close()
        raise CheckFailed("vboard printed no device path: %r" % device)
    return proc, device


def firmware_tree(dest: Path, main: str | None = None, version: str = "test") -> Path:
    """A copy of firmware/ (the real sipua package) with a small main.py that imports the
    package the way the app will and prints the start and ready lines."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(os.path.join(FIRMWARE_DIR, "sipua"), dest / "sipua",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if main is None:
        main = ("from sipua import config, log, sched, console\n"
                "cfg, err = config.load('/config.json')\n"
                "print(%r)\nprint(%r)\n" % (START_LINE % version, READY_LINE))
    (dest / "main.py").write_text(main)
    return dest


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
log.info("app", "ready", ip="127.0.0.1")
s.run()
"""


def agent_main(reload: bool = True) -> str:
    return "RELOAD = %r\n" % reload + AGENT_MAIN


class Tail:
    """`sipfw ARGS` running in the background; its stdout lines as they come (``lines``),
    and the host time each was read (``stamps``, time.monotonic)."""

    def __init__(self, *args: str):
        import queue
        import threading

        self.proc = subprocess.Popen([SIPFW, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.stamps: list[float] = []
        self._q: queue.Queue = queue.Queue()
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self):
        for line in self.proc.stdout:
            self.stamps.append(time.monotonic())
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
        raise CheckFailed("no %r in the output: %s" % (text, "\n".join(self.lines)))

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
        raise CheckFailed("sipfw never opened %s" % device)


# ------------------------------------------------------------------ the Raspberry Pi runner

# What runs the firmware on a Pi (sipfw.serialrunner --interpreter), and the board config
# flash uses with it: MicroPython's unix port from PyPI, a micropython executable (the venv's,
# standing in for one built on the Pi from source), CPython (sipfw.cpyboard, sources).
PI_INTERPRETERS = {
    "pip": ("pip", "rpi"),
    "micropython-executable": (str(BIN / "micropython"), "rpi"),
    "cpython": ("cpython", "rpi_cpython"),
}


def wait_path(path: Path, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        check(time.monotonic() < end, "%s never appeared" % path)
        time.sleep(0.02)


class PiLine:
    """A socat pty pair (the wire) and the runner on its Pi end: the runner holds one end, as
    it would hold /dev/ttyGS0 or /dev/serial0; ``device`` is the other, the PC's."""

    def __init__(self, tmp: Path, interpreter: str, board: str = "rpi"):
        socat = shutil.which("socat")
        check(socat, "socat is missing: `make test-deps` installs it")
        self.board = board
        self.uart, self.pc, self.root = tmp / "uart", tmp / "pc", tmp / "pi-root"
        self.socat = subprocess.Popen([socat, "pty,raw,echo=0,link=%s" % self.uart,
                                       "pty,raw,echo=0,link=%s" % self.pc])
        self.runner = None
        try:
            wait_path(self.uart)
            wait_path(self.pc)
            self.runner = subprocess.Popen(
                [SIPFW, "vboard", "--root", str(self.root), "--serial", str(self.uart),
                 "--interpreter", interpreter, "--heap", "1M"],
                stdout=subprocess.PIPE, text=True)
            line = self.runner.stdout.readline()
            check(line.startswith("%s: " % self.uart), "the runner said %r" % line)
        except BaseException:
            self.stop()
            raise
        self.device = str(self.pc)

    def send(self, data: bytes) -> None:
        fd = os.open(self.device, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def stop(self) -> None:
        if self.runner:
            stop_process(self.runner, grace_s=5)
            self.runner.stdout.close()
        stop_process(self.socat, grace_s=2)


def pi_round(line: PiLine, workdir: Path) -> dict:
    """A person's round with a Pi over its serial line, each step's result kept: "flash"
    (``AGENT_MAIN``, an empty config on the board; "flash_s" its wall time), "reflash" (the
    same again), "status" (``console status``), "push" (``config push``: one account),
    "pull" (``config pull``), then ``sipfw logs`` across a soft reboot (Ctrl-C, Ctrl-D at the
    friendly REPL): "logs" (exit code, stderr, lines), "first_log_s" (host time from the
    Ctrl-D to the first line of the firmware's log, None when none came)."""
    src = firmware_tree(workdir / "fw", main=agent_main())
    (line.root / "config.json").write_text('{"accounts": []}')
    out: dict = {}
    t0 = time.monotonic()
    out["flash"] = sipfw("flash", "--port", line.device, "--board", line.board, "--source",
                         str(src))
    out["flash_s"] = time.monotonic() - t0
    if out["flash"].returncode != 0:
        return out
    out["reflash"] = sipfw("flash", "--port", line.device, "--board", line.board, "--source",
                           str(src))
    out["status"] = sipfw("console", "--port", line.device, "status")
    new = workdir / "new.json"
    new.write_text(json.dumps({"accounts": [{"user": "1001", "server": "127.0.0.1",
                                             "password": "pw"}]}))
    out["push"] = sipfw("config", "push", str(new), "--port", line.device, "--board",
                        line.board)
    out["pull"] = sipfw("config", "pull", "--port", line.device, "--board", line.board)
    tail = Tail("logs", "--port", line.device, "--until", "app start", "--duration", "20")
    tail.opened(line.device)
    line.send(b"\x03")  # stop the agent, then a soft reboot at the friendly REPL
    time.sleep(0.3)
    t0 = time.monotonic()
    line.send(b"\r\x02\x04")
    rc, err = tail.finish()
    out["logs"] = (rc, err, tail.lines)
    # the first line the firmware's log prints after the reboot (<ms> <LEVEL> <area> ...)
    first = [t for t, x in zip(tail.stamps, tail.lines, strict=False)
             if t >= t0 and LOG_LINE.search(x)]
    out["first_log_s"] = first[0] - t0 if first else None
    return out


# ------------------------------------------------------------------ ROMFS layout factor

# Runs on the MicroPython unix port: import every module named in the file argv[3] from
# argv[2] (a folder of .mpy files, or a VfsRom image), print the heap they keep. The image is
# read into a bytes object before the baseline (the unix port has no ROM segment to map it
# from), so it is not counted: what is left is what a board with a ROMFS partition keeps.
IMPORT_ALL = """\
import gc, sys, vfs
mods = open(sys.argv[3]).read().split(',')
if sys.argv[1] == 'rom':
    img = open(sys.argv[2], 'rb').read()
    vfs.mount(vfs.VfsRom(img), '/rom')
    sys.path[:] = ['/rom']
else:
    sys.path[:] = [sys.argv[2]]
gc.collect()
base = gc.mem_alloc()
for m in mods:
    __import__(m)
gc.collect()
print(gc.mem_alloc() - base)
"""


def romfs_heap(micropython: str, workdir: Path, modules: list[str] | None = None) -> dict:
    """The heap ``modules`` (default: every firmware module the unix port can load) keep on
    the unix port ``micropython``, imported from the .mpy files ("mpy") and from a VfsRom image
    of the same files ("rom"), in bytes; "ratio" rom/mpy, "modules" how many, "image" the
    image's size. The .mpy tree and image are built once in ``workdir``."""
    from . import build, romfs

    tree, img = workdir / "tree", workdir / "img.romfs"
    items = build.write_tree(FIRMWARE_DIR, str(tree))
    rom, _ = romfs.split_items(items)
    if not img.exists():
        img.write_bytes(romfs.build_image(rom))
    have = [it.remote[:-4].replace("/__init__", "").replace("/", ".") for it in rom
            if not it.remote.endswith("/tls.mpy")]  # the unix port from PyPI has no ssl
    if modules is None:
        mods = have
    else:
        missing = sorted(set(modules) - set(have))
        check(not missing, "not in the unix port's tree: %s" % ", ".join(missing))
        mods = list(modules)
    script = workdir / "import_all.py"
    script.write_text(IMPORT_ALL)
    # a file, not an argument: this unix port dies ("FATAL: uncaught NLR") at start when an
    # argument after the script is 256 bytes or longer
    mods_file = workdir / "mods.txt"
    mods_file.write_text(",".join(mods))
    kept = {}
    for how, where in (("mpy", tree), ("rom", img)):
        r = subprocess.run([micropython, "-X", "heapsize=4M", str(script), how, str(where),
                            str(mods_file)], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, r.stdout + r.stderr)
        kept[how] = int(r.stdout.split()[-1])
    return {"mpy": kept["mpy"], "rom": kept["rom"], "ratio": kept["rom"] / kept["mpy"],
            "modules": len(mods), "image": img.stat().st_size}
