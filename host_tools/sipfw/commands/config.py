"""`sipfw config validate FILE | push FILE | pull | show`: the board's account config."""

from __future__ import annotations

import json
import sys
import time

from ..bootwatch import READY_RE
from .flash import WAIT_TIMEOUT_S


def add_parser(sub):
    p = sub.add_parser("config", help="validate, push, pull or show the account config",
                       description="The config schema is the firmware's own "
                       "(sipua.config.validate): every error names the key and why.")
    sp = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    v = sp.add_parser("validate", help="check a config file; print it normalized with -v")
    v.add_argument("file")
    v.add_argument("-v", "--verbose", action="store_true",
                   help="print the normalized config (secrets redacted)")

    def board_opts(q):
        q.add_argument("--port", help="device, serial number or vboard id")
        q.add_argument("--board", help="board config name (default: from the port)")
        q.add_argument("--no-reset", action="store_true",
                       help="leave the board in the REPL afterwards (the agent stays stopped)")

    pu = sp.add_parser("push", help="validate, then write config.json atomically; the running "
                       "agent reloads it (or is reset)")
    pu.add_argument("file")
    board_opts(pu)
    pu.add_argument("--store-ha1", action="store_true",
                    help="store the digest HA1 instead of each password")
    pu.add_argument("--realm", help="realm for --store-ha1 (default: the account's server)")
    pu.add_argument("--wait-for", metavar="RE", default=READY_RE,
                    help="after a reset: the line that says the agent is ready (default: "
                    "%(default)s); anything else (a traceback, a crash loop, silence) is an "
                    "error")
    pu.add_argument("--wait-timeout", metavar="S", type=float, default=WAIT_TIMEOUT_S,
                    help="how long to wait for it (default %(default).0f)")
    pu.add_argument("--reset", action="store_true",
                    help="do not ask the running agent to take the config; stop it, write the "
                    "file through the REPL and soft-reset")

    for name, text in (("pull", "print the board's config.json (secrets redacted)"),
                       ("show", "print the config the board's agent uses: normalized, "
                        "with defaults (secrets redacted)")):
        q = sp.add_parser(name, help=text)
        board_opts(q)
        q.add_argument("--show-secrets", action="store_true", help="do not redact")
        q.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    return {"validate": validate, "push": push, "pull": pull, "show": pull}[args.action](args)


def validate(args) -> int:
    from .. import configfile

    obj = configfile.read_json(args.file)
    cfg = configfile.check(obj, args.file)
    n = len(cfg["accounts"])
    print("%s: ok, %d account%s" % (args.file, n, "" if n == 1 else "s"))
    if args.verbose:
        print(json.dumps(configfile.fw_config().redacted(cfg), indent=1))
    return 0


def _open(args):
    from .. import boards, portshare
    from ..board import open_board

    port = boards.resolve_port(args.port)
    portshare.borrow(port)  # from a monitor holding it, if one does
    cfg = boards.board_of(port, args.board) if (args.board or port.board) else {}
    return open_board(port, cfg), cfg.get("fs_root", "/")


def push(args) -> int:
    from .. import bootwatch, configfile

    obj = configfile.read_json(args.file)
    configfile.check(obj, args.file)
    if args.store_ha1:
        n = configfile.store_ha1(obj, args.realm)
        print("stored HA1 instead of the password for %d account(s)" % n)
        configfile.check(obj, args.file)
    data = configfile.encode(obj)
    t0 = time.monotonic()
    if not args.reset and _push_live(args, data, t0):
        return 0
    board, root = _open(args)
    with board:
        board.enter_raw(soft_reset=False)
        digest = configfile.push(board, data, root)
        print("%s: config.json written (%d bytes, sha256 %s…), previous kept as "
              "config.json.bak, in %.2f s" % (board.port.device, len(data), digest[:12],
                                              time.monotonic() - t0), flush=True)
        if args.no_reset:
            return 0
        # Entering the raw REPL stopped the agent; a soft reboot starts it on the new config
        # through the same path as power-on.
        board.reboot()
        outcome = board.watch_boot(args.wait_timeout, args.wait_for)
    bootwatch.report(outcome, "config written")
    return 0


def _push_live(args, data: bytes, t0: float) -> bool:
    """Through the running agent's console, if there is one: no reset, calls stay up.
    False when no agent answers (then the raw-REPL path writes it and resets)."""
    from .. import boards, bootwatch, configfile, portshare
    from ..errors import BoardError
    from ..monitor import LineReader
    from ..session import Session

    port = boards.resolve_port(args.port)
    portshare.borrow(port)  # from a monitor holding it, if one does
    reader = LineReader(args.port, port, reconnect=False)
    reader.open()
    try:
        probe = Session(reader, timeout=1.5)
        try:
            probe.ask("help")
        except BoardError:
            return False  # no agent console: at the REPL, another main.py, or silent
        ans = configfile.push_live(Session(reader, timeout=5.0), data)
        print("%s: config.json written through the agent's console (%d bytes, sha256 %s…), "
              "previous kept as config.json.bak, in %.2f s"
              % (port.device, len(data), configfile.hashlib.sha256(data).hexdigest()[:12],
                 time.monotonic() - t0), flush=True)
        if ans.get("reloaded"):
            print("agent reloaded the config: %s" % json.dumps(ans.get("reload")))
            return True
        if args.no_reset:
            return True
        # This agent cannot reload: reboot it through its console, then read the boot.
        Session(reader, timeout=5.0).ask("reboot")
        reader.reconnect = True  # a USB board may re-enumerate on the reset

        def line(until):
            ev = next(reader.events(until), None)
            return None if ev is None else ev.text

        outcome = bootwatch.watch(line, args.wait_timeout, args.wait_for)
        bootwatch.report(outcome, "config written")
        return True
    finally:
        reader.close()


def pull(args) -> int:
    from .. import configfile
    from ..errors import ConfigError

    board, root = _open(args)
    with board:
        board.enter_raw(soft_reset=False)
        data = configfile.pull(board, root)
        if not args.no_reset:
            board.reboot()  # the agent was stopped to read the file: start it again
    if data is None:
        raise ConfigError("%s: no config.json on the board (push one with `sipfw config push`)"
                          % board.port.device)
    try:
        obj = json.loads(data.decode("utf-8"))
    except ValueError as e:
        raise ConfigError("%s: config.json on the board is not valid JSON (%s)"
                          % (board.port.device, e)) from None
    cfgmod = configfile.fw_config()
    if args.action == "show":
        try:
            obj = cfgmod.validate(obj)
        except cfgmod.ConfigError as e:
            for msg in e.errors:
                print("config.json: %s" % msg, file=sys.stderr)
            raise ConfigError("config.json on the board is invalid: the agent runs on "
                              "config.json.bak or the defaults") from None
    if not args.show_secrets:
        obj = cfgmod.redacted(obj)
    text = json.dumps(obj, indent=1) + "\n"
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print("%s: written%s" % (args.output, "" if args.show_secrets else
                                 " (secrets redacted: use --show-secrets to push it back)"))
    else:
        sys.stdout.write(text)
    return 0
