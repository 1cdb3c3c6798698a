"""`sipfw console [COMMAND ...]`: send console commands to the running agent, print the
JSON answers (one per line). With no command: an interactive prompt.

Each command goes out as ``#<id> <command>``; the agent answers ``@{"id": "<id>", ...}``
(see firmware/sipua/console.py), so answers are told from log lines and from stale answers
by their id. The exit status is 0 when every answer said ``"ok": true``.
"""

from __future__ import annotations

import json
import sys
import time


def add_parser(sub):
    p = sub.add_parser("console", help="send console commands to the agent, print the answers")
    p.add_argument("--port", help="device, serial number or vboard id")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for each answer (default 5)")
    p.add_argument("--logs", action="store_true",
                   help="also print the log lines that arrive while waiting")
    p.add_argument("command", nargs="*", help="e.g. status, 'log debug sip', 'config reload'")
    p.set_defaults(func=run)
    return p


class Session:
    def __init__(self, reader, timeout: float, show_logs: bool = False, out=None):
        self.reader = reader
        self.timeout = timeout
        self.show_logs = show_logs
        self.out = out or sys.stdout
        self.seq = int(time.time() * 1000) % 100000  # ids differ from a previous session's
        self.events = None

    def ask(self, command: str) -> dict:
        from ..errors import BoardError

        self.seq += 1
        rid = str(self.seq)
        self.reader.write(("#%s %s\r\n" % (rid, command)).encode())
        deadline = time.monotonic() + self.timeout
        prompt_seen = False
        for ev in self.reader.events(deadline):
            if ev.kind == "answer":
                try:
                    ans = json.loads(ev.text[1:])
                except ValueError:
                    continue
                if ans.get("id") == rid:
                    return ans
            elif ev.kind in ("gap", "reconnect"):
                self.out.write(ev.text + "\n")
            else:
                if ev.text.startswith(">>>") or "NameError" in ev.text:
                    prompt_seen = True  # the line went to the REPL: no agent will answer
                    break
                if self.show_logs:
                    self.out.write(ev.text + "\n")
        if prompt_seen:
            raise BoardError("%s: the board is at the MicroPython REPL, not running the agent "
                             "(flash it, or reset it)" % self.reader.port.device)
        raise BoardError("%s: no answer to %r within %.0f s: is the agent running? "
                         "(`sipfw logs` shows what the board prints)"
                         % (self.reader.port.device, command, self.timeout))


def run(args) -> int:
    from .. import boards
    from ..monitor import LineReader

    port = boards.resolve_port(args.port)
    reader = LineReader(args.port, port, reconnect=False)
    reader.open()
    session = Session(reader, args.timeout, args.logs)
    failed = 0
    try:
        commands = [" ".join(args.command)] if args.command else None
        if commands and ";" in commands[0]:
            commands = [c.strip() for c in commands[0].split(";") if c.strip()]
        if commands is not None:
            for cmd in commands:
                ans = session.ask(cmd)
                print(json.dumps(ans), flush=True)
                failed += not ans.get("ok")
            return 1 if failed else 0
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                sys.stdout.write("sipfw> ")
                sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            if line in ("exit", "quit"):
                break
            try:
                ans = session.ask(line)
            except Exception as e:  # interactive: report and go on
                from ..errors import SipfwError

                if not isinstance(e, SipfwError):
                    raise
                print("error: %s" % e, flush=True)
                failed += 1
                continue
            print(json.dumps(ans), flush=True)
            failed += not ans.get("ok")
        return 1 if failed else 0
    finally:
        reader.close()
