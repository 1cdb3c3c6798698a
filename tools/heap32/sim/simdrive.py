"""What the harness runs inside the WebAssembly interpreter, one call per step.

``setup()`` lays the simulated network out (``simnet.json``, written by the host) and
fills the gaps of that port the way a board has them: ``os.urandom`` and an ``hashlib``
with ``md5`` (the firmware's own ``sip/md5.py``, loaded here as ``simmd5``: on ESP32 and
Pico W ``hashlib.md5`` is C, so its cost is the simulation's, not the phone's).
Then the phases: ``boot`` (app.boot's path, the agent not started), ``register``,
``call``, ``hangup``, ``refresh``, ``options_ping``, ``call_in`` and ``far_hangup`` (a call
from the far end). Each prints ``@@name value`` lines for the host; each
checks what it claims and raises if it did not happen.
"""

import json
import socket
import sys

import simpeers

S = {}  # the run's objects: net peers, clock, scheduler, agent


class Clock:
    """Virtual milliseconds (ticks_ms stand-in): moved by ``Poller.poll``'s waits."""

    def __init__(self):
        self.ticks = 0

    def __call__(self):
        return self.ticks


class Poller(socket.Poller):
    """The simulated sockets' poller on virtual time: nothing ready → jump to the next timer."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def poll(self, timeout=-1):
        out = super().poll(0)
        if not out and timeout > 0:
            import time

            self.clock.ticks = time.ticks_add(self.clock.ticks, timeout)
        return out


class _Hashlib:
    def __init__(self, md5):
        import hashlib

        self.sha256 = hashlib.sha256
        self.md5 = md5


def setup(path="/simnet.json"):
    import os
    import random

    import simmd5
    import simzone

    random.seed(1)
    if not hasattr(os, "urandom"):
        os.urandom = lambda n: bytes(random.getrandbits(8) for _ in range(n))
    sys.modules["hashlib"] = _Hashlib(simmd5.md5)
    with open(path) as f:
        net = json.load(f)
    S["dns"] = simpeers.Dns(net["dns"], simzone.ANSWERS)
    S["servers"] = [simpeers.Registrar(r["ip"], r["realm"], r["password"],
                                       r.get("silent_udp", False), far_ip=net["far"])
                    for r in net["registrars"]]
    S["rtp"] = simpeers.Rtp(net["far"])
    S["clock"] = Clock()
    S["poller"] = Poller(S["clock"])


def boot(config_path="/config.json", claim=False):
    """app.boot's path, the agent not started; ``claim``: the firmware's names interned at
    boot (sipua/names.py), off unless asked: the budgets are for a board that lets them
    come as the code paths first run."""
    from sipua import app
    from sipua.log import log
    from sipua.sched import Scheduler

    sched = Scheduler(clock=S["clock"], poller=S["poller"], log=log)
    S["sched"], S["start"], S["console"] = app.boot(config_path, sched, start=False,
                                                    claim=claim)
    modules()


def modules():
    """The firmware modules loaded now (the host measures what the simulation's qstrs hide
    of their cost: harness.scenario records them)."""
    print("@@modules %s" % " ".join(k for k in sys.modules if k.startswith("sipua")))


def run_until(pred, ms, what):
    if not S["sched"].run_until(pred, ms):
        raise AssertionError("not %s after %d ms of virtual time" % (what, ms))
    settle()


def settle():
    """Let the phone read whatever waits on its sockets (nothing is measured in flight)."""
    sched = S["sched"]
    for _ in range(100):
        if not S["poller"].pending():
            return
        sched.run_once(0)
    raise AssertionError("the phone's sockets never drained")


def report():
    """The phone's facts for the harness, read from its registration and calls: not through
    ``Agent.status``, whose body (cmds.py) would leave its ~30 names in every phase — the
    observer's, not the phone's (a call's own status is the call code's, loaded anyway)."""
    modules()
    agent = S["agent"]
    reg = agent.registrations[0]
    srv = reg.server
    print("@@state %s" % reg.state)
    print("@@server %s:%s:%s" % ((srv.transport, srv.host, srv.ip) if srv else (None,) * 3))
    calls = _calls()
    print("@@calls %s" % ",".join(c["state"] for c in calls))
    rtp = S["rtp"]
    media = [c["media"] for c in calls if c.get("media")]
    print("@@rtp %d %d %d %d" % (rtp.got, rtp.sent, rtp.rtcp,
                                 media[0].get("received", 0) if media else 0))
    print("@@virtual_ms %d" % S["sched"].now())
    print("@@dns_queries %d" % S["dns"].queries)
    for r in S["servers"]:
        print("@@seen %s %s %d" % (r.ip, ",".join("%s=%d" % kv for kv in sorted(r.seen.items())),
                                    r.ok))


def _calls():
    calls = S["agent"].calls
    return calls.status() if calls else []


def resolving(queries, timeout_ms=120000):
    """Start the agent and run until the DNS server got its ``queries``-th question: the
    resolution's last query is out, its code loaded (the phone is not settled: measured as
    is, a peak)."""
    start()
    if not S["sched"].run_until(lambda: S["dns"].queries >= queries, timeout_ms):
        raise AssertionError("fewer than %d DNS queries" % queries)
    modules()


def start():
    """The agent started; then ``app.py`` is let go, as the board's ``main.py`` does once
    booted (it runs the loop itself so that nothing keeps the module)."""
    from sipua.compat import forget

    S["agent"] = S["start"]()
    S["start"] = None
    forget("sipua.app")
    if S["agent"] is None:
        raise AssertionError("the agent did not start (safe idle mode)")


def register(timeout_ms=120000):
    if S.get("agent") is None:  # not started by resolving()
        start()
    reg = S["agent"].registrations[0]
    run_until(lambda: reg.state == "registered", timeout_ms, "registered")
    report()


def _command(name, *args):
    """A console command, as a person types it (the agent loads the call code itself)."""
    from sipua.console import _run  # what the console's handler for it runs

    return _run(name, S["agent"], list(args), S["sched"])


def _call_states():
    return [c["state"] for c in _calls()]


def call(user, timeout_ms=30000):
    S["call"] = _command("call", user)["call"]
    run_until(lambda: _call_states() != ["calling"] and _call_states() != ["ringing"],
              timeout_ms, "answered")
    if _call_states() != ["active"]:
        raise AssertionError("the call did not become active: %s" % _calls())
    report()


def hangup(linger_ms=40000):
    _command("hangup", str(S["call"]))
    sched = S["sched"]
    run_until(lambda: not _call_states(), 30000, "hung up")
    # the transactions' timers run out (Timer K, J: 32 s at most) before the measure
    end = sched.now() + linger_ms
    run_until(lambda: sched.now() >= end, linger_ms + 2000, "lingered")
    report()


def call_in(phone_ip, phone_port, user, far_user, ring_ms=3000, timeout_ms=30000):
    """The far end ``far_user`` calls ``user``: its INVITE comes down the phone's registered
    connection (``simpeers.Registrar.call_phone``); the phone rings for ``ring_ms`` and is
    answered as a person at a desk answers it, with the console's ``answer`` (the account's
    ``auto_answer`` is off, its default); run until the call is active and the far end has
    ACKed the 200. The phone's address and users come from the host (see options_ping)."""
    r = [x for x in S["servers"] if x.ok][-1]
    r.call_phone(phone_ip, phone_port, user, far_user)
    run_until(lambda: _call_states() == ["ringing"], timeout_ms, "ringing")
    sched = S["sched"]
    end = sched.now() + ring_ms
    run_until(lambda: sched.now() >= end, ring_ms + 2000, "rung")
    if _call_states() != ["ringing"]:
        raise AssertionError("the call stopped ringing: %s" % _calls())
    S["call"] = _command("answer")["call"]
    run_until(lambda: _call_states() != ["ringing"] and r.call_in[1] is not None, timeout_ms,
              "answered and ACKed")
    if _call_states() != ["active"]:
        raise AssertionError("the call did not become active: %s" % _calls())
    report()


