"""Start-up: config, log, network, scheduler, console, agent (``app.boot`` runs it).

Loaded for the boot and forgotten after it (``app.boot``); a config reload (the console's
``lazy`` handler ``cmds.reload``) and the harness's deferred start (``app._start``) load it
again, holding only ``ctx``: [config path, scheduler, IP address, console, agent, config].

A missing or bad config is one clear log line and a safe idle mode (no accounts) in which
the console still works, so a person can push a good config without reflashing. So is an
agent that cannot start (``start_agent``: a MemoryError on a small heap, say): the board
stays up, fed and reachable instead of crashing into the watchdog over and over.
"""

import sys

from . import VERSION
from . import log as logmod
from .compat import const, drop

_WATCHDOG_MS = const(8000)  # the rp2 hardware watchdog's longest period is 8.3 s
# Every name claimed at boot (names.py) where the free heap is at least this (32-bit; 1.4x
# on a 64-bit board): claimed, a phone keeps ~77 KB registered and peaks at ~94 KB setting
# up a call (tools/heap32), so this leaves room for a call's garbage. A 100 KB ESP32 is
# below: its names come as their code first runs (and a frozen build has them in ROM).
_CLAIM_FREE = const(131072)


# Log level names (config "log", console ``log``): the board's log only writes numbers.
LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40, "off": 100}  # log.DEBUG ... OFF


def level_from_name(name):
    """'info' -> INFO; raises ValueError naming the bad level."""
    lv = LEVELS.get(str(name).lower())
    if lv is None:
        raise ValueError("unknown log level %r (one of %s)" % (name, ", ".join(LEVELS)))
    return lv


def _apply_log_config(log, cfg):
    lc = cfg.get("log") or {}
    try:
        log.level = level_from_name(lc.get("level", "info"))
        log.areas = {a: level_from_name(v) for a, v in (lc.get("areas") or {}).items()}
    except ValueError as e:
        log.error("app", "log_config", reason=str(e))


def load_config(path):
    """config.load, then the config module (schema and checks: ~15 KB of heap on the unix
    port) is dropped again: the agent needs its result, not the validator.

    The result also carries the board's RFC 5626 instance id (``cfg["instance"]``),
    ``urn:uuid:<random UUID>`` kept in ``instance.id`` beside the config, made (and written
    there) when it is missing or not ours. Sent on every REGISTER's Contact
    (``+sip.instance`` with a ``reg-id`` per leg), it lets the registrar recognise the same
    phone after a reboot or on a new address and replace its binding instead of adding a
    second. Random (version 4) rather than derived from the chip: the unix port has no chip
    id (``/etc/machine-id`` is the host's, shared by every virtual board on it), and a board
    whose filesystem is wiped has lost its config too. ``sipfw flash`` and ``config push``
    never touch the file; a board that cannot write it has a new id every boot."""
    from . import config
    from .compat import urandom_u32

    try:
        cfg, err = config.load(path)
    finally:
        config.unload()
    path = path[:path.rfind("/") + 1] + "instance.id"
    try:
        with open(path) as f:
            u = f.read()
        if len(u) == 45:  # ours (a broken or foreign file is replaced)
            cfg["instance"] = u
            return cfg, err
    except OSError:
        pass
    a, b, c, d = urandom_u32(), urandom_u32(), urandom_u32(), urandom_u32()
    u = cfg["instance"] = "urn:uuid:%08x-%04x-4%03x-%04x-%04x%08x" % (
        a, b >> 16, b & 0xFFF, 0x8000 | (c >> 16) & 0x3FFF, c & 0xFFFF, d)
    try:
        with open(path, "w") as f:
            f.write(u)
    except OSError:
        pass
    return cfg, err


