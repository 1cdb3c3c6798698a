"""A board on CPython: the firmware run by the Pi's own ``python3``, speaking MicroPython's REPL.

Run by the serial runner (``sipfw.serialrunner``) in place of the MicroPython unix port, one
process per boot, on the runner's pty. Standard library only (a Pi's python3 has no venv).
What the host tools need of a board, and nothing more:

* **A filesystem rooted at DIR.** A board's paths (``/config.json``, ``/sipua/log.py``) name
  files in DIR: ``open`` and the ``os`` functions the tools and the firmware use map an
  absolute path into DIR (the system's own trees -- /usr, /etc, /dev, /proc, /tmp ... -- pass
  through), and ``os.ilistdir`` exists. ``import`` finds the firmware in DIR (``sys.path``
  starts with DIR and DIR/lib, as a board's ``['', '/lib']``).
* **MicroPython's REPL protocol** on stdin/stdout: the friendly REPL (``>>>``, Ctrl-D soft
  reboot, Ctrl-C), the raw REPL (Ctrl-A, ``OK``, output, ``\\x04``, error, ``\\x04``, ``>``;
  Ctrl-D on an empty line is a soft reset: ``OK`` and exit, the runner boots again) and raw
  paste (``\\x05A\\x01``), so mpremote and ``sipfw flash``/``config``/``logs``/``console`` work
  as with any board.
* **The launcher's contract** with the runner (as ``vboard._LAUNCHER``): ``up`` on the control
  pipe once running, boot.py then main.py, ``reset`` when they raise SystemExit.

Firmware for this board is source, not ``.mpy`` (board config ``rpi_cpython``: mpy_arch
``cpython``, which also ships ``sipua/_cpython.py``, the stand-ins for MicroPython built-ins).
"""

from __future__ import annotations

import argparse
import builtins
import codeop
import contextlib
import errno
import os
import struct
import sys
import termios
import time
import traceback

BANNER = ("MicroPython-compatible REPL on CPython %s (sipfw board runner)\r\n"
          'Type "help()" for more information.\r\n' % sys.version.split()[0])
RAW_BANNER = "raw REPL; CTRL-B to exit\r\n"
PASS_THROUGH = ("/dev/", "/proc/", "/sys/", "/usr/", "/etc/", "/tmp/", "/run/", "/var/",
                "/opt/", "/home/", "/root/", "/bin/", "/sbin/", "/lib64/", "/srv/", "/mnt/")
PASTE_WINDOW = 256


# --------------------------------------------------------------------------- the filesystem


