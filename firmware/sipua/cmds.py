"""Console command bodies and answers, loaded when a command runs and unloaded again
2 s (``_IDLE_MS``) after the last one (``compat.forget``): a registered phone that nobody
types at keeps none of it. The console's built-ins (``help``, ``log``, ``config``, ``reboot``,
``reset``) and the agent's commands (``call``, ``answer``, ``hangup``, ``dtmf``, ``hold``,
``resume``, ``reg``, ``unreg``, ``dns``, ``status``: ``Agent.status`` runs it too) are functions
``name(owner, args)`` here, reached through ``run``; their help texts are here too, read by
``help`` only.
"""

from .compat import const, forget
from .console import PREFIX, ConsoleError

_IDLE_MS = const(2000)  # a burst of commands (a bench polling) loads this once

HELP = {
    "help": "list the commands",
    "log": "log [LEVEL [AREA]]: show or set log levels",
    "config": "config reload: re-read /config.json; config begin/data/commit: replace it "
              "(sipfw config push)",
    "reboot": "soft reboot (boot.py, main.py run again)",
    "reset": "hard reset",
    "status": "status [gc]: accounts, calls, heap (gc: collect first)",
    "call": "call URI|USER: start a call",
    "answer": "answer [ID]: answer the ringing call",
    "hangup": "hangup [ID]: end, cancel or reject a call",
    "dtmf": "dtmf DIGITS [ID]: send 0-9 * # A-D as RFC 4733 events",
    "hold": "hold [ID]: put the call on hold (re-INVITE sendonly)",
    "resume": "resume [ID]: take the call off hold (re-INVITE sendrecv)",
    "reg": "reg [LABEL]: re-register now",
    "unreg": "unreg [LABEL]: remove the registration",
    "dns": "dns NAME [TRANSPORT]: run the RFC 3263 locator",
    "stall": "stall SECONDS: block the loop (watchdog test)",
}

_unload = None  # the timer that forgets this module


def run(name, owner, args, sched):
    """Command ``name`` of ``owner`` (the console, the agent, start-up's ``ctx``); this
    module and start-up are forgotten ``_IDLE_MS`` after the last command, or at once
    without a scheduler. (Not the config upload's: an upload in progress holds its
    objects, whose errors its code catches by class.)"""
    global _unload
    try:
        return globals()[name](owner, args)
    finally:
        if _unload is not None:
            _unload.cancel()
        if sched is None:
            forget("sipua.cmds", "sipua.startup")
        else:
            _unload = sched.call_later(_IDLE_MS, forget, "sipua.cmds", "sipua.startup")


def execute(con, line):
    """Run one command line and write its answer; returns the answer dict."""
    words = line.split()
    rid = None
    if words and words[0].startswith("#"):
        rid = words.pop(0)[1:]
    if not words:
        return None
    name, args = words[0], words[1:]
    entry = con.commands.get(name) or _entry(con, name)
    if entry is None:
        res = {"ok": False, "error": "unknown command %r (try help)" % name}
    else:
        try:
            fn = entry[0]
            if fn is None:
                res = globals()[name](con, args)
            elif fn is False:
                res = globals()[name](con.agent, args)
            else:
                res = fn(args)
            res = {} if res is None else dict(res)
            res["ok"] = True
        except ConsoleError as e:
            res = {"ok": False, "error": str(e)}
        # a broken handler answers; it must not stop the phone
        except Exception as e:  # noqa: BLE001
            if con._log:
                con._log.exc("console", "handler_error", e, cmd=name)
            res = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    if rid is not None:
        res["id"] = rid
    return reply(con, (name, res))


def stop(con, args):
    """The console's input is at its end (``Console._on_readable``): one warning, and it is
    no longer read. Not a command: the console has no entry for it."""
    if con._log:
        con._log.warn("console", "input_closed")
    if con._watched and con._sched is not None:
        con._sched.unwatch(con._stream)
        con._watched = False
    if con._timer is not None:
        con._timer.cancel()
        con._timer = None
    con._sched = None