def start_agent(sched, cfg, log, ip, console):
    """The agent, started, its commands on the console; None if it could not start (a
    MemoryError on a small heap, a bug): one ``app agent_failed`` line and the traceback,
    then safe idle mode, in which the scheduler turns (the watchdog is fed), the console
    answers and ``status`` says why, so a person can push a smaller config or a new firmware
    instead of watching a crash loop."""
    from . import hal

    agent = None
    try:
        from .agent import Agent

        agent = Agent(sched, cfg, log, hal.heap_free, ip)
        agent.start()
    except Exception as e:  # noqa: BLE001 - whatever it was, the console must stay up
        if agent is not None:
            try:
                agent.stop(False)  # its socket, if it got that far
            except Exception:  # noqa: BLE001
                pass
        agent = None  # (the heap collects itself when the next allocation needs it)
        why = "%s: %s" % (type(e).__name__, e)
        log.exc("app", "agent_failed", e)
        console.register("status", lambda args: {"agent": "failed", "err": why,
                                                 "heap_free": hal.heap_free()})
        return None
    serve(console, agent)
    return agent


def agent_start(agent, delay):
    """``Agent.start``: the SIP stack and the DNS locator, then the accounts."""
    from .agent import Dns
    from .sip.stack import SipStack

    cfg = agent.cfg
    sip = dict(cfg.get("sip") or ())  # the schema's keys are SipStack's parameters
    follow = not sip.get("local_ip")  # "": the network's, followed as it changes
    sip["local_ip"] = sip.get("local_ip") or agent.ip or "0.0.0.0"
    sip["ca_file"] = sip.get("ca_file") or None
    sip["user_agent"] = sip.get("user_agent") or "sipfw/" + VERSION
    agent._ka_ms = sip.pop("keepalive_s", 25) * 1000  # the agent's, not the stack's
    agent.audio = cfg.get("audio")
    accept = sip.pop("accept_from", "servers")  # the agent's too: whom the stack listens to
    st = agent.stack = SipStack(agent.sched, log=agent.log, **sip)
    if accept == "servers":
        st.registrations = agent.registrations  # their servers alone (uas.stranger)
    st.start()
    agent.locator = Dns(agent.sched, cfg.get("dns") or {}, st.local_ip, agent.log)
    st.on_request = agent._on_request
    st.on_cancel = agent._on_cancel
    st.on_flow_lost = agent._flow_lost
    # [address, up, lost, down at, last outage ms, tries, next try at, timer, follow the
    # OS's address]: netwatch.py
    agent.net = [st.local_ip, 1, 0, 0, 0, 0, 0, agent.sched.call_later(1000, agent._watch),
                 follow]
    agent.log.info("agent", "listening", ip=st.local_ip, port=st.local_port,
                   accounts=len(cfg.get("accounts") or ()))
    if delay:
        agent._keepalive = agent.sched.call_later(delay, start_accounts, agent)
    else:
        start_accounts(agent)


def start_accounts(agent):
    from .account import Account
    from .agent import avoider
    from .sip.ctrans import budget_ms
    from .sip.reg import Registration
    from .sip.servers import ServerSet

    sched = agent.sched
    urn = agent.cfg.get("instance")  # load_config's; none from tools and tests
    for i, acc_cfg in enumerate(agent.cfg.get("accounts") or ()):
        if acc_cfg.get("enabled", True) is False:
            continue
        account = Account(acc_cfg, i)
        if urn:  # RFC 5626 §4.2, on every REGISTER's Contact (+ the leg's reg-id: reg.py)
            account.instance = ';+sip.instance="<%s>";reg-id=' % urn
        servers = ServerSet(sched)
        primary = Registration(sched, agent.stack, agent.locator, account, agent.log, servers)
        agent.registrations.append(primary)
        agent._lines.append((account, primary))
        if account.redundancy == "concurrent":
            backup = Registration(sched, agent.stack, agent.locator, account, agent.log,
                                  servers, leg=1, avoid=avoider(primary, servers))
            agent.registrations.append(backup)
            primary.start()
            sched.call_later(200, backup.start)  # after the primary picked its server
        else:
            primary.start()
    agent.cfg = None  # everything it said is in the stack, the locator and the accounts
    agent._keepalive = None
    every = agent._ka_ms
    if every:  # the first round as if after a UDP one (the longest wait): keepalive.py
        st = agent.stack
        wait = budget_ms(st.retry_count, st.t1, st.t2, False)
        agent._keepalive = sched.call_later(every - wait if every >= 2 * wait else every,
                                            agent._keepalives)


