"""Commands read from the serial console while the agent runs; one JSON answer line each.

The console shares the serial line with the log, so answers are framed to be told apart:
an answer is ONE line starting with ``@`` followed by a JSON object::

    status                 ->  @{"cmd": "status", "ok": true, ...}
    #7 log debug sip       ->  @{"cmd": "log", "id": "7", "ok": true, ...}
    frobnicate             ->  @{"cmd": "frobnicate", "ok": false, "error": "unknown command ..."}

A request may start with ``#<id>``; the answer carries the same ``id`` so the host can match
answers to requests even when an old answer is still in flight. Log lines start with a digit
(the uptime) and tracebacks with ``Traceback``, never with ``@``.

The app registers its own commands (``status``, ``call``, ``reg`` ...) with ``register``; a
handler takes the list of argument words and returns a dict merged into the answer, or
raises ``ConsoleError`` for an error answer. Built-in: ``help``, ``log``, ``config reload``
(calls ``reload_hook``), ``config begin SIZE SHA256`` / ``data BASE64`` / ``commit`` (a new
config.json uploaded while the agent runs, checked, saved atomically, then reloaded),
``reboot`` (soft) and ``reset`` (hard) through ``reset_hook``. Their bodies, running a
line (``execute``), the answer formatting and every help text live in ``cmds.py``, loaded
while commands run (``lazy`` makes a handler that runs one of them); what this module keeps
reads the bytes of a line.

Input is read without blocking: stdin is watched by the scheduler's poller (``select.poll``
on ``sys.stdin`` works on the esp32, rp2 and unix ports); where the main poller cannot take
stdin (a virtual poller in tests, a port without a pollable stdin) a private poller is
checked from a timer instead.
"""

from .compat import const

PREFIX = "@"
MAX_LINE = 256  # longer lines are refused whole: a console command is short
_FALLBACK_MS = const(100)  # how often the private poller is checked when stdin is not watched


class ConsoleError(Exception):
    """Raised by a command handler: becomes ``{"ok": false, "error": str(e)}``."""


def _run(name, owner, args, sched):
    from . import cmds

    return cmds.run(name, owner, args, sched)


def lazy(name, owner, sched):
    """A handler ``fn(args)`` running ``cmds.<name>(owner, args)``, loading ``cmds`` for it."""
    return lambda args=None: _run(name, owner, args, sched)


class Console:
    def __init__(self, log=None, write=None, stream=None):
        self._log = log
        self._write = write  # one answer line -> the console; default print()
        self._stream = stream  # where command bytes come from; default sys.stdin
        self._buf = []
        self._len = 0
        self._overflow = False
        self._sched = None
        self._timer = None
        self._poll = None
        self._ipoll = None  # the poller's ipoll, on MicroPython: see _ready
        self._watched = False
        # name -> (handler, help text): the commands registered besides the built-ins
        # (``help``, ``log``, ``config``, ``reboot``, ``reset``) and the agent's, which
        # need no entry (their bodies are in cmds.py). Handler None: a body in cmds.py run
        # for this console; False: one run for ``agent``; a help text None is cmds.HELP's.
        self.commands = {}
        self.agent = None  # the agent whose commands the console runs (startup.serve)
        self.reload_hook = None  # () -> dict or None: re-read config.json
        # Relative on purpose: cwd is "/" on a board, and the virtual board's VfsPosix
        # cannot rename absolute paths (see atomic.py).
        self.config_path = "config.json"
        self.upload = None  # upload.Upload while `config begin/data/commit` runs
        self.reset_hook = None  # (hard: bool) -> None; default machine.reset/soft_reset

    def register(self, name, fn, help=None):
        """Add (or replace) a command: ``fn(args) -> dict or None`` (or None/False: see
        ``commands``)."""
        self.commands[name] = (fn, help)

    # -- input -----------------------------------------------------------------------------
    def start(self, sched):
        """Read commands from the console while ``sched`` runs (start-up's code:
        ``startup.console_start``)."""
        from .startup import console_start

        console_start(self, sched)

    def _ready(self):
        # Asked once per byte read: MicroPython's ipoll() allocates nothing, where poll()
        # builds a list (and a tuple) each time — ~1.3 KB of garbage per command line.
        if self._ipoll is not None:
            for _ in self._ipoll(0):
                return True
            return False
        return bool(self._poll is not None and self._poll.poll(0))  # CPython

    def _on_timer(self):
        if self._ready():
            self._on_readable(self._stream, 1)
        if self._sched is not None:
            self._timer = self._sched.call_later(_FALLBACK_MS, self._on_timer)

    def _on_readable(self, stream, events):
        # One byte per read: after poll says "readable" one byte never blocks. A command is
        # a few dozen bytes, so the per-byte cost does not matter; the loop is bounded so a
        # flood on the console cannot starve SIP.
        for i in range(MAX_LINE):
            ch = stream.read(1)
            if not ch:
                if i == 0:
                    # "Readable" yet nothing to read: end of file (stdin is /dev/null under
                    # systemd on a Pi). Poll would say so on every turn: stop listening
                    # (cmds.stop).
                    _run("stop", self, None, None)
                return
            if isinstance(ch, bytes):
                ch = ch.decode()
            self.feed(ch)
            if not self._ready():
                return

    def feed(self, text):
        """Characters from the console; each complete line is run as a command."""
        for ch in text:
            if ch == "\n" or ch == "\r":
                if self._overflow:
                    self._overflow = False
                    self._buf, self._len = [], 0
                    self.answer("", {"ok": False, "error": "line longer than %d" % MAX_LINE})
                elif self._len:
                    line = "".join(self._buf)
                    self._buf, self._len = [], 0
                    self.execute(line)
            elif self._len >= MAX_LINE:
                self._overflow = True
            else:
                self._buf.append(ch)
                self._len += 1

    # -- commands --------------------------------------------------------------------------
    def execute(self, line):
        """Run one command line and write its answer; returns the answer dict."""
        return _run("execute", self, line, self._sched)

    def answer(self, name, res):
        return _run("reply", self, (name, res), self._sched)
