"""The virtual board: the MicroPython unix port behind a pseudo-terminal.

Two pseudo-terminals and a relay, so the host side behaves like a board's serial port:

    host (mpremote, pyserial) ── pty A slave ─┐          ┌─ pty B slave ── micropython
                                  (/dev/pts/N) └ master A ⇄ supervisor ⇄ master B ┘  (ctty)

* pty A is what the host opens.  It belongs to the supervisor, not to an interpreter, so the
  host's connection survives every soft reboot.  Its master reports a hang-up while no host
  has the port open: board output then goes nowhere, as on a UART nobody listens to, and
  while a host is there no byte is lost (the interpreter waits for a slow reader).
* pty B is the interpreter's controlling terminal with ISIG on, so a Ctrl-C byte becomes
  SIGINT -> KeyboardInterrupt while code runs (the port's REPL turns ISIG off while it reads
  a line, so at the prompt Ctrl-C is an ordinary key, as on a board).
* The unix port exits on Ctrl-D where a board soft-reboots.  The supervisor restarts it,
  prints the board's ``MPY: soft reboot`` line and runs ``boot.py`` and ``main.py`` again, or
  only ``boot.py`` and straight back into the raw REPL when the Ctrl-D came from the raw REPL
  (that is what ``mpremote`` expects from ``enter_raw_repl(soft_reset=True)``).
* A small launcher (``-c`` code) mounts DIR at ``/`` with ``VfsPosix``, so ``/main.py`` and
  ``:main.py`` both land in DIR and ``sys.path`` is a board's ``['', '.frozen', '/lib']``.
  It reports on a control pipe when it is up (host bytes are held until then, so a Ctrl-C
  cannot hit the interpreter before its SIGINT handler exists) and when ``boot.py`` or
  ``main.py`` raised SystemExit (a board soft-reboots then; the unix port under ``-i`` would
  fall into the REPL instead).

* The watchdog: the board's ``hal.watchdog_start(ms)`` (unix) writes a heartbeat file named
  by ``SIPFW_WATCHDOG`` (``/.watchdog`` in DIR) holding its period, and ``hal.feed()`` keeps
  rewriting it while the scheduler turns.  When it goes stale for longer than that period
  the supervisor kills the interpreter and boots ``main.py`` again, as a WDT reset does; a
  board that never arms it is never reset.

Each running vboard writes a JSON entry into a registry folder so ``sipfw ports`` can list it
(``list_vboards``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import termios
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SipfwError

log = logging.getLogger(__name__)

# The firmware's 100 KB ESP32 budget does not hold on this 64-bit interpreter (pointers
# and objects are twice the size): the agent needs about 250 KB as .mpy just to start, and a
# call on top. 512k is what the lab tests run; --heap squeezes it.
DEFAULT_HEAP = "512k"
SOFT_REBOOT_BANNER = b"MPY: soft reboot\r\n"  # what ESP32/rp2 ports print; mpremote waits for it
RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_BANNER_START = b"MicroPython "
# The unix port answers Ctrl-D on an empty raw-REPL line with "OK\r\n" right after the ">"
# prompt, then exits; at the friendly REPL it prints "\r\n" after ">>> ".  That is how the
# supervisor tells a raw-REPL reset (skip main.py, stay in raw REPL) from a friendly one.
RAW_RESET_TAIL = b">OK\r\n"
CTRL_A = b"\x01"

OUTPUT_CAP = 64 * 1024  # board -> host bytes queued before the interpreter is made to wait
TX_TIMEOUT_S = 0.5  # a host that holds the port but reads nothing for this long loses output
INPUT_CAP = 64 * 1024  # host -> board bytes held before the host is made to wait
STOP_GRACE_S = 2.0  # SIGTERM -> SIGKILL for the interpreter
BANNER_HOLD_S = 3.0  # longest a raw-reset boot holds output back looking for the raw banner
MIN_BOOT_INTERVAL_S = 0.1  # between boots that ended by themselves (sys.exit in main.py)
MAX_FAILED_STARTS = 3  # interpreter died before its launcher ran, this many times in a row
WATCHDOG_FILE = ".watchdog"  # in DIR; the board sees it as /.watchdog (SIPFW_WATCHDOG)
WATCHDOG_RESET_LINE = b"\r\nvboard: watchdog reset\r\n"  # an ESP32 prints its rst: cause

# Runs inside MicroPython via `-c`.  Kept free of f-strings/newer syntax on purpose, and it
# deletes its own names so the REPL namespace looks like a board's after boot.
_LAUNCHER = """\
import os, sys
os.umount('/')
os.mount(os.VfsPosix({root!r}), '/')
os.chdir('/')
sys.path[:] = ['', '.frozen', '/lib']
def _vb_boot(names, ctl):
    ctl.write(b'up\\n')
    for name in names:
        try:
            os.stat(name)
        except OSError:
            continue
        try:
            with open(name) as f:
                code = compile(f.read(), name, 'exec')
            exec(code, globals())
        except SystemExit:
            ctl.write(b'reset\\n')
            import time
            time.sleep(10)
        except BaseException as e:
            sys.print_exception(e)
