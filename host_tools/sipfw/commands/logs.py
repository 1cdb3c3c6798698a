"""`sipfw logs`: tail the board's log over serial (see sipfw.monitor, sipfw.filters)."""

from __future__ import annotations

import json
import re
import sys
import time
from contextlib import nullcontext

COLORS = {"ERROR": "\x1b[31m", "WARN": "\x1b[33m", "DEBUG": "\x1b[2m", "traceback": "\x1b[31m",
          "boot": "\x1b[1;36m", "gap": "\x1b[1;35m", "reconnect": "\x1b[1;35m",
          "answer": "\x1b[32m", "ladder-head": "\x1b[1m"}
RESET = "\x1b[0m"


def add_parser(sub):
    p = sub.add_parser("logs", help="tail the board's log",
                       description="Tail the board's console: each line stamped with the time "
                       "of its first byte, boots and tracebacks marked, reconnecting across "
                       "resets and re-plugging (the gap is marked).")
    p.add_argument("--port", help="device, serial number or vboard id")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line (log lines parsed by sipua.log.parse_line)")
    p.add_argument("--level", help="only log lines at this level or above (debug, info, warn, "
                   "error); tracebacks always show")
    p.add_argument("--area", action="append", help="only log lines of this area (repeatable)")
    p.add_argument("--grep", metavar="RE", help="only lines matching RE")
    p.add_argument("--save", metavar="FILE", help="also append every line (unfiltered, plain "
                   "text with timestamps) to FILE")
    p.add_argument("--ladder", action="store_true",
                   help="draw SIP and DNS exchanges as a sequence diagram")
    p.add_argument("--filter", action="append", metavar="NAME",
                   help="add an output filter: a built-in name (ladder) or module:Class "
                   "(repeatable, applied in order)")
    p.add_argument("--duration", metavar="S", type=float, help="stop after S seconds")
    p.add_argument("--until", metavar="RE", help="stop after the first line matching RE "
                   "(exit 1 if --duration ends first)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--no-reconnect", action="store_true",
                   help="stop when the port goes away instead of waiting for it")
    p.set_defaults(func=run)
    return p


def stamp(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + ".%03d" % int((t % 1) * 1000)


def render(ev, color: bool) -> str:
    if ev.kind in ("ladder", "ladder-head"):
        text = ev.text
    elif ev.kind in ("gap", "reconnect"):
        text = "%s %s" % (stamp(ev.t), ev.text)
    elif ev.kind == "boot":
        text = "%s ==== boot ==== %s" % (stamp(ev.t), ev.text)
    else:
        text = "%s %s" % (stamp(ev.t), ev.text)
    if not color:
        return text
    key = ev.fields.get("level") if ev.kind in ("log", "ladder") and ev.fields else ev.kind
    code = COLORS.get(key or "")
    return code + text + RESET if code else text


def build_filters(args) -> list:
    from .. import filters
    from ..errors import UsageError

    out = []
    try:
        if args.level:
            out.append(filters.LevelFilter(args.level))
        if args.area:
            out.append(filters.AreaFilter(args.area))
        if args.grep:
            out.append(filters.GrepFilter(args.grep))
        if args.ladder:
            out.append(filters.LadderFilter(stamp=stamp))
        for name in args.filter or ():
            out.append(filters.load(name))
    except (ValueError, re.error) as e:
        raise UsageError(str(e)) from None
    return out


def run(args) -> int:
    from .. import boards, portshare
    from ..errors import UsageError
    from ..filters import chain
    from ..monitor import LineReader

    chain_ = build_filters(args)
    try:
        until = re.compile(args.until) if args.until else None
    except re.error as e:
        raise UsageError("--until: %s" % e) from None
    port = boards.resolve_port(args.port)
    # From a monitor holding the port, if one does; else this tail holds it and lends it
    # to the other sipfw commands (console, flash, config) that ask.
    server = None if portshare.borrow(port) else portshare.Server(port.device, "logs")
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    deadline = time.monotonic() + args.duration if args.duration else None
    reader = LineReader(args.port, port, reconnect=not args.no_reconnect)
    reader.open()
    out = sys.stdout
    matched = False
    with open(args.save, "a", encoding="utf-8") if args.save else nullcontext() as save:
        try:
            for ev in _events(reader, deadline, server):
                if save is not None:
                    save.write(render(ev, False) + "\n")
                    save.flush()
                for shown in chain(chain_, ev):
                    if args.json:
                        out.write(json.dumps(shown.as_dict()) + "\n")
                    else:
                        out.write(render(shown, color) + "\n")
                out.flush()
                if until is not None and until.search(ev.text):
                    matched = True
                    break
        except KeyboardInterrupt:  # Ctrl-C is how a person stops a tail: not an error
            return 0
        finally:
            reader.close()
            if server is not None:
                server.close()
    if until is not None and not matched:
        print("sipfw logs: no line matched --until %r" % args.until, file=sys.stderr)
        return 1
    return 0


def _events(reader, deadline, server):
    """``reader.events(deadline)``, in slices between which a lend request is served: the
    port is closed for the borrower and reopened when it is done (the note on stderr, so
    stdout keeps only lines)."""
    if server is None:
        yield from reader.events(deadline)
        return
    import select

    from .. import portshare

    while True:
        step = time.monotonic() + 0.2
        yield from reader.events(step if deadline is None else min(step, deadline))
        if deadline is not None and time.monotonic() >= deadline:
            return
        if reader.ser is None and not reader.reconnect:
            return  # the port went away and --no-reconnect
        if select.select([server], [], [], 0)[0]:
            got = server.accept()
            if got is None:
                continue
            reader.close()
            who = "pid %s (sipfw %s)" % (got[1].get("pid"), got[1].get("what") or "?")
            print("sipfw logs: port lent to %s" % who, file=sys.stderr, flush=True)
            server.lend(*got)
            if not portshare.retake(reader):
                print("sipfw logs: %s did not come back" % reader.port.device, file=sys.stderr)
                return
            print("sipfw logs: port back from %s" % who, file=sys.stderr, flush=True)
