"""Keep-alive on the registration's flow (sip/keepalive.py): a server that dies while the
phone is idle is noticed and left before any call needs it. The real agent (its keep-alive
timer), real loopback sockets (127.0.5.0/24: a fake DNS server, two fake registrars, uc2
preferred), virtual time."""

from dnsfake import FakeDns
from fwtest import ListLog, new_sched
from sipua.agent import Agent
from sipua.config import validate
from sipua.dns.wire import SRV, A
from sipua.log import Logger
from test_reg import Registrar

PHONE = "127.0.5.1"
UC2 = "127.0.5.27"  # SRV priority 1: preferred
UC1 = "127.0.5.26"
DNS = "127.0.5.53"
KA_S = 20
# a keep-alive not answered by then is missed: TCP 2·T1; UDP the OPTIONS' retry budget
WAIT_MS = {"tcp": 1000, "udp": 3500}
# rounds start that much early, so that a dead server is noticed within the interval
PERIOD_MS = {k: KA_S * 1000 - w for k, w in WAIT_MS.items()}


class Rig:
    def __init__(self, kind="udp", keepalive_s=KA_S, expires=300):
        self.s, _ = new_sched(real_poll=True, real_wait_ms=3)
        self.uc2 = Registrar(self.s, UC2, kind)
        self.uc1 = Registrar(self.s, UC1, kind)
        srv = "_sip._%s.ka.test" % kind
        self.dns = FakeDns(self.s, {
            srv: [(SRV, 3600, (1, 0, self.uc2.port, "uc2.ka.test")),
                  (SRV, 3600, (2, 0, self.uc1.port, "uc1.ka.test"))],
            "uc2.ka.test": [(A, 3600, UC2)], "uc1.ka.test": [(A, 3600, UC1)]}, host=DNS)
        sip = {"local_ip": PHONE, "local_port": 20000 + self.uc2.port % 20000}
        if keepalive_s is not None:
            sip["keepalive_s"] = keepalive_s
        cfg = validate({
            "accounts": [{"user": "6903", "password": "6903", "server": "ka.test",
                          "transport": kind, "expires": expires}],
            "dns": {"servers": [self.dns.server]}, "sip": sip})
        self.log = ListLog()
        self.log.logger = Logger(write=self.log.lines.append, clock=self.s.now, level=10)
        self.agent = Agent(self.s, cfg, self.log.logger)
        self.agent.start()
        self.reg = self.agent.registrations[0]

    def until(self, cond, ms):
        self.s.run_until(cond, ms)
        return cond()

    def run_for(self, ms):
        end = self.s.now() + ms
        self.s.run_until(lambda: self.s.now() >= end, ms + 1000)

    def on(self, ip):
        r = self.reg
        return r.state == "registered" and r.server is not None and r.server.ip == ip

    def options(self, registrar, since=0):
        return [t for t, m in registrar.peer.got if m.method == "OPTIONS" and t >= since]

    def close(self):
        self.agent.stop(False)
        self.dns.close()
        self.uc1.stop()
        self.uc2.stop()


def test_default_interval_leaves_a_dead_primary_within_40_s():
    cfg = validate({"accounts": [{"user": "1", "server": "x"}]})
    ka = cfg["sip"]["keepalive_s"]
    assert ka == 25
    # silent just after a keep-alive was answered: noticed within the interval, a REGISTER
    assert ka * 1000 + 1000 <= 40000


def test_udp_healthy_server_answers_keep_the_phone_where_it_is():
    rig = Rig("udp")
    try:
        assert rig.until(lambda: rig.on(UC2), 5000)
        t0 = rig.s.now()
        rig.run_for(5 * PERIOD_MS["udp"] + 500)  # far from the refresh (240–270 s)
        probes = rig.options(rig.uc2, t0)
        assert len(probes) == 5, probes  # one OPTIONS per period, each answered at once
        gaps = [probes[i + 1] - probes[i] for i in range(len(probes) - 1)]
        assert all(abs(g - PERIOD_MS["udp"]) <= 10 for g in gaps), gaps
        assert rig.on(UC2)
        assert rig.uc1.log == []
        assert rig.log.events("failover") == []
        assert len(rig.uc2.registers()) == 2  # 401, then 200: nothing since
    finally:
        rig.close()


def test_tcp_healthy_server_pongs_keep_the_phone_where_it_is():
    rig = Rig("tcp")
    try:
        assert rig.until(lambda: rig.on(UC2), 5000)
        t0 = rig.s.now()
        flow = rig.reg._flow
        rig.run_for(5 * PERIOD_MS["tcp"] + 500)
        pings = [t for t in rig.uc2.peer.pings if t >= t0]
        assert len(pings) == 5, pings  # CRLFCRLF on the registration's connection
        gaps = [pings[i + 1] - pings[i] for i in range(len(pings) - 1)]
        assert all(abs(g - PERIOD_MS["tcp"]) <= 10 for g in gaps), gaps
        assert rig.options(rig.uc2) == []  # no OPTIONS on a stream: the pong is the answer
        assert rig.on(UC2) and rig.reg._flow is flow and flow.heard
        assert rig.uc1.log == [] and rig.log.events("failover") == []
        assert len(rig.uc2.peer.conns) == 1
    finally:
        rig.close()


