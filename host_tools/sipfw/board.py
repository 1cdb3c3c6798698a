"""A connection to a board's MicroPython, on mpremote's serial transport.

mpremote's ``SerialTransport`` does the raw-REPL protocol (``enter_raw_repl``, ``exec``,
``fs_writefile``); this module adds what a tool needs around it and that mpremote leaves to
its user:

* an exclusive open with a read timeout (mpremote's default ``timeout=None`` blocks for ever
  on a port that answers nothing), and errors mapped to one line each: no such port, port
  busy (another program holds it), permission denied;
* getting into the raw REPL whatever the board is doing, as esptool does its resets: small
  strategy classes tried in order (one Ctrl-C; then a burst of Ctrl-C for a main.py that
  loops or restarts itself; then a DTR/RTS reset on USB boards that wire it);
* telling "no MicroPython here" (silence, or garbage such as a bootloader's output) apart
  from a slow board, and saying how to install MicroPython, from the board config;
* the soft reboot that runs ``main.py`` (friendly-REPL Ctrl-D; the raw-REPL one skips it)
  and reading the boot that follows (``watch_boot``, classified by ``sipfw.bootwatch``).
"""

from __future__ import annotations

import ast
import contextlib
import errno
import io
import time

import serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from .boards import Port
from .errors import BoardError, PortError

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
SOFT_REBOOT = b"soft reboot"
READ_TIMEOUT_S = 0.5  # one serial read; mpremote's own loops add their timeouts on top
SOFT_RESET_TIMEOUT_S = 15.0  # boot.py runs during a raw-REPL soft reset
QUIET_S = 4.0  # longest silence accepted in the middle of a raw-REPL exchange


class BoardTransport(SerialTransport):
    """``SerialTransport`` opened our way: exclusive, with a read timeout, clear errors.

    mpremote's constructor retries any OSError and ends in "failed to access", losing the
    reason (busy? missing? permissions?), so the port is opened here and the transport's
    state set as its constructor would.
    """

    def __init__(self, device: str, baudrate: int = 115200):
        self.in_raw_repl = False
        self.use_raw_paste = True
        self.device_name = device
        self.mounted = False
        try:
            self.serial = serial.Serial(device, baudrate=baudrate, timeout=READ_TIMEOUT_S,
                                        write_timeout=5, inter_byte_timeout=None,
                                        exclusive=True)
        except (serial.SerialException, OSError) as e:
            raise port_error(device, e) from None
        self.is_pty = self._is_pty_device(device)

    def read_until(self, min_num_bytes, ending, timeout=10, data_consumer=None,
                   timeout_overall=None):
        # mpremote waits up to 10 s of silence at each step; a board that reset under us
        # (or never was MicroPython) would make every step cost that. Cap the silence.
        if timeout is not None:
            timeout = min(timeout, QUIET_S)
        return super().read_until(min_num_bytes, ending, timeout, data_consumer,
                                  timeout_overall)


def port_error(device: str, err: Exception) -> PortError:
    text = str(err)
    code = getattr(err, "errno", None)
    if code == errno.ENOENT or "No such file" in text:
        return PortError("%s: no such port (is the board plugged in?)" % device)
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return PortError("%s: permission denied (add yourself to the dialout group)" % device)
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text or "busy" in text:
        return PortError("%s: port is busy: another program has it open (a monitor, "
                         "mpremote, another sipfw?)" % device)
    return PortError("%s: cannot open: %s" % (device, text))


# -- ways into the raw REPL (tried in order, like esptool's reset strategies) --------------


class Strategy:
    name = "strategy"

    def prepare(self, t: BoardTransport) -> None:
        """Bytes/signals that should leave the board at a REPL prompt."""


class Interrupt(Strategy):
    """One Ctrl-C: stops a running main.py (KeyboardInterrupt) or clears a half line."""

    name = "ctrl-c"