def console_start(con, sched):
    """``Console.start``: read commands from the console while ``sched`` runs."""
    import select
    import sys

    con._sched = sched
    if con._stream is None:
        con._stream = sys.stdin
    # A private poller: asks "one more byte?" while draining, and is the fallback when
    # the scheduler's poller cannot take the stream.
    try:
        con._poll = select.poll()
        con._poll.register(con._stream, select.POLLIN)
        con._ipoll = getattr(con._poll, "ipoll", None)
    except (OSError, TypeError, ValueError, AttributeError) as e:
        con._poll = None
        if con._log:
            con._log.warn("console", "no_input", err=str(e))
        return
    try:
        sched.watch(con._stream, select.POLLIN, con._on_readable)
        con._watched = True
    except (OSError, TypeError, ValueError, AttributeError):
        con._timer = sched.call_later(100, con._on_timer)  # console._FALLBACK_MS


def stop(agent, unregister):
    """``Agent.stop``: no more refreshes or keep-alives, the registrations stopped (their
    bindings removed first when ``unregister``), then the stack."""
    if agent._keepalive is not None:
        agent._keepalive.cancel()
    if agent.net is not None:
        agent.net[7].cancel()
    for r in agent.registrations:
        r.stop(unregister)
    st = agent.stack
    if st is not None:
        if unregister:
            agent.sched.call_later(500, st.stop)  # let the un-REGISTERs leave first
        else:
            st.stop()


# The agent's console commands, their bodies in cmds.py (run for ``console.agent``).
AGENT_COMMANDS = ("status", "call", "answer", "hangup", "dtmf", "hold", "resume", "reg",
                  "unreg", "dns")


def console_commands(agent):
    """``Agent.console_commands``: ``status`` the agent's own, the others ``lazy`` handlers
    running their bodies in ``cmds.py``."""
    from .console import lazy

    out = {}
    for name in AGENT_COMMANDS:
        out[name] = (agent.status if name == "status" else lazy(name, agent, agent.sched),
                     None)
    return out


def account_fields(acc, cfg, index):
    """``Account(cfg, index)``: its fields from a validated config entry."""
    acc.user = user = cfg["user"]
    acc.label = cfg.get("label") or user or "account%d" % index
    acc.auth_user = cfg.get("register_name") or user
    acc.domain = cfg["server"]
    for key, default in (("display_name", ""), ("password", None), ("ha1", None),
                         ("expires", 3600), ("outbound_proxy", None),
                         ("backup_outbound_proxy", None), ("redundancy", "successive")):
        setattr(acc, key, cfg.get(key) or default)
    transport = cfg.get("transport") or "dns-srv"
    acc.transport = None if transport == "dns-srv" else transport
    # With DNS-SRV the port comes from SRV records: the page's "Port" only pins an
    # explicit transport to an address lookup (RFC 3263 §4.2).
    acc.port = (cfg.get("port") or None) if acc.transport else None
    fb = cfg.get("failback") or {}
    acc.failback_mode = fb.get("mode") or "new-requests"
    acc.failback_timeout = fb.get("timeout") or 3600
    acc.auto_answer = bool(cfg.get("auto_answer"))
    acc.instance = None  # start_accounts: the board's +sip.instance Contact parameters


def serve(console, agent):
    """The agent's commands on the console: their bodies in ``cmds.py`` run for
    ``console.agent`` (no entry, no handler object per command); a handler registered
    under one of their names before (the failed start's ``status``) gives way."""
    console.agent = agent
    cmds = console.commands
    for name in AGENT_COMMANDS:
        if name in cmds:
            drop(cmds, name)