def _silent_after_refresh(kind):
    rig = Rig(kind)
    try:
        assert rig.until(lambda: rig.on(UC2), 5000)
        n = len(rig.uc2.registers())
        rig.reg.register_now()  # a refresh, answered
        assert rig.until(lambda: len(rig.uc2.registers()) > n and rig.on(UC2)
                         and rig.reg._txn is None, 5000)
        rig.uc2.mode = "silent"  # dies right after the refresh: no REGISTER would notice
        died = rig.s.now()
        assert rig.until(lambda: rig.on(UC1), KA_S * 1000 + WAIT_MS[kind] + 2000)
        took = rig.s.now() - died
        assert took <= KA_S * 1000 + 100, took  # within the interval, then a REGISTER
        fo, = rig.log.events("failover")
        assert fo["reason"] == "keepalive" and UC2 in fo["server"] and UC1 in fo["next"]
        # The binding left on the dead server is removed (it does not answer: harmless).
        unreg, = rig.log.events("unregister")
        assert UC2 in unreg["server"]
        # Keep-alives now go to the backup, which answers: the phone stays there...
        rig.run_for(3 * KA_S * 1000)
        assert rig.on(UC1) and len(rig.log.events("failover")) == 1
        # ...until the failback it would make after any failover (new-requests: the
        # refresh goes to the preferred server, alive again).
        rig.uc2.mode = "ok"
        assert rig.until(lambda: rig.on(UC2), 300000)
        assert rig.log.events("failback_done")
        return rig, took
    finally:
        rig.close()


def test_udp_silent_primary_after_a_refresh_is_left_within_interval_plus_wait():
    _, took = _silent_after_refresh("udp")
    # noticed by the probe (the first round starts early by the UDP wait), not by chance
    assert took >= PERIOD_MS["udp"] - 1000


def test_tcp_silent_primary_after_a_refresh_is_left_within_interval_plus_wait():
    rig, took = _silent_after_refresh("tcp")
    assert took >= PERIOD_MS["udp"] - 1000
    assert rig.uc2.peer.pings  # the ping went unanswered on an open connection


def test_disabled_sends_no_keepalive_traffic():
    rig = Rig("udp", keepalive_s=0)
    try:
        assert rig.until(lambda: rig.on(UC2), 5000)
        n = len(rig.uc2.peer.got)
        rig.run_for(200000)  # before the refresh (240–270 s)
        assert rig.uc2.peer.got[n:] == []
        assert rig.uc2.peer.pings == [] and rig.uc1.peer.got == []
        assert rig.agent._keepalive is None
    finally:
        rig.close()


def test_disabled_on_tcp_sends_no_pings():
    rig = Rig("tcp", keepalive_s=0)
    try:
        assert rig.until(lambda: rig.on(UC2), 5000)
        n = len(rig.uc2.peer.got)
        rig.run_for(200000)
        assert rig.uc2.peer.pings == []
        assert rig.uc2.peer.got[n:] == []
        assert rig.on(UC2)  # the pinned connection stays open without keep-alives
    finally:
        rig.close()


def test_no_keepalive_while_a_register_is_on_its_way():
    """A REGISTER in flight already checks the server: no probe beside it."""
    rig = Rig("udp", keepalive_s=5)
    try:
        assert rig.until(lambda: rig.on(UC2), 5000)
        rig.uc2.mode = "silent"
        rig.uc1.mode = "silent"
        rig.reg.register_now()  # 3.5 s retry budget on uc2, then uc1
        t0 = rig.s.now()
        rig.run_for(6000)
        assert rig.agent._keepalive is not None  # ticking: it fired at 5 s
        assert rig.options(rig.uc2, t0) == [] and rig.options(rig.uc1, t0) == []
    finally:
        rig.close()


def test_udp_one_lost_probe_is_not_a_dead_server():
    """The OPTIONS is retransmitted like any request: a lost datagram costs one resend."""
    rig = Rig("udp")
    try:
        assert rig.until(lambda: rig.on(UC2), 5000)
        lost = []

        def drop():  # every keep-alive's first OPTIONS is lost on the way
            probes = len(rig.options(rig.uc2))
            if probes not in lost:
                lost.append(probes)
                return True
            return False

        n = len(rig.uc2.peer.got)
        rig.uc2.peer.drop = drop
        rig.run_for(3 * KA_S * 1000 + 4000)
        sent = [m.method for t, m in rig.uc2.peer.got[n:]]
        assert sent == ["OPTIONS"] * 3 and lost == [0, 1, 2], (sent, lost)  # resent, answered
        assert rig.on(UC2) and rig.log.events("failover") == []
    finally:
        rig.close()


def test_tcp_ping_on_a_connection_already_gone_registers_again_at_once():
    # The round finds no connection to ping on (the registration's flow is gone): no ping
    # is sent and no failover either; a REGISTER goes at once, on a new connection.
    from sipua.sip.keepalive import ping

    rig = Rig("tcp")
    try:
        assert rig.until(lambda: rig.on(UC2), 5000)
        n = len(rig.uc2.registers())
        pings = len(rig.uc2.peer.pings)
        rig.reg._flow = None
        assert ping(rig.reg) == 0
        assert rig.reg._txn is not None  # the REGISTER is on its way
        assert rig.until(lambda: len(rig.uc2.registers()) > n and rig.on(UC2)
                         and rig.reg._txn is None, 5000)
        assert len(rig.uc2.peer.pings) == pings and rig.log.events("failover") == []
    finally:
        rig.close()
