"""The link watch (agent._watch every second, netwatch.py when something changed): a link
that goes down and comes back, and a new local address. The real agent and a real loopback
registrar (127.0.5.64), the link faked through ``hal.link``, virtual time."""

from dnsfake import FakeDns
from fwtest import ListLog, new_sched
from sipua import hal
from sipua.agent import Agent
from sipua.config import validate
from sipua.dns.wire import SRV, A
from sipua.log import Logger
from test_reg import Registrar

PHONE = "127.0.5.61"
NEW = "127.0.5.62"
UC = "127.0.5.64"
DNS = "127.0.5.63"


class Rig:
    def __init__(self):
        self.s, _ = new_sched(real_poll=True, real_wait_ms=3)
        self.uc = Registrar(self.s, UC, "udp")
        self.dns = FakeDns(self.s, {
            "_sip._udp.lw.test": [(SRV, 3600, (1, 0, self.uc.port, "uc.lw.test"))],
            "uc.lw.test": [(A, 3600, UC)]}, host=DNS)
        cfg = validate({
            "accounts": [{"user": "6903", "password": "6903", "server": "lw.test",
                          "transport": "udp", "expires": 300}],
            "dns": {"servers": [self.dns.server]},
            "sip": {"local_ip": PHONE, "local_port": 20000 + self.uc.port % 20000,
                    "keepalive_s": 0}})
        self.log = ListLog()
        self.log.logger = Logger(write=self.log.lines.append, clock=self.s.now, level=10)
        self.addr = PHONE  # what the fake link says: None while it is down
        self.tries = []
        self._hal = hal.link, hal.reconnect
        hal.link = lambda ip, follow=False: self.addr
        hal.reconnect = lambda: self.tries.append(self.s.now())
        self.agent = Agent(self.s, cfg, self.log.logger)
        self.agent.start()
        self.reg = self.agent.registrations[0]

    def until(self, cond, ms):
        self.s.run_until(cond, ms)
        return cond()

    def run_for(self, ms):
        end = self.s.now() + ms
        self.s.run_until(lambda: self.s.now() >= end, ms + 1000)

    def registered(self):
        return self.reg.state == "registered"

    def registers(self, since):
        return [(t, m) for t, m in self.uc.peer.got if m.method == "REGISTER" and t >= since]

    def events(self, name):
        return [e for e in self.log.events(name) if e["area"] == "net"]

    def close(self):
        hal.link, hal.reconnect = self._hal
        self.agent.stop(False)
        self.dns.close()
        self.uc.stop()


def test_link_down_20_s_then_up_registers_again_within_2_s():
    rig = Rig()
    try:
        assert rig.until(rig.registered, 10000)
        st = rig.agent.status()
        assert (st["link"], st["link_lost"], st["outage_ms"]) == ("up", 0, 0)
        rig.run_for(3000)
        down_at = rig.s.now()
        rig.addr = None
        assert rig.until(lambda: rig.events("link_down"), 2100)
        assert rig.s.now() - down_at <= 2000
        assert rig.agent.status()["link"] == "down"
        rig.run_for(20000)
        # reconnects were asked for, spaced out by a growing back-off, never in a tight loop
        gaps = [rig.tries[i + 1] - rig.tries[i] for i in range(len(rig.tries) - 1)]
        assert 3 <= len(rig.tries) <= 6, rig.tries
        assert all(g >= 1000 for g in gaps) and gaps[-1] > gaps[0], gaps
        up_at = rig.s.now()
        rig.addr = PHONE
        assert rig.until(lambda: rig.registers(up_at) and rig.registered()
                         and rig.reg._txn is None, 3000)
        first = rig.registers(up_at)[0][0]
        assert first - up_at <= 2000, first - up_at
        st = rig.agent.status()
        assert st["link"] == "up" and st["link_lost"] == 1
        assert 20000 <= st["outage_ms"] <= 23000, st["outage_ms"]
        up = rig.events("link_up")
        assert len(up) == 1 and up[0]["ip"] == PHONE
        assert not rig.events("address_changed")
        assert PHONE in rig.registers(up_at)[0][1].first(7).decode()
    finally:
        rig.close()