def reply(con, args):
    """The answer line of command ``args[0]``: dict ``args[1]`` as JSON after ``@``."""
    import json

    name, res = args
    res["cmd"] = name
    # MicroPython's json.dumps writes repr() of an unknown object (invalid JSON) where
    # CPython raises: make every value plain JSON first, the same way on both.
    res = _plain(res)
    text = PREFIX + json.dumps(res)
    if con._write is not None:
        con._write(text)
    else:
        print(text)
    return res


def _plain(value):
    # One isinstance per type: a tuple of types is built anew on every call on MicroPython,
    # and a status answer has a few dozen values (the tuple form made 2.9 KB of garbage
    # per status, most of what the bench's polling costs the board).
    if value is None or value is True or value is False or isinstance(value, str):
        return value
    if isinstance(value, int) or isinstance(value, float):  # bool is no int on MicroPython
        return value
    if isinstance(value, dict):
        out = {}
        for k in value:
            out[k if isinstance(k, str) else str(k)] = _plain(value[k])
        return out
    if isinstance(value, list) or isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes) or isinstance(value, bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _entry(con, name):
    """The entry of a command registered by no one: a built-in's (its body here, run for the
    console) or, with an agent served, the agent's (run for ``con.agent``); else None."""
    if name in _BUILTINS:
        return _BUILTIN
    if con.agent is not None:
        from .startup import AGENT_COMMANDS

        if name in AGENT_COMMANDS:
            return False, None
    return None


# -- the console's built-ins ----------------------------------------------------------------
_BUILTINS = ("help", "log", "config", "reboot", "reset")
_BUILTIN = (None, None)


def help(con, args):
    names = set(_BUILTINS)
    if con.agent is not None:
        from .startup import AGENT_COMMANDS

        names.update(AGENT_COMMANDS)
    names.update(con.commands)
    return {"commands": dict((n, (con.commands.get(n) or _BUILTIN)[1] or HELP.get(n, ""))
                             for n in sorted(names))}


def log(con, args):
    from .log import log as lg
    from .startup import LEVELS, level_from_name

    names = dict((v, k) for k, v in LEVELS.items())
    if len(args) > 2:
        raise ConsoleError("usage: log [LEVEL [AREA]]")
    if args:
        try:
            level = level_from_name(args[0])
        except ValueError as e:
            raise ConsoleError(str(e)) from None
        if len(args) == 2:
            lg.areas[args[1]] = level
        else:
            lg.level = level
    areas = dict((a, names.get(lv, lv)) for a, lv in lg.areas.items())
    return {"level": names.get(lg.level, lg.level), "areas": areas}


def config(con, args):
    from .upload import config_command

    return config_command(con, args)


def reboot(con, args):
    _later(con, False)


def reset(con, args):
    _later(con, True)


def _later(con, hard):
    # Answer first, reset a moment later, so the host sees the answer before the board
    # goes away.
    hook = con.reset_hook or _default_reset
    if con._sched is not None:
        con._sched.call_later(50, hook, hard)
    else:
        hook(hard)


def _default_reset(hard):
    import machine  # type: ignore

    if hard:
        machine.reset()
    soft = getattr(machine, "soft_reset", None)
    if soft is not None:
        soft()
    raise SystemExit  # the unix port: the virtual board soft-reboots when main.py exits


def stall(con, args):
    """Block the scheduler, as a callback stuck in a loop would: the watchdog's to catch."""
    import time

    try:
        seconds = int(args[0]) if args else 20
    except ValueError:
        seconds = 20
    time.sleep(min(seconds, 600))
    return {"stalled_s": seconds}


# -- start-up's (console.reload_hook) -------------------------------------------------------
def reload(ctx, args):
    from .startup import reload

    return reload(ctx)


# -- the agent's ----------------------------------------------------------------------------
def status(agent, args):
    """``status [gc]``: with ``gc`` the heap is collected first, so heap_free is the live
    heap's complement rather than that minus whatever garbage has piled up since the
    last collection (the bench's baseline for "heap back where it was")."""
    if args and args[0] == "gc":
        import gc

        gc.collect()
    accounts = []
    for r in agent.registrations:
        s = registration(r)
        if r.leg:
            s["leg"] = "backup"
        accounts.append(s)
    net = agent.net
    return {"accounts": accounts, "calls": agent.calls.status() if agent.calls else [],
            "strangers": getattr(agent.stack, "dropped", 0),  # sip.accept_from (guard.py)
            "link": net and ("up" if net[1] else "down"), "link_lost": net and net[2],
            "outage_ms": net and net[4],
            "heap_free": agent.heap_free() if agent.heap_free else None,
            "uptime_ms": agent.sched.now() - agent.started_at}


def registration(r):
    """One registration leg's part of ``status`` (``sip.reg.Registration`` ``r``)."""
    s = r.server
    return {
        "label": r.account.label,
        "state": r.state,
        "server": None if s is None else {"host": s.host, "ip": s.ip, "port": s.port,
                                          "transport": s.transport},
        "expires_in": r.expires_in(),
        "preferred": bool(s is not None and r.servers.is_preferred(s)),
        "last_error": r.last_error,
    }


def call(agent, args):
    if not args:
        raise ConsoleError("usage: call URI")
    calls = agent._call_agent()
    try:
        c = calls.call(args[0])
    except ValueError as e:
        if not calls.calls:
            agent._calls_ended()
        raise ConsoleError(str(e)) from None
    return {"call": c.id, "state": c.state}


def answer(agent, args):
    c = agent.calls.answer(int(args[0]) if args else None) if agent.calls else None
    if c is None:
        raise ConsoleError("no ringing call")
    return {"call": c.id, "state": c.state}


def hangup(agent, args):
    c = agent.calls.hangup(int(args[0]) if args else None) if agent.calls else None
    if c is None:
        raise ConsoleError("no call")
    return {"call": c.id, "state": c.state}


def dtmf(agent, args):
    if not args:
        raise ConsoleError("usage: dtmf DIGITS [ID]")
    c = agent.calls.find(int(args[1]) if len(args) > 1 else None, "active") \
        if agent.calls else None
    if c is None or c.media is None or not c.media.running:
        raise ConsoleError("no call with audio")
    try:
        c.media.dtmf(args[0].upper())
    except ValueError as e:
        raise ConsoleError(str(e)) from None
    return {"call": c.id, "digits": args[0]}


def hold(agent, args, on=True):
    from .sip.hold import hold

    c = hold(agent.calls, int(args[0]) if args else None, on) if agent.calls else None
    forget("sipua.sip.hold")  # its callback keeps what it needs until the answer
    if c is None:
        raise ConsoleError("no active call")
    return {"call": c.id, "held": on}


def resume(agent, args):
    return hold(agent, args, False)


def reg(agent, args):
    return _legs(agent, args, False)


def unreg(agent, args):
    return _legs(agent, args, True)


def _legs(agent, args, unregister):
    legs = [r for r in agent.registrations if not args or r.account.label == args[0]]
    if not legs:
        raise ConsoleError("no such account")
    for r in legs:
        if unregister:
            r.stop(unregister=True)
        else:
            r.register_now()
    return {"accounts": [r.account.label for r in legs]}


def dns(agent, args):
    """Runs the locator and answers when it is done: the answer line comes later."""
    if not args:
        raise ConsoleError("usage: dns NAME [udp|tcp|tls]")
    name = args[0]
    transport = args[1] if len(args) > 1 else None
    lg = agent.log

    def done(targets, err):
        lg.info("dns", "located", name=name, error=err or "",
                targets=" ".join("%s:%s:%s:%d" % (t.transport, t.host, t.ip, t.port)
                                 for t in (targets or ())))

    agent.locator.locate(name, done, transport=transport)
    return {"pending": True, "name": name}