_vb_boot({names!r}, open({ctl_fd}, 'wb'))
del _vb_boot, os, sys
"""


class VboardError(SipfwError):
    """A virtual board could not be started or listed."""


# --------------------------------------------------------------------------- pure helpers


def launcher_source(root: str, ctl_fd: int, run_main: bool) -> str:
    names = ("boot.py", "main.py") if run_main else ("boot.py",)
    return _LAUNCHER.format(root=root, names=names, ctl_fd=ctl_fd)


def interpreter_argv(heap_bytes: int, launcher: str) -> list[str]:
    # Run the port in this very Python: the `micropython` console script only wraps
    # micropython_unix.main(), and this way no PATH lookup can pick another install.
    # Opening our tty again as a fresh session leader makes it the controlling tty, so the
    # line discipline turns a Ctrl-C byte into SIGINT for us (no preexec_fn needed).
    bootstrap = (
        "import os, sys, micropython_unix as m\n"
        "os.close(os.open(os.ttyname(0), os.O_RDWR))\n"
        "sys.argv[0] = 'micropython'\n"
        "sys.exit(m.main())\n"
    )
    heap = f"heapsize={heap_bytes}"
    return [sys.executable, "-c", bootstrap, "-X", heap, "-i", "-c", launcher]


def is_raw_reset(tail: bytes) -> bool:
    return tail.endswith(RAW_RESET_TAIL)


def strip_friendly_banner(data: bytes) -> bytes:
    """Drop the friendly banner and ``>>>`` prompt the port prints before the Ctrl-A that the
    supervisor injected after a raw-REPL reset, so the host sees what a board sends:
    ``MPY: soft reboot``, boot.py's output, then the raw REPL banner."""
    end = data.find(RAW_REPL_BANNER)
    start = data.rfind(FRIENDLY_BANNER_START, 0, max(end, 0))
    if end < 0 or start < 0:
        return data
    return data[:start] + data[end:]


def parse_heap(text: str) -> int:
    """Bytes in a `-X heapsize` value (``100k``, ``2M``, ``65536``); ValueError if invalid."""
    units = {"k": 1024, "m": 1024 * 1024}
    body = text.strip().lower()
    scale = units.get(body[-1:], 1)
    if scale != 1:
        body = body[:-1]
    if not body.isdigit():
        raise ValueError(f"heap size must look like 100k, 2M or 65536: {text!r}")
    size = int(body) * scale
    if size < 16 * 1024:
        raise ValueError(f"heap size {text!r} is below 16k, too small to run a REPL")
    return size