def test_a_refresh_that_failed_during_the_outage_does_not_delay_the_return():
    """The refresh falls in the outage and fails (the registrar unreachable: ICMP): the
    registration fails over, holds the server and backs off; with the link back it
    registers at once, not after the back-off."""
    rig = Rig()
    try:
        assert rig.until(rig.registered, 10000)
        rig.run_for(200000)  # the refresh comes at 80-90 % of 300 s
        rig.addr = None
        rig.uc.stop()
        rig.run_for(90000)
        assert rig.reg.failures and rig.reg.servers._held
        up_at = rig.s.now()
        rig.uc.start()
        rig.addr = PHONE
        assert rig.until(lambda: rig.registers(up_at) and rig.registered()
                         and rig.reg._txn is None, 3000)
        assert rig.registers(up_at)[0][0] - up_at <= 2000
        assert rig.reg.failures == 0
    finally:
        rig.close()


def test_new_address_registers_the_new_contact_within_2_s():
    rig = Rig()
    try:
        assert rig.until(rig.registered, 10000)
        rig.run_for(2000)
        at = rig.s.now()
        rig.addr = NEW
        assert rig.until(lambda: any(NEW in m.first(7).decode() for _, m in rig.registers(at))
                         and rig.registered() and rig.reg._txn is None, 3000)
        t = next(t for t, m in rig.registers(at) if NEW in m.first(7).decode())
        assert t - at <= 2000, t - at
        assert rig.agent.stack.local_ip == NEW
        ch = rig.events("address_changed")
        assert len(ch) == 1 and (ch[0]["old"], ch[0]["new"]) == (PHONE, NEW)
        # the same instance id on both Contacts: a registrar replaces the binding
        new = [c for c in rig.uc.bindings if NEW in c]
        assert new and PHONE not in new[0]
        st = rig.agent.status()
        assert st["link"] == "up" and st["link_lost"] == 0
        # it keeps working from there: no second change, the refreshes leave from NEW
        rig.run_for(5000)
        assert len(rig.events("address_changed")) == 1
    finally:
        rig.close()


def test_unix_probe_says_whether_the_address_is_still_there():
    from sipua.hal import unix

    assert unix.link("127.0.0.1") == "127.0.0.1"
    assert unix.link("0.0.0.0") == "0.0.0.0"
    assert unix.link("192.0.2.1") is None  # TEST-NET-1: no host of ours has it


def test_unix_follows_the_source_address_the_os_picks():
    """Without ``sip.local_ip`` the address is the kernel's source toward the DNS server,
    read back from /proc/net/udp (the loopback's route names 127.0.0.1 as its source)."""
    from sipua import log as logmod
    from sipua.hal import srcaddr, unix

    assert srcaddr.source("127.0.0.53", None) == "127.0.0.1"
    assert srcaddr.source("127.0.0.1", "kept") == "kept"  # toward an address of its own
    log = logmod.Logger(write=lambda line: None)
    assert unix.network_up({"dns": {"servers": ["127.0.0.53:5353"]}}, log) == "127.0.0.1"
    assert unix.link("127.0.9.9", True) == "127.0.0.1"  # followed: the address moved
    assert unix.link("127.0.9.9") == "127.0.9.9"  # pinned: still bindable, kept
    assert unix.network_up({"dns": {"servers": ["[::1]:53"]}}, log) == "127.0.0.1"
    assert unix.link("127.0.9.9", True) == "127.0.9.9"  # an IPv6 server: nothing to follow
    assert unix.network_up({"sip": {"local_ip": "127.0.9.9"}}, log) == "127.0.9.9"


class _Agent:
    """What netwatch.step uses of an agent, around test_call's phone with a call up."""

    def __init__(self, phone):
        self.sched = phone.s
        self.stack = phone.stack
        self.calls = phone.calls
        self.log = phone.log
        self.registrations = []
        self.locator = _Agent  # anything with a local_ip
        self.net = [phone.stack.local_ip, 1, 0, 0, 0, 0, 0, None, False]


def test_a_new_address_ends_the_call_with_a_bye_from_it():
    from sipua.netwatch import step
    from sipua.sip.call import ACTIVE, ENDED
    from test_call import Phone

    p = Phone()
    try:
        c = p.calls.call("6904")
        assert p.run_until(lambda: c.state == ACTIVE, 2000)
        a = _Agent(p)
        step(a, "127.0.4.2")
        assert c.state == ENDED
        assert p.run_until(lambda: p.events("ended"), 2000)
        assert p.run_until(lambda: p.uc2.methods()[-1:] == ["BYE"], 500), p.uc2.methods()
        bye = p.uc2.peer.got[-1][1]
        assert "127.0.4.2" in bye.header("Via"), bye.header("Via")
        assert p.stack.local_ip == "127.0.4.2" and _Agent.local_ip == "127.0.4.2"
        assert p.events("address_changed") and p.events("address_changed", "net")
    finally:
        p.close()