class BoardFs:
    """Absolute board paths -> DIR; installed over builtins.open and the os module."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)

    def map(self, path):
        if isinstance(path, bytes):
            return os.fsencode(self.map(os.fsdecode(path)))
        if not isinstance(path, str) or not path.startswith("/"):
            return path
        if path == self.root or path.startswith(self.root + "/") or path.startswith(PASS_THROUGH):
            return path
        return self.root + path.rstrip("/") if path != "/" else self.root

    def unmap(self, path: str) -> str:
        if path == self.root:
            return "/"
        if path.startswith(self.root + "/"):
            return path[len(self.root):]
        return path

    def install(self) -> None:
        one = ("stat", "lstat", "listdir", "remove", "unlink", "mkdir", "rmdir", "chdir",
               "statvfs", "scandir")
        for name in one:
            real = getattr(os, name)
            setattr(os, name, self._wrap1(real))
        for name in ("rename", "replace"):
            setattr(os, name, self._wrap2(getattr(os, name)))
        real_open, real_getcwd = builtins.open, os.getcwd

        def board_open(file, *args, **kw):
            return real_open(self.map(file), *args, **kw)

        def getcwd():
            return self.unmap(real_getcwd())

        def ilistdir(path="."):
            for e in os.scandir(path):
                kind = 0x4000 if e.is_dir() else 0x8000
                yield (e.name, kind, 0, 0 if kind == 0x4000 else e.stat().st_size)

        builtins.open = board_open
        os.getcwd = getcwd
        os.ilistdir = ilistdir

    def _wrap1(self, real):
        def f(path=".", *args, **kw):
            return real(self.map(path), *args, **kw)

        return f

    def _wrap2(self, real):
        def f(a, b, *args, **kw):
            return real(self.map(a), self.map(b), *args, **kw)

        return f


class Stdin:
    """sys.stdin as on a board: ``read(n)`` returns what the fd has, nothing buffered in
    Python (a buffered reader would keep bytes that ``select.poll`` then cannot see)."""

    def fileno(self) -> int:
        return 0

    def read(self, n: int = 1) -> str:
        return os.read(0, n).decode("utf-8", "replace")

    def readline(self) -> str:
        out = ""
        while not out.endswith("\n"):
            ch = self.read(1)
            if not ch:
                break
            out += ch
        return out


# --------------------------------------------------------------------------- the REPL


def board_traceback(e: BaseException) -> str:
    """The traceback of the code that ran (the REPL's own frame left out), its last line as
    MicroPython words an OSError (``OSError: [Errno 2] ENOENT``): mpremote maps file errors
    back to errno from that line."""
    tb = e.__traceback__
    text = "".join(traceback.format_exception(type(e), e, tb.tb_next if tb else None))
    if isinstance(e, OSError) and e.errno in errno.errorcode:
        lines = text.rstrip("\n").split("\n")
        lines[-1] = "OSError: [Errno %d] %s" % (e.errno, errno.errorcode[e.errno])
        text = "\n".join(lines) + "\n"
    return text


class Repl:
    def __init__(self, ns: dict):
        self.ns = ns
        self.pending = b""

    # -- bytes in and out

    def out(self, text) -> None:
        data = text.encode() if isinstance(text, str) else text
        sys.stdout.flush()
        os.write(1, data)

    def getc(self) -> bytes:
        """One byte from the host; Ctrl-C is a byte here (ISIG is off while reading)."""
        while not self.pending:
            try:
                self.pending = os.read(0, 4096)
            except KeyboardInterrupt:
                self.pending = b"\x03"
            if not self.pending:
                raise EOFError
        ch, self.pending = self.pending[:1], self.pending[1:]
        return ch

    @staticmethod
    def isig(on: bool) -> None:
        """Ctrl-C -> SIGINT only while code runs, as MicroPython's REPL does."""
        try:
            attrs = termios.tcgetattr(0)
        except termios.error:
            return
        attrs[3] = attrs[3] | termios.ISIG if on else attrs[3] & ~termios.ISIG
        termios.tcsetattr(0, termios.TCSANOW, attrs)

    # -- running code

    def run(self, code, source: str, mode: str = "exec") -> str:
        """Compile and run; the traceback text, or "" when it ran through."""
        self.isig(True)
        try:
            if isinstance(code, (str, bytes)):
                code = compile(code, source, mode)
            exec(code, self.ns)
            return ""
        except SystemExit:
            raise
        except BaseException as e:  # noqa: BLE001 - a board reports every error it meets
            return board_traceback(e)
        finally:
            sys.stdout.flush()
            self.isig(False)

    # -- the two REPLs

    def friendly(self) -> None:
        self.out(BANNER + ">>> ")
        line, lines = b"", []
        while True:
            ch = self.getc()
            if ch == b"\x01":
                self.out("\r\n")
                self.raw()
                line, lines = b"", []
                continue
            if ch == b"\x02":
                self.out("\r\n" + BANNER + ">>> ")
                line, lines = b"", []
            elif ch == b"\x03":
                self.out("\r\nKeyboardInterrupt\r\n>>> ")
                line, lines = b"", []
            elif ch == b"\x04":
                if not line and not lines:
                    self.out("\r\n")
                    raise SystemExit(0)  # soft reboot: the runner starts a new boot
            elif ch in (b"\r", b"\n"):
                self.out("\r\n")
                lines.append(line.decode("utf-8", "replace"))
                line = b""
                text = "\n".join(lines)
                try:
                    code = codeop.compile_command(text, "<stdin>", "single")
                except (SyntaxError, ValueError, OverflowError):
                    code, lines = compile, []
                    self.out(traceback.format_exc().replace("\n", "\r\n"))
                if code is None:
                    self.out("... ")
                    continue
                if code is not compile:
                    err = self.run(code, "<stdin>")
                    if err:
                        self.out(err.replace("\n", "\r\n"))
                lines = []
                self.out(">>> ")
            elif ch in (b"\x7f", b"\x08"):
                if line:
                    line = line[:-1]
                    self.out("\x08 \x08")
            elif ch >= b" ":
                line += ch
                self.out(ch)

    def raw(self) -> None:
        self.out(RAW_BANNER + ">")
        buf = b""
        while True:
            ch = self.getc()
            if ch == b"\x01":
                self.out(RAW_BANNER + ">")
                buf = b""
            elif ch == b"\x02":
                self.out("\r\n" + BANNER + ">>> ")
                return
            elif ch == b"\x03":
                buf = b""
            elif ch == b"\x04":
                if not buf:
                    self.out("OK\r\n")
                    raise SystemExit(0)  # raw-REPL soft reset: the runner boots boot.py only
                self.out("OK")
                self.exec_raw(buf)
                buf = b""
            elif ch == b"\x05" and not buf:
                self.getc(), self.getc()  # "A\x01"
                self.exec_raw(self.paste())
            else:
                buf += ch

    def paste(self) -> bytes:
        """Raw-paste mode: a window of bytes, then one \\x01 per window consumed."""
        self.out(b"R\x01" + struct.pack("<H", PASTE_WINDOW))
        data, got = b"", 0
        while True:
            ch = self.getc()
            if ch == b"\x04":
                self.out(b"\x04")
                return data
            data += ch
            got += 1
            if got == PASTE_WINDOW:
                got = 0
                self.out(b"\x01")

    def exec_raw(self, source: bytes) -> None:
        err = self.run(source.decode("utf-8", "replace"), "<stdin>")
        self.out(b"\x04" + err.encode() + b"\x04>")


# --------------------------------------------------------------------------- boot


def boot(root: str, ctl_fd: int, names: list[str]) -> None:
    fs = BoardFs(root)
    os.chdir(fs.root)
    fs.install()
    os.close(os.open(os.ttyname(0), os.O_RDWR))  # the pty becomes the controlling tty
    sys.path[:] = [fs.root, fs.root + "/lib"] + [p for p in sys.path[1:] if p]
    sys.stdin = Stdin()  # type: ignore[assignment]
    ns = {"__name__": "__main__", "__builtins__": builtins}
    repl = Repl(ns)
    Repl.isig(False)
    with os.fdopen(ctl_fd, "wb", buffering=0) as ctl:
        ctl.write(b"up\n")
        for name in names:
            if not os.path.exists(name):
                continue
            try:
                with open(name) as f:
                    code = compile(f.read(), name, "exec")
                Repl.isig(True)
                exec(code, ns)
            except SystemExit:
                ctl.write(b"reset\n")
                time.sleep(10)
            except BaseException:  # noqa: BLE001 - printed, as a board prints it
                sys.stdout.write(traceback.format_exc())
            finally:
                sys.stdout.flush()
                Repl.isig(False)
    with contextlib.suppress(EOFError):  # the runner closed the pty
        repl.friendly()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--ctl", type=int, required=True, help="the runner's control pipe fd")
    p.add_argument("--names", default="boot.py,main.py", help="files to run at boot")
    args = p.parse_args(argv)
    boot(args.root, args.ctl, [n for n in args.names.split(",") if n])
    return 0


if __name__ == "__main__":
    sys.exit(main())
