"""`sipfw console [COMMAND ...]`: send console commands to the running agent, print the
JSON answers (one per line). With no command: an interactive prompt.

Each command goes out as ``#<id> <command>``; the agent answers ``@{"id": "<id>", ...}``
(see firmware/sipua/console.py), so answers are told from log lines and from stale answers
by their id. The exit status is 0 when every answer said ``"ok": true``.
"""

from __future__ import annotations

import json
import sys

from ..session import Session


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


def run(args) -> int:
    from .. import boards, portshare
    from ..monitor import LineReader

    port = boards.resolve_port(args.port)

    portshare.borrow(port)  # from a monitor holding it, if one does
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