def heap_line(heap_bytes: int, root: Path) -> str:
    """The vboard's second stdout line: the heap in use, and the folder it boots from."""
    return "heap %dk (%d bytes; --heap to change it), filesystem %s" % (
        heap_bytes // 1024, heap_bytes, root)


def device_id(root: Path) -> str:
    """A serial-number-like id, stable for a given root folder (as a board's is for its
    flash), so tools can pick a vboard by id across restarts."""
    return "vb-" + hashlib.sha1(str(root).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- pty plumbing


def _open_pty(isig: bool) -> tuple[int, int]:
    """A pty pair, slave in raw mode (no echo, no CR/LF mapping, no output processing: the
    raw-REPL protocol writes its own CR LF).  ``isig`` keeps Ctrl-C -> SIGINT."""
    master, slave = os.openpty()
    _set_raw(slave, isig)
    os.set_blocking(master, False)
    return master, slave


def _set_raw(fd: int, isig: bool) -> None:
    tty.setraw(fd, termios.TCSANOW)
    if isig:
        attrs = termios.tcgetattr(fd)
        attrs[3] |= termios.ISIG
        termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _write_some(fd: int, data: bytearray) -> None:
    """Write what the fd takes now and drop it from ``data``; keep the rest."""
    try:
        n = os.write(fd, data)
    except BlockingIOError:
        return
    except OSError as exc:
        if exc.errno != errno.EIO:  # EIO: the other side is gone for a moment
            raise
        return
    del data[:n]


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except (BlockingIOError, InterruptedError):
        return b""
    except OSError as exc:
        if exc.errno == errno.EIO:
            return b""
        raise


# --------------------------------------------------------------------------- one boot


@dataclass
class _Boot:
    """One interpreter process, from start to its exit (one soft-reboot cycle)."""

    proc: subprocess.Popen
    pidfd: int
    ctl: int  # read end of the launcher's control pipe
    raw: bool  # started by a raw-REPL reset: skip main.py, come back in the raw REPL
    started: float
    up: bool = False  # launcher ran: MicroPython's SIGINT handler exists, host bytes may flow
    hiding: bool = False  # holding output back until the raw banner, to drop the friendly one
    held: bytearray = field(default_factory=bytearray)  # output held while hiding the banner
    tail: bytes = b""  # last output bytes, to recognise a raw-REPL Ctrl-D at exit
    reset_requested: bool = False
    ctl_open: bool = True  # the launcher's end may be closed (GC) long before the process ends

    def __post_init__(self) -> None:
        self.hiding = self.raw

    @property
    def hiding_banner(self) -> bool:
        return self.hiding and time.monotonic() - self.started < BANNER_HOLD_S

    def close(self) -> None:
        for fd in (self.pidfd, self.ctl):
            os.close(fd)


# --------------------------------------------------------------------------- the supervisor


class VirtualBoard:
    """The supervisor: owns both ptys, the interpreter process and the registry entry."""

    def __init__(self, root: str | os.PathLike, link: str | None = None, heap: str = DEFAULT_HEAP):
        self.heap_bytes = parse_heap(heap)
        self.root = Path(root).expanduser().resolve()
        self.link = Path(link).expanduser().absolute() if link else None
        self.heap = heap
        self.device = ""
        self._host_m = self._upy_m = self._upy_s = -1
        self._host_present = False
        self._host_progress = 0.0
        self._wake_r, self._wake_w = -1, -1
        self._to_host = bytearray()
        self._to_board = bytearray()
        self._boot: _Boot | None = None
        self._stopping = False
        self._failed_starts = 0
        self._last_boot = 0.0
        self._registry_entry: Path | None = None

    # -- lifecycle

    def start(self) -> str:
        """Create the ptys, the link and the registry entry, boot the interpreter; return the
        device path."""
        self.root.mkdir(parents=True, exist_ok=True)
        # Host side: the slave is configured, then closed, so the master reports a hang-up
        # exactly while no host has the port open.
        self._host_m, host_s = _open_pty(isig=False)
        self.device = os.ttyname(host_s)
        os.close(host_s)
        self._upy_m, self._upy_s = _open_pty(isig=True)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        if self.link:
            make_link(self.link, self.device)
        self._registry_entry = register(self)
        self._spawn(raw=False)
        return self.device

    def request_stop(self, *_args) -> None:
        """Safe from a signal handler: wakes the loop, which then stops."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def serve(self) -> None:
        """Relay bytes and reboot the interpreter until ``request_stop``."""
        try:
            while not self._stopping:
                self._step()
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopping = True
        if self._boot:
            _terminate(self._boot.proc)
            self._boot.close()
            self._boot = None
        if self.link:
            remove_link(self.link, self.device)
        if self._registry_entry:
            unregister(self._registry_entry)
            self._registry_entry = None
        for name in ("_host_m", "_upy_m", "_upy_s", "_wake_r", "_wake_w"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    # -- booting

    def _spawn(self, raw: bool) -> None:
        ctl_r, ctl_w = os.pipe()
        self._watchdog_path().unlink(missing_ok=True)  # armed again by the new boot, or never
        _set_raw(self._upy_s, isig=True)  # a killed interpreter may have left it in raw mode
        argv = self.interpreter_argv(ctl_w, not raw)
        proc = subprocess.Popen(
            argv,
            stdin=self._upy_s,
            stdout=self._upy_s,
            stderr=self._upy_s,
            cwd=self.root,
            env=self.child_env(),
            pass_fds=(ctl_w,),
            start_new_session=True,  # its own session, so pty B can become its ctty
        )
        os.close(ctl_w)
        os.set_blocking(ctl_r, False)
        self._last_boot = time.monotonic()
        self._boot = _Boot(proc, os.pidfd_open(proc.pid), ctl_r, raw, self._last_boot)
        log.info("interpreter %d started (%s)", proc.pid, "raw REPL" if raw else "main.py")

    # Overridden by the serial runner (sipfw.serialrunner), which runs other interpreters.
    def interpreter_argv(self, ctl_fd: int, run_main: bool) -> list[str]:
        return interpreter_argv(self.heap_bytes, launcher_source(str(self.root), ctl_fd,
                                                                 run_main))

    def child_env(self) -> dict:
        return dict(os.environ, SIPFW_WATCHDOG="/" + WATCHDOG_FILE)

    def _on_exit(self, boot: _Boot) -> None:
        """The interpreter ended: flush its last words, print the soft-reboot line, restart."""
        self._pump_board_output(boot, drain=True)  # nothing it wrote may be lost or reordered
        code = boot.proc.wait()
        boot.close()
        self._boot = None
        if not boot.up:
            self._failed_starts += 1
            if self._failed_starts >= MAX_FAILED_STARTS:
                raise VboardError(f"the interpreter keeps dying at start (exit {code})")
        raw = is_raw_reset(boot.tail) and not boot.reset_requested
        self._release_held(boot)
        log.info("interpreter exited %d; soft reboot%s", code, " (raw REPL)" if raw else "")
        self._to_host += SOFT_REBOOT_BANNER
        self._send_to_host()  # before any pause below
        if boot.reset_requested or not boot.up:
            # A main.py that exits at once, or a port that cannot start, must not spin the
            # CPU; a reset the host asked for (Ctrl-D) is never delayed.
            time.sleep(max(0.0, self._last_boot + MIN_BOOT_INTERVAL_S - time.monotonic()))
        self._spawn(raw)

    def _watchdog_path(self) -> Path:
        return self.root / WATCHDOG_FILE

    def _check_watchdog(self, boot: _Boot) -> None:
        """A heartbeat older than its period: reset the board (kill, then boot main.py)."""
        if boot.reset_requested:
            return
        path = self._watchdog_path()
        try:
            age = time.time() - path.stat().st_mtime
            period_ms = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return  # not armed (or being rewritten this very moment)
        if age * 1000 <= period_ms:
            return
        log.info("watchdog: no heartbeat for %.1f s (period %d ms): reset", age, period_ms)
        path.unlink(missing_ok=True)
        self._to_host += WATCHDOG_RESET_LINE
        boot.reset_requested = True  # boots main.py, not the raw REPL
        _signal_group(boot.proc, signal.SIGKILL)

    def _on_control(self, boot: _Boot) -> None:
        try:
            data = os.read(boot.ctl, 256)
        except BlockingIOError:
            return
        if not data:
            boot.ctl_open = False  # end of file: stop polling it, or poll() would spin
        if b"up" in data and not boot.up:
            boot.up = True
            self._failed_starts = 0
            if boot.raw:
                # The port starts at the friendly REPL; Ctrl-A puts it where a board is after
                # a raw-REPL reset.  It goes ahead of anything the host sent meanwhile.
                self._to_board[:0] = CTRL_A
        if b"reset" in data:
            # boot.py/main.py raised SystemExit: a board soft-reboots, so end this process.
            boot.reset_requested = True
            _signal_group(boot.proc, signal.SIGKILL)

    # -- relaying

    def _step(self) -> None:
        boot = self._boot
        self._host_present = not _hung_up(self._host_m)
        if not self._host_present:
            self._to_host.clear()  # a UART with nobody listening: the bytes are gone
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if self._host_present:
            poller.register(self._host_m, self._host_events())
        poller.register(self._upy_m, self._board_events(boot))
        if boot:
            if boot.ctl_open:
                poller.register(boot.ctl, select.POLLIN)
            poller.register(boot.pidfd, select.POLLIN)
        ready = dict(poller.poll(self._poll_timeout_ms()))
        self._dispatch(ready, boot)

    def _host_events(self) -> int:
        events = select.POLLOUT if self._to_host else 0
        if len(self._to_board) < INPUT_CAP:  # else the host waits, like hardware flow control
            events |= select.POLLIN
        return events

    def _board_events(self, boot: _Boot | None) -> int:
        events = select.POLLOUT if boot and boot.up and self._to_board else 0
        if len(self._to_host) < OUTPUT_CAP:  # else the interpreter waits for the host
            events |= select.POLLIN
        return events

    def _poll_timeout_ms(self) -> int:
        boot = self._boot
        if not self._host_present:
            return 20  # a hung-up master cannot wake us when a host opens the port: look again
        if boot and boot.hiding:
            return 50  # come back to release held output when BANNER_HOLD_S runs out
        if self._to_host:
            return 100  # come back to drop output the host stopped reading (TX_TIMEOUT_S)
        return 1000

    def _dispatch(self, ready: dict[int, int], boot: _Boot | None) -> None:
        if self._wake_r in ready:
            _read_some(self._wake_r)
        if ready.get(self._host_m, 0) & select.POLLIN:
            self._to_board += _read_some(self._host_m)
        if boot:
            if boot.ctl in ready:
                self._on_control(boot)
            if self._upy_m in ready:
                self._pump_board_output(boot)
            if boot.hiding and not boot.hiding_banner:
                self._release_held(boot)
            if boot.up and self._to_board:
                _write_some(self._upy_m, self._to_board)
            if boot.up and boot.pidfd not in ready:
                self._check_watchdog(boot)
            if boot.pidfd in ready:
                self._on_exit(boot)
        self._send_to_host()

    def _pump_board_output(self, boot: _Boot, drain: bool = False) -> None:
        # One read per loop turn keeps the host side served while the board chatters; at
        # exit, ``drain`` empties pty B so nothing lands after the soft-reboot line.
        while data := _read_some(self._upy_m):
            boot.tail = (boot.tail + data)[-len(RAW_RESET_TAIL) :]
            if boot.hiding and not boot.hiding_banner:
                self._release_held(boot)  # gave up waiting for the raw banner
            if boot.hiding:
                boot.held += data
                if RAW_REPL_BANNER in boot.held:
                    self._release_held(boot)
            else:
                self._to_host += data
            if not drain:
                break

    def _release_held(self, boot: _Boot) -> None:
        self._to_host += strip_friendly_banner(bytes(boot.held))
        boot.held.clear()
        boot.hiding = False  # banner handled (or given up on): relay straight from now on

    def _send_to_host(self) -> None:
        # While a host reads, nothing is lost (the interpreter waits when OUTPUT_CAP is
        # reached, as on USB-CDC); a host that holds the port without reading for
        # TX_TIMEOUT_S loses the backlog instead of freezing the board, as rp2's USB-CDC does.
        now = time.monotonic()
        before = len(self._to_host)
        if self._host_present and before:
            _write_some(self._host_m, self._to_host)
        if not self._to_host or len(self._to_host) < before:
            self._host_progress = now
        elif now - self._host_progress > TX_TIMEOUT_S:
            log.info("host not reading: dropped %d bytes of output", len(self._to_host))
            self._to_host.clear()


def _hung_up(fd: int) -> bool:
    """True while no one has the slave of master ``fd`` open: the host is not connected."""
    poller = select.poll()
    poller.register(fd, 0)
    return any(ev & select.POLLHUP for _, ev in poller.poll(0))


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # its own session: the port and anything it os.system()s


def _terminate(proc: subprocess.Popen) -> None:
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


# --------------------------------------------------------------------------- --link


def make_link(link: Path, target: str) -> None:
    """Point ``link`` at the device; replace a stale symlink, never a real file nor the link
    of a running vboard."""
    if link.exists() and not link.is_symlink():
        raise VboardError(f"{link} exists and is not a symlink; not replacing it")
    for entry in list_vboards():
        if entry.get("link") == str(link):
            raise VboardError(f"{link} belongs to the running vboard pid {entry['pid']}")
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    os.symlink(target, tmp)
    os.replace(tmp, link)  # atomic: a reader never sees the link missing


def remove_link(link: Path, target: str) -> None:
    """Remove ``link`` only while it still points at our device (another vboard may have
    taken the name over since)."""
    try:
        if os.readlink(link) == target:
            link.unlink()
    except OSError:
        pass


# --------------------------------------------------------------------------- registry


def registry_dir() -> Path:
    override = os.environ.get("SIPFW_VBOARD_DIR")
    if override:
        return Path(override)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "sipfw" / "vboards"
    return Path(tempfile.gettempdir()) / f"sipfw-vboards-{os.getuid()}"


def _proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) from /proc/PID/stat, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], int(fields[19])


def pid_alive(pid: int, starttime: int | None = None) -> bool:
    """True if ``pid`` runs and is not a zombie (exited processes can linger as zombies for
    seconds); with ``starttime``, also that the pid was not reused by another process."""
    state = _proc_state(pid)
    if state is None or state[0] in ("Z", "X"):
        return False
    return starttime is None or state[1] == starttime


def register(board: VirtualBoard) -> Path:
    folder = registry_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    pid = os.getpid()
    proc = _proc_state(pid)
    entry = {
        "id": device_id(board.root),
        "pid": pid,
        "starttime": proc[1] if proc else None,
        "device": board.device,
        "link": str(board.link) if board.link else None,
        "root": str(board.root),
        "heap": board.heap,
        "started": time.time(),
    }
    path = folder / f"{pid}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def unregister(path: Path) -> None:
    path.unlink(missing_ok=True)


def list_vboards(folder: Path | None = None) -> list[dict]:
    """The running virtual boards, sorted by device; stale entries are removed."""
    folder = folder or registry_dir()
    boards = []
    for path in sorted(folder.glob("*.json")):
        try:
            entry = json.loads(path.read_text())
            alive = pid_alive(int(entry["pid"]), entry.get("starttime"))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours: leave it alone
        if alive:
            boards.append(entry)
        else:
            unregister(path)
    return sorted(boards, key=lambda e: e["device"])


# --------------------------------------------------------------------------- entry point


def run_vboard(root: str, link: str | None, heap: str, out=sys.stdout) -> int:
    """Start a vboard, print its device path as the first stdout line (then the heap in use
    and its folder), serve until SIGTERM/SIGINT (or SIGHUP: its terminal went away), then stop
    the interpreter and remove the link."""
    board = VirtualBoard(root, link, heap)
    return serve_until_stopped(board, out, lambda device: (
        device, heap_line(board.heap_bytes, board.root)))


def serve_until_stopped(board: VirtualBoard, out, banner) -> int:
    """Start ``board``, print the lines ``banner(device)`` gives, serve until SIGTERM, SIGINT
    or SIGHUP, then stop it (the previous signal handlers put back)."""
    stop_signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {sig: signal.signal(sig, board.request_stop) for sig in stop_signals}
    try:
        for line in banner(board.start()):
            print(line, file=out, flush=True)
        board.serve()
    finally:
        board.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