class InterruptBurst(Strategy):
    """Ctrl-C every 50 ms for a while: a main.py that loops, restarts itself after an
    exception, or was just starting (a Ctrl-C during boot.py is lost)."""

    name = "ctrl-c burst"
    duration_s = 1.5

    def prepare(self, t):
        end = time.monotonic() + self.duration_s
        while time.monotonic() < end:
            t.serial.write(b"\x03")
            time.sleep(0.05)
            t.serial.reset_input_buffer()
        t.serial.write(b"\r\x02")  # friendly REPL, in case the board sat in raw mode


class LineReset(Strategy):
    """Pulse EN through RTS with DTR released (ESP32 dev boards' auto-reset circuit), then
    interrupt main.py as soon as it starts. A pty or a board without the circuit ignores it."""

    name = "dtr/rts reset"

    def prepare(self, t):
        try:
            t.serial.dtr = False
            t.serial.rts = True
            time.sleep(0.1)
            t.serial.rts = False
        except OSError:
            return
        time.sleep(0.5)
        InterruptBurst().prepare(t)


def default_strategies(port: Port) -> list[Strategy]:
    out: list[Strategy] = [Interrupt(), InterruptBurst()]
    if port.kind == "usb" and port.board == "esp32":
        out.append(LineReset())
    return out