def swap(old, cfg, console, log, heap_free=None, ip=None):
    """The agent for ``cfg``, started in place of ``old``; if it cannot start, ``old`` keeps
    running and the error is raised. One stack at a time can hold the SIP port: ``old``
    lets go of its listening sockets (its flows stay) while the new stack binds, and takes
    them back if that or anything else fails. Only then is ``old`` stopped; the new
    registrations begin after its un-REGISTERs have left (its stack closes at 500 ms)."""
    from .agent import Agent

    new = Agent(old.sched, cfg, log, heap_free, ip)
    st = old.stack
    if st is not None:
        st.tp.unlisten()
    try:
        new.start(600)
    except Exception as e:  # noqa: BLE001 - whatever it is, the old agent stays
        new.stop(False)
        if st is not None:
            st.start()
        log.error("app", "reload_failed", err=repr(e))
        raise ValueError("the agent cannot start on it (%r); the previous one runs on"
                         % e) from None
    old.stop()
    _apply_log_config(log, cfg)
    serve(console, new)
    return new


def boot(config_path, sched=None, start=True, claim=None):
    """Everything before the loop: the firmware's names (``names.claim``: ``claim`` None
    decides by the free heap), config, network, scheduler, console, then (with ``start``)
    the agent. ``sched``: a scheduler to use (the 32-bit heap harness passes one on virtual
    time and a simulated network). Returns (sched, start_now, console), where
    ``start_now()`` starts the agent and returns it (None in safe idle mode): the harness
    measures the booted phone before it."""
    from . import hal
    from .console import Console, lazy
    from .sched import Scheduler

    log = logmod.log
    free = hal.heap_free()
    log.info("app", "start", version=VERSION, platform=sys.platform, heap_free=free)
    if claim is None:  # where the heap affords it; a 64-bit board's names take 1.4x
        wide = sys.maxsize > 0x7FFFFFFF
        claim = free is not None and free >= _CLAIM_FREE * (7 if wide else 5) // 5
    if claim:
        from .compat import forget
        from .names import claim as claim_names

        claim_names(log)
        forget("sipua.names")
    cfg, err = load_config(config_path)
    _apply_log_config(log, cfg)
    if err:
        log.error("app", "config_error", reason=err)
    try:
        ip = hal.network_up(cfg, log)
    except OSError as e:  # Wi-Fi down: keep the console, retry on the next reset
        log.error("app", "network_down", err=str(e))
        ip = None
    sched = sched or Scheduler(log=log)
    # The loop wakes at least once a second; 8 s of silence means a stalled callback. The
    # hardware WDT on esp32/rp2; on the unix port a heartbeat file its supervisor watches.
    if hal.watchdog_start(_WATCHDOG_MS):
        sched.watchdog = hal.feed
    console = Console(log=log)
    ctx = [config_path, sched, ip, console, None, cfg]
    console.reload_hook = lazy("reload", ctx, sched)
    if (cfg.get("log") or {}).get("debug_commands"):
        console.register("stall", None)  # cmds.stall: blocks the loop
    console.start(sched)
    if start:
        start_now(ctx)
    return sched, ctx, console


def start_now(ctx):
    """The agent for the boot's config, started (None in safe idle mode)."""
    from . import hal

    log = logmod.log
    ip = ctx[2]
    agent = ctx[4] = start_agent(ctx[1], ctx[5], log, ip, ctx[3])
    ctx[5] = None  # the agent has what it needs of the config
    if agent is not None:
        log.info("app", "ready", ip=ip or "", heap_free=hal.heap_free())
    return agent


def reload(ctx):
    """``config reload``: the agent swapped for one on the config file as it is now."""
    from . import hal

    log = logmod.log
    new, why = load_config(ctx[0])
    if why:
        raise ValueError(why)
    log.info("app", "config_reload")
    if ctx[4] is None:  # safe idle mode: nothing to swap, start afresh
        _apply_log_config(log, new)
        ctx[4] = start_agent(ctx[1], new, log, ctx[2], ctx[3])
        if ctx[4] is None:
            raise ValueError("the agent cannot start on it (see app agent_failed)")
    else:
        ctx[4] = swap(ctx[4], new, ctx[3], log, hal.heap_free, ctx[2])
    return {"accounts": len(new.get("accounts") or ())}