def far_hangup(linger_ms=70000):
    """The far end hangs up (its BYE down the call's connection); run until the phone has
    answered it and dropped the call, then ``linger_ms`` before the measure: the server side
    the BYE loaded (strans.py, uas.py) goes with the BYE's transaction (at once on a
    connection), the call code agent.CALLS_IDLE_MS after the call."""
    r = [x for x in S["servers"] if x.call_in is not None][-1]
    r.hangup_phone()
    run_until(lambda: r.call_in is None and not _call_states(), 30000, "hung up by the far end")
    sched = S["sched"]
    end = sched.now() + linger_ms
    run_until(lambda: sched.now() >= end, linger_ms + 2000, "lingered")
    report()


def options_ping(phone_ip, phone_port, linger_ms=40000):
    """The registrar pings the phone (OPTIONS down the registration's connection); run until
    it answered 200, then ``linger_ms`` with nothing happening (the server side the request
    loaded is unloaded when idle: sip/strans.py SERVER_IDLE_MS). The phone's address comes
    from the host: names the firmware also uses, interned here first, would hide its qstrs."""
    r = [x for x in S["servers"] if x.ok][-1]
    before = r.seen.get("answered_200", 0)
    r.ping_phone(phone_ip, phone_port, before + 1)
    run_until(lambda: r.seen.get("answered_200", 0) > before, 5000, "answered the ping")
    sched = S["sched"]
    end = sched.now() + linger_ms
    run_until(lambda: sched.now() >= end, linger_ms + 2000, "lingered")
    report()


def life():
    """Every code path has run once: each firmware module not loaded is imported and
    forgotten (the firmware's own names.claim, which start-up runs at boot where the heap
    affords it), so every name a phone interns in its life is in; then settled."""
    from sipua import names
    from sipua.compat import forget
    from sipua.log import log

    names.claim(log)
    forget("sipua.names")
    idle(5000)


def idle(ms):
    """Let ``ms`` of virtual time pass with nothing happening (code loaded for a resolution
    is unloaded on the next turn after it: agent.DNS_IDLE_MS)."""
    sched = S["sched"]
    end = sched.now() + ms
    run_until(lambda: sched.now() >= end, ms + 2000, "idle")
    report()


def refresh(n, timeout_ms=0):
    """Run until the registrar has granted ``n`` more refreshes (virtual time)."""
    r = [x for x in S["servers"] if x.ok][-1]
    reg = S["agent"].registrations[0]
    target = r.ok + n
    run_until(lambda: r.ok >= target and reg.state == "registered",
              timeout_ms or n * 3600000, "refreshed %d times" % n)
    report()