class Board:
    """One open board. Use as a context manager; every wait is bounded."""

    def __init__(self, port: Port, board_cfg: dict | None = None, raw_timeout: float = 2.0,
                 strategies: list[Strategy] | None = None):
        self.port = port
        self.cfg = board_cfg or {}
        self.raw_timeout = raw_timeout
        self.strategies = strategies if strategies is not None else default_strategies(port)
        self.t = BoardTransport(port.device)
        self.seen = b""  # what the board said while we tried to reach its REPL
        self.boot_output = ""  # what the board printed after the last reboot (watch_boot)
        self._lines = None  # the LineReader over self.t.serial while reading a boot

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            if self.t.in_raw_repl:
                self.t.exit_raw_repl()
            self.t.serial.close()
        except (OSError, serial.SerialException):
            pass

    # -- REPL ------------------------------------------------------------------------------
    def _enter(self, soft_reset: bool) -> bool:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):  # mpremote prints what it got on failure
                self.t.enter_raw_repl(soft_reset=soft_reset, timeout_overall=self.raw_timeout)
            return True
        except (TransportError, serial.SerialException, OSError):
            for line in out.getvalue().splitlines():  # mpremote printed repr(bytes) lines
                try:
                    got = ast.literal_eval(line)
                except (ValueError, SyntaxError):
                    got = line.encode("utf-8", "replace")
                if isinstance(got, bytes):
                    self.seen = (self.seen + got)[-400:]
            return False

    def enter_raw(self, soft_reset: bool = True) -> None:
        """Get to the raw REPL. With ``soft_reset`` the board then soft-reboots in the raw
        REPL (boot.py runs, main.py does not): a clean heap, no agent sockets open.

        Two phases: reaching a REPL at all uses short timeouts per strategy; the soft reset
        gets a generous one, because boot.py may take seconds (Wi-Fi) on a real board.
        """
        for strat in self.strategies:
            try:
                strat.prepare(self.t)
            except (OSError, serial.SerialException) as e:
                raise port_error(self.port.device, e) from None
            if self._enter(False):
                break
        else:
            raise self.no_micropython()
        if soft_reset:
            saved, self.raw_timeout = self.raw_timeout, SOFT_RESET_TIMEOUT_S
            try:
                if not self._enter(True):
                    raise BoardError("%s: the board did not come back from a soft reset "
                                     "within %.0f s (boot.py stuck?)"
                                     % (self.port.device, SOFT_RESET_TIMEOUT_S))
            finally:
                self.raw_timeout = saved

    def no_micropython(self) -> BoardError:
        how = self.cfg.get("install_micropython")
        hint = (" To install it: %s" % how) if how else ""
        seen = self.seen.strip()
        if not seen:
            what = "no answer from the board"
        else:
            what = "it answers, but not as MicroPython: %r" % seen[-40:]
        return BoardError("%s: no MicroPython REPL (%s).%s" % (self.port.device, what, hint))

    def exec(self, code: str, timeout: float = 10.0) -> bytes:
        """Run code in the raw REPL; its stdout. A board-side exception -> BoardError."""
        try:
            out, err = self.t.exec_raw(code, timeout=timeout)
        except (TransportError, serial.SerialException, OSError) as e:
            raise BoardError("%s: lost the board during exec: %s" % (self.port.device, e)) from e
        if err:
            last = err.decode("utf-8", "replace").strip().splitlines()[-1:]
            raise BoardError("%s: board raised %s" % (self.port.device,
                                                       last[0] if last else "an error"))
        return out

    def write_file(self, path: str, data: bytes, progress=None, chunk_size: int = 1024):
        try:
            self.t.fs_writefile(path, data, chunk_size=chunk_size, progress_callback=progress)
        except TransportExecError as e:
            raise BoardError("%s: writing %s failed: %s" % (self.port.device, path,
                                                             e.error_output.strip())) from e
        except (TransportError, serial.SerialException, OSError) as e:
            raise BoardError("%s: lost the board while writing %s: %s"
                             % (self.port.device, path, e)) from e

    def read_file(self, path: str) -> bytes | None:
        try:
            return bytes(self.t.fs_readfile(path, chunk_size=1024))
        except OSError as e:
            if getattr(e, "errno", None) == errno.ENOENT:
                return None
            raise BoardError("%s: reading %s failed: %s" % (self.port.device, path, e)) from e
        except (TransportError, serial.SerialException) as e:
            raise BoardError("%s: lost the board while reading %s: %s"
                             % (self.port.device, path, e)) from e

    # -- reboot ----------------------------------------------------------------------------
    def reboot(self) -> None:
        """Soft-reboot so boot.py and main.py run (Ctrl-D at the friendly REPL; the raw-REPL
        one skips main.py). ``watch_boot`` then reads what the board made of it."""
        s = self.t.serial
        if self.t.in_raw_repl:
            self.t.exit_raw_repl()
        time.sleep(0.05)
        s.reset_input_buffer()
        s.write(b"\x04")
        self._lines = None

    def watch_boot(self, timeout: float, ready: str | None = None, echo=None):
        """Read the boot that follows ``reboot`` and classify it (``bootwatch``): an Outcome
        (ready with the ready line's figures, agent_failed, traceback, crash_loop, stopped,
        timeout). The raw boot output is in ``self.boot_output``."""
        from . import bootwatch

        out = bootwatch.watch(self._next_line, timeout, ready or bootwatch.READY_RE,
                              echo=echo)
        self.boot_output = "\n".join(out.lines) + "\n"
        return out

    def _next_line(self, until: float) -> str | None:
        """The board's next line, or None once ``until`` (time.monotonic) has passed; read
        by the host tools' one line reader (``monitor.LineReader``) over this serial."""
        from .monitor import LineReader

        if self._lines is None:
            self._lines = LineReader(None, self.port, reconnect=False)
            self._lines.attach(self.t.serial)
        for ev in self._lines.events(until):
            if ev.kind == "gap":
                self._lines = None
                self._reattach(until)  # the reset re-enumerated the USB device
                return None
            return ev.text
        return None

    def _reattach(self, deadline: float) -> serial.Serial:
        """The same board again after it vanished, found by serial number (boards.refind);
        PortError if it does not come back before ``deadline``."""
        from . import boards

        with contextlib.suppress(OSError, serial.SerialException):
            self.t.serial.close()
        self.port = boards.refind(self.port, timeout=max(deadline - time.monotonic(), 0.1))
        self.t = BoardTransport(self.port.device)
        return self.t.serial


def open_board(port: Port, board_cfg: dict | None = None, **kw) -> Board:
    try:
        return Board(port, board_cfg, **kw)
    except PortError:
        raise
    except (serial.SerialException, OSError) as e:
        raise port_error(port.device, e) from None
