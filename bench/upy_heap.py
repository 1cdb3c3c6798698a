# Runs ON the MicroPython unix port (MICROPYPATH = a folder of the compiled firmware), driven
# by bench_heap.py. Prints one "@@name value" line per figure; nothing else is parsed.
#   micropython -X heapsize=2M bench/upy_heap.py imports
#   micropython -X heapsize=2M bench/upy_heap.py ops CONFIG.json
#   micropython -X heapsize=2M bench/upy_heap.py call CONFIG.json FAR_USER
# Figures are gc.mem_alloc() deltas: "kept" after gc.collect(); "allocated" with the
# collector disabled around one operation (so garbage counts too).
import gc
import sys

# Dependency order, so each line is what that one module adds.
MODULES = (
    "sipua", "sipua.compat", "sipua.log", "sipua.sched", "sipua.hal", "sipua.config",
    "sipua.console", "sipua.account", "sipua.dns", "sipua.dns.wire", "sipua.dns.cache",
    "sipua.dns.resolver", "sipua.dns.locator", "sipua.sip", "sipua.sip.scan", "sipua.sip.hdr",
    "sipua.sip.msg", "sipua.sip.transport", "sipua.sip.ctrans", "sipua.sip.stack",
    "sipua.sip.auth", "sipua.sip.servers", "sipua.sip.reg", "sipua.sip.sdp",
    "sipua.sip.dialog", "sipua.sip.call", "sipua.agent", "sipua.app",
    # loaded only when needed:
    "sipua.sip.strans", "sipua.sip.uas", "sipua.sip.md5", "sipua.dns.static", "sipua.dns.tcp",
    "sipua.upload", "sipua.cmds", "sipua.startup", "sipua.schedslow",
    "sipua.sip.digest", "sipua.sip.msgtext",
)


def kept():
    gc.collect()
    return gc.mem_alloc()


def imports():
    base = kept()
    for m in MODULES:
        a = kept()
        try:
            __import__(m)
        except ImportError as e:
            print("@@import %s -1 %s" % (m, e))
            continue
        print("@@import %s %d" % (m, kept() - a))
    print("@@import_total %d" % (kept() - base))


def allocated(fn, *args):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    try:
        fn(*args)
    finally:
        b = gc.mem_alloc()
        gc.enable()
    return b - a


def start_agent(cfg_path):
    """The agent of ``cfg_path`` started on a scheduler: (sched, agent, its first
    registration), or None once the config's error is printed."""
    from sipua.agent import Agent

    try:
        from sipua.startup import load_config
    except ImportError:  # an older tree (bench_heap --firmware): the module stays loaded
        from sipua.config import load as load_config
    from sipua.log import log
    from sipua.sched import Scheduler

    log.level = 30  # warnings only: the figures, not the log, are measured here
    cfg, err = load_config(cfg_path)  # the config module is dropped again, as in app.main
    if err:
        print("@@error config %s" % err)
        return None
    sched = Scheduler(log=log)
    agent = Agent(sched, cfg, log, gc.mem_free, "127.0.0.1")
    agent.start()
    return sched, agent, agent.registrations[0]


