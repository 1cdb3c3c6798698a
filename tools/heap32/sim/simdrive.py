"""What the harness runs inside the WebAssembly interpreter, one call per step.

``setup()`` lays the simulated network out (``simnet.json``, written by the host) and
fills the gaps of that port the way a board has them: ``os.urandom`` and an ``hashlib``
with ``md5`` (the firmware's own ``sip/md5.py``, loaded here as ``simmd5``: on ESP32 and
Pico W ``hashlib.md5`` is C, so its cost is the simulation's, not the phone's).
Then the phases: ``boot`` (app.boot's path, the agent not started), ``register``,
``call``, ``hangup``, ``refresh``. Each prints ``@@name value`` lines for the host; each
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


def boot(config_path="/config.json"):
    from sipua import app
    from sipua.log import log
    from sipua.sched import Scheduler

    sched = Scheduler(clock=S["clock"], poller=S["poller"], log=log)
    S["sched"], S["start"], S["console"] = app.boot(config_path, sched, start=False)
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
    modules()
    st = S["agent"].status()
    acc = st["accounts"][0]
    srv = acc["server"] or {}
    print("@@state %s" % acc["state"])
    print("@@server %s:%s:%s" % (srv.get("transport"), srv.get("host"), srv.get("ip")))
    print("@@calls %s" % ",".join(c["state"] for c in st["calls"]))
    rtp = S["rtp"]
    media = [c["media"] for c in st["calls"] if c.get("media")]
    print("@@rtp %d %d %d %d" % (rtp.got, rtp.sent, rtp.rtcp,
                                 media[0].get("received", 0) if media else 0))
    print("@@virtual_ms %d" % S["sched"].now())
    print("@@dns_queries %d" % S["dns"].queries)
    for r in S["servers"]:
        print("@@seen %s %s %d" % (r.ip, ",".join("%s=%d" % kv for kv in sorted(r.seen.items())),
                                    r.ok))
    return acc


def register(timeout_ms=120000):
    S["agent"] = S["start"]()
    if S["agent"] is None:
        raise AssertionError("the agent did not start (safe idle mode)")
    reg = S["agent"].registrations[0]
    run_until(lambda: reg.state == "registered", timeout_ms, "registered")
    report()


def _command(name, *args):
    """A console command, as a person types it (the agent loads the call code itself)."""
    return S["agent"].console_commands()[name][0](list(args))


def _call_states():
    return [c["state"] for c in S["agent"].status()["calls"]]


def call(user, timeout_ms=30000):
    S["call"] = _command("call", user)["call"]
    run_until(lambda: _call_states() != ["calling"] and _call_states() != ["ringing"],
              timeout_ms, "answered")
    if _call_states() != ["active"]:
        raise AssertionError("the call did not become active: %s" % S["agent"].status())
    report()


def hangup(linger_ms=40000):
    _command("hangup", str(S["call"]))
    sched = S["sched"]
    run_until(lambda: not _call_states(), 30000, "hung up")
    # the transactions' timers run out (Timer K, J: 32 s at most) before the measure
    end = sched.now() + linger_ms
    run_until(lambda: sched.now() >= end, linger_ms + 2000, "lingered")
    report()


def idle(ms):
    """Let ``ms`` of virtual time pass with nothing happening (code loaded for a resolution
    is unloaded 2 s after it: agent.DNS_IDLE_MS)."""
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
