"""`sipfw monitor`: one process owns the board's serial line.

It streams the log as `sipfw logs` does (same stamps, colours, filters, reconnecting across
resets); a typed line + Enter goes to the agent's console as ``#<id> <line>`` and the answer
with that id is shown inline, set apart (``  ⇒ @{...}``); Ctrl-T opens a menu of keys
(Ctrl-T h lists them); Ctrl-] quits. On a terminal the last line is a status bar refreshed
from the console's ``status``. Other sipfw commands on the same port borrow it through the
monitor's Unix socket (``sipfw.portshare``): the monitor closes the port for them and
reopens it when they are done.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections import deque

from .logs import COLORS, RESET, build_filters, render

CTRL_T, CTRL_RBRACKET = 0x14, 0x1D
STATUS_TIMEOUT_S = 5.0
MENU = [("h", "this help"), ("r", "reset the board (hard)"), ("s", "soft-reboot the board"),
        ("f", "flash what changed (then back to the log)"), ("c", "push a config file"),
        ("p", "pause / resume output"), ("l", "ladder view on / off"), ("q", "quit (also Ctrl-])")]


def add_parser(sub):
    p = sub.add_parser("monitor", help="own the serial line: log, console, flash, status bar",
                       description="Stream the board's log (as `sipfw logs`), send typed lines "
                       "as console commands with their answers inline, Ctrl-T for a menu "
                       "(Ctrl-T h lists keys), Ctrl-] to quit. Other sipfw commands on the "
                       "port go through this monitor.")
    p.add_argument("--port", help="device, serial number or vboard id")
    p.add_argument("--level", help="only log lines at this level or above")
    p.add_argument("--area", action="append", help="only log lines of this area (repeatable)")
    p.add_argument("--grep", metavar="RE", help="only lines matching RE")
    p.add_argument("--save", metavar="FILE", help="also append every line to FILE")
    p.add_argument("--ladder", action="store_true", help="start in the ladder view")
    p.add_argument("--filter", action="append", metavar="NAME",
                   help="add an output filter (as `sipfw logs --filter`)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--status-every", metavar="S", type=float, default=3.0,
                   help="status bar refresh period on a terminal (default 3; 0: no bar)")
    p.add_argument("--source", metavar="DIR",
                   help="firmware tree Ctrl-T f flashes (default: as `sipfw flash`)")
    p.add_argument("--duration", metavar="S", type=float, help="stop after S seconds")
    p.set_defaults(func=run)
    return p


def status_line(ans: dict) -> str:
    """account → state @ server, calls, heap, uptime, from a `status` answer."""
    if ans.get("agent") == "failed":
        return "agent failed: %s" % ans.get("err")
    parts = []
    for a in ans.get("accounts") or []:
        srv = a.get("server") or {}
        where = srv.get("host") or srv.get("ip")
        parts.append("%s → %s%s%s" % (a.get("label"), a.get("state"),
                                        " @ %s" % where if where else "",
                                        " (backup)" if a.get("leg") else ""))
    calls = ans.get("calls") or []
    parts.append("call " + (",".join(str(c.get("state")) for c in calls) if calls else "idle"))
    if ans.get("heap_free") is not None:
        parts.append("heap %d" % ans["heap_free"])
    if ans.get("uptime_ms") is not None:
        parts.append("up %ds" % (ans["uptime_ms"] // 1000))
    return " | ".join(parts) or "no accounts"


class Monitor:
    def __init__(self, args, port, server, out=None, inp=None):
        from ..monitor import LineReader

        self.args, self.port, self.server = args, port, server
        self.out = out or sys.stdout
        self.inp = inp or sys.stdin
        self.tty = self.out.isatty()
        self.color = args.color == "always" or (args.color == "auto" and self.tty)
        self.bar_on = self.tty and args.status_every > 0
        self.reader = LineReader(args.port, port, reconnect=True)
        self.ladder = bool(args.ladder)
        self.filters = self._filters()
        self.typed = ""
        self.menu = False
        self.prompt = None  # "config file: " while asking for a path
        self.paused = False
        self.held: deque = deque(maxlen=20000)
        self.pending: dict[str, tuple[str, float]] = {}  # id -> (purpose, sent at)
        self.seq = int(time.time() * 1000) % 100000
        self.status = "waiting for status…"
        self.next_status = 0.0
        self.quit = False
        self.save = open(args.save, "a", encoding="utf-8") if args.save else None  # noqa: SIM115

    # -- output ---------------------------------------------------------------------------
    def _filters(self):
        self.args.ladder = self.ladder
        return build_filters(self.args)

    def bar(self) -> str:
        head = "[%s]" % self.status
        if self.paused:
            head += " PAUSED"
        if self.menu:
            return head + " Ctrl-T: key? (h: help)"
        return head + " " + (self.prompt or "> ") + self.typed

    def _draw_bar(self) -> None:
        if self.bar_on:
            cols = os.get_terminal_size(self.out.fileno()).columns if self.tty else 200
            text = self.bar()[: max(cols - 1, 10)]
            self.out.write("\r\x1b[K\x1b[7m" + text + "\x1b[0m")
        self.out.flush()

    def show(self, text: str, color_key: str | None = None) -> None:
        if self.color and color_key and color_key in COLORS:
            text = COLORS[color_key] + text + RESET
        if self.bar_on:
            self.out.write("\r\x1b[K")
        self.out.write(text + "\n")
        self._draw_bar()

    def note(self, text: str) -> None:
        """The monitor's own messages (menu, lending, flash), set apart from the board's."""
        self.show("-- %s --" % text, "gap")

    def emit(self, ev) -> None:
        if self.save is not None:
            self.save.write(render(ev, False) + "\n")
            self.save.flush()
        if ev.kind == "answer" and self._answer(ev):
            return
        if self.paused:
            self.held.append(ev)
            return
        self._print(ev)

    def _print(self, ev) -> None:
        from ..filters import chain

        for shown in chain(self.filters, ev):
            self.show(render(shown, self.color))

    def _answer(self, ev) -> bool:
        from ..session import answer

        ans = answer(ev.text)
        if ans is None:
            return False
        rid = str(ans.get("id"))
        purpose = self.pending.pop(rid, (None, 0))[0]
        if purpose == "status":
            if ans.get("ok"):
                self.status = status_line(ans)
                self._draw_bar()
            return True
        if purpose == "user":
            self.show("  ⇒ " + ev.text, "answer")
            return True
        return False

    # -- the board ------------------------------------------------------------------------
    def send(self, command: str, purpose: str) -> None:
        from ..session import request

        self.seq += 1
        rid = str(self.seq)
        self.pending[rid] = (purpose, time.monotonic())
        try:
            self.reader.write(request(rid, command))
        except OSError as e:
            self.note("not sent: %s" % e)

    def _poll_status(self) -> None:
        now = time.monotonic()
        for rid, (purpose, sent) in list(self.pending.items()):
            if now - sent > STATUS_TIMEOUT_S:
                del self.pending[rid]
                if purpose == "status":
                    self.status = "no answer to status"
                    self._draw_bar()
                else:
                    self.note("no answer within %.0f s" % STATUS_TIMEOUT_S)
        if (self.bar_on and now >= self.next_status and self.reader.ser is not None
                and "status" not in (p for p, _ in self.pending.values())):
            self.next_status = now + self.args.status_every
            self.send("status", "status")

    def _read(self, seconds: float) -> None:
        from ..errors import PortError

        try:
            for ev in self.reader.events(time.monotonic() + seconds):
                self.emit(ev)
        except PortError as e:  # busy or gone for good: say so, keep the keys alive
            self.note(str(e))
            time.sleep(1.0)  # and try again

    def release(self, why: str) -> None:
        self.reader.close()
        self.pending.clear()
        self.note(why)

    def retake(self, why: str) -> None:
        from .. import portshare

        if portshare.retake(self.reader):
            self.note(why)
        else:
            self.note("%s: %s, not back yet; still trying" % (why, self.port.device))

    # -- keys -----------------------------------------------------------------------------
    def key(self, ch: str) -> None:
        c = ord(ch)
        if self.menu:
            self.menu = False
            self.action(ch.lower())
        elif c == CTRL_T:
            self.menu = True
            self._draw_bar()
        elif c == CTRL_RBRACKET:
            self.quit = True
        elif ch in "\r\n":
            line, self.typed = self.typed.strip(), ""
            if self.prompt:
                self.prompt = None
                if line:
                    self.config_push(line)
                else:
                    self.note("config push cancelled")
            elif line:
                self.show("> " + line, "answer")
                self.send(line, "user")
            self._draw_bar()
        elif c in (0x7F, 0x08):
            self.typed = self.typed[:-1]
            self._draw_bar()
        elif c == 0x1B:  # Esc: drop the line (and a cancelled prompt)
            self.typed, self.prompt = "", None
            self._draw_bar()
        elif c >= 0x20:
            self.typed += ch
            self._draw_bar()

    def action(self, k: str) -> None:
        if k == "h":
            self.show("\n".join(["-- Ctrl-T then: --"] + ["   %s  %s" % m for m in MENU]
                                + ["   Enter sends the typed line as a console command"]))
        elif k == "q":
            self.quit = True
        elif k == "p":
            self.paused = not self.paused
            self.note("output paused (Ctrl-T p resumes)" if self.paused else
                      "output resumed (%d lines held)" % len(self.held))
            if not self.paused:
                while self.held:
                    self._print(self.held.popleft())
        elif k == "l":
            self.ladder = not self.ladder
            self.filters = self._filters()
            self.note("ladder view %s" % ("on" if self.ladder else "off"))
        elif k == "s":
            self.note("soft reboot")
            self.send("reboot", "user")
        elif k == "r":
            self.reset()
        elif k == "f":
            self.flash()
        elif k == "c":
            self.prompt = "config file: "
            self.typed = ""
            self._draw_bar()
        else:
            self.note("Ctrl-T %r: no such key (Ctrl-T h lists them)" % k)

    def reset(self) -> None:
        ser = self.reader.ser
        if self.port.kind == "usb" and ser is not None:
            self.note("hard reset (EN through RTS)")
            try:
                ser.dtr = False
                ser.rts = True
                time.sleep(0.1)
                ser.rts = False
            except OSError as e:
                self.note("reset failed: %s" % e)
        else:
            self.note("hard reset (console `reset`)")
            self.send("reset", "user")

    def _run_command(self, argv: list[str], title: str) -> None:
        from .. import cli
        from ..errors import SipfwError

        ns = cli.build_parser().parse_args(
            [*argv, "--port", self.args.port or self.port.device])
        self.release(title)
        if self.bar_on:
            self.out.write("\r\x1b[K")
            self.out.flush()
        try:
            rc = ns.func(ns) or 0
            done = "%s: done" % title if rc == 0 else "%s: exit %d" % (title, rc)
        except SipfwError as e:
            done = "%s failed: %s" % (title, e)
        sys.stdout.flush()
        self.retake(done + "; back to the log")

    def flash(self) -> None:
        self._run_command(["flash"] + (["--source", self.args.source] if self.args.source
                                       else []), "flash")

    def config_push(self, path: str) -> None:
        self._run_command(["config", "push", os.path.expanduser(path)], "config push " + path)

    # -- the loop -------------------------------------------------------------------------
    def lend(self) -> None:
        got = self.server.accept()
        if got is None:
            return
        conn, req = got
        who = "pid %s (sipfw %s)" % (req.get("pid"), req.get("what") or "?")
        self.release("port lent to %s" % who)
        if self.bar_on:
            self.out.write("\r\x1b[K")
            self.out.flush()
        self.server.lend(conn, req)
        self.retake("port back from %s" % who)

    def run(self, duration: float | None = None) -> int:
        import termios
        import tty

        fd = self.inp.fileno()
        old = None
        if self.inp.isatty():
            old = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        end = time.monotonic() + duration if duration else None
        self.reader.open()
        self.note("monitor on %s: type a console command + Enter; Ctrl-T h: keys; "
                  "Ctrl-]: quit" % self.port.device)
        stdin_open = True
        try:
            while not self.quit and (end is None or time.monotonic() < end):
                self._read(0.1)
                fds = [self.server.fileno()] + ([fd] if stdin_open else [])
                ready, _, _ = select.select(fds, [], [], 0)
                if fd in ready:
                    data = os.read(fd, 1024)
                    if not data:
                        stdin_open = False
                    for ch in data.decode("utf-8", "replace"):
                        self.key(ch)
                        if self.quit:
                            break
                if self.server.fileno() in ready:
                    self.lend()
                self._poll_status()
        finally:
            if old is not None:
                termios.tcsetattr(fd, termios.TCSADRAIN, old)
            if self.bar_on:
                self.out.write("\r\x1b[K")
            self.out.flush()
            self.reader.close()
            if self.save is not None:
                self.save.close()
        return 0


def run(args) -> int:
    from .. import boards, portshare

    port = boards.resolve_port(args.port)
    server = portshare.Server(port.device)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return Monitor(args, port, server).run(args.duration)
        return 0
    finally:
        server.close()