def ops(cfg_path):
    started = start_agent(cfg_path)
    if started is None:
        return
    sched, agent, reg = started
    ok = sched.run_until(lambda: reg.state == "registered", 20000)
    print("@@registered %d" % ok)
    if not ok:
        return
    print("@@kept_registered %d" % kept())
    # One REGISTER cycle on the open flow (refresh: REGISTER, 401, REGISTER, 200 OK).
    # Kamailio's nonce changes once a second, and a challenge with the nonce we answered
    # last reads as "credentials refused": leave a second between the cycles.
    import time

    def cycle():
        time.sleep_ms(1100)
        done = []
        old = reg._set_state

        def watch(state):
            old(state)
            if state == "registered":
                done.append(1)
        reg._set_state = watch
        reg.register_now()
        sched.run_until(lambda: done, 10000)
        del reg._set_state
        if not done:
            raise OSError("refresh failed")
    cycle()  # warm: the first refresh may create lasting objects
    print("@@alloc_register_cycle %d" % allocated(cycle))
    # One DNS resolution through the locator, cache emptied first (NAPTR, SRV, A, A).
    def resolve():
        loc = agent.locator._locator  # None once DNS was unloaded (agent.DNS_IDLE_MS)
        if loc is not None:
            loc.resolver.cache.clear()
        box = []
        agent.locator.locate(reg.account.domain, lambda t, e: box.append(1))
        sched.run_until(lambda: box, 10000)
    resolve()
    print("@@alloc_dns_locate %d" % allocated(resolve))
    # Parsing one SIP message (a 200 OK to REGISTER, as the registrar sends it).
    from sipua.sip.msg import parse
    data = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.7.1:5062;rport=40000;"
            b"branch=z9hG4bK776asdhds;received=127.0.7.1\r\nFrom: <sip:6903@airties.lab>;"
            b"tag=1928301774\r\nTo: <sip:6903@airties.lab>;tag=a6c85cf\r\nCall-ID: "
            b"a84b4c76e66710@127.0.7.1\r\nCSeq: 3 REGISTER\r\nContact: <sip:6903@127.0.7.1:"
            b"5062;transport=tcp>;expires=300\r\nServer: kamailio (5.6.3 (x86_64/linux))\r\n"
            b"Content-Length: 0\r\n\r\n")
    parse(data)
    print("@@alloc_parse_response %d" % allocated(parse, data))
    gc.collect()
    print("@@heap_free_registered %d" % gc.mem_free())
    # One call: the account calls itself (the registrar routes the INVITE back to this
    # agent, which auto-answers), so both legs of a call live here: ~2x one call's cost.
    if reg.account.auto_answer:
        calls = agent._call_agent()  # loaded with the first call
        box = {}

        def call(measure_kept):
            c = calls.call(reg.account.user)
            sched.run_until(lambda: c.state == "active" or c.state == "ended", 10000)
            box["state"] = c.state
            if measure_kept:
                box["kept"] = kept()
            calls.hangup(c.id)
            sched.run_until(lambda: all(x.state == "ended" for x in calls.calls), 10000)

        # A resolution's DNS code is unloaded on the loop's next turn: let it go first, or
        # the figure below counts its departure against the call.
        sched.run_until(lambda: agent.locator._locator is None, 1000)
        a = kept()
        call(True)  # also loads what calls need (sdp, dialog, server transactions)
        box["kept"] -= a
        time.sleep_ms(1100)  # a fresh nonce for the next INVITE (see cycle above)
        box["alloc"] = allocated(call, False)
        print("@@call_state %s" % box.get("state"))
        print("@@kept_in_call %d" % box["kept"])
        print("@@alloc_call %d" % box["alloc"])
    print("@@kept_end %d" % kept())


def call(cfg_path, far_user):
    """Registered, then in one call to another phone (``far_user``, answering): what a
    phone keeps, in a process that did nothing else. @@kept_base: this runner before any
    firmware import; @@kept_registered: registered and idle; @@kept_call_one_leg: the
    extra while the call is up (its code included: loaded with a phone's first call)."""
    print("@@kept_base %d" % kept())
    started = start_agent(cfg_path)
    if started is None:
        return
    sched, agent, reg = started
    if not sched.run_until(lambda: reg.state == "registered", 20000):
        print("@@call_state unregistered")
        return
    sched.run_until(lambda: agent.locator._locator is None, 1000)  # DNS code unloaded
    base = kept()
    print("@@kept_registered %d" % base)
    c = agent._call_agent().call(far_user)
    sched.run_until(lambda: c.state == "active" or c.state == "ended", 10000)
    print("@@call_state %s" % c.state)
    if c.state == "active":
        sched.run_until(lambda: False, 200)  # the ACK sent, the ringing-time objects gone
        print("@@kept_call_one_leg %d" % (kept() - base))
        agent.calls.hangup(c.id)
        sched.run_until(lambda: c.state == "ended", 5000)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "imports"
    if what == "imports":
        imports()
    elif what == "call":
        call(sys.argv[2], sys.argv[3])
    else:
        ops(sys.argv[2])
