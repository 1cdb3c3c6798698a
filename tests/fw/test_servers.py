"""Server choice and failover policies: hold, order, back-off, refresh, failback modes."""

from fwtest import new_sched, raises
from sipua.sip import servers
from sipua.sip.regextra import due, failwait_ms, why
from sipua.sip.register import refresh_delay_ms
from sipua.sip.servers import Failback, ServerSet


class T:
    def __init__(self, transport, host, ip, port=5060):
        self.transport, self.host, self.ip, self.port = transport, host, ip, port


UC2_TCP = T("tcp", "uc2.airties.lab", "127.0.0.27")
UC1_TCP = T("tcp", "uc1.airties.lab", "127.0.0.26")
UC2_UDP = T("udp", "uc2.airties.lab", "127.0.0.27")
UC1_UDP = T("udp", "uc1.airties.lab", "127.0.0.26")
SEED = [UC2_TCP, UC1_TCP, UC2_UDP, UC1_UDP]


def keys(ts):
    return [servers.describe(t) for t in ts]


def test_order_follows_locator_until_a_server_fails():
    s, _ = new_sched()
    ss = ServerSet(s)
    ss.update(SEED, ttl_s=60)
    assert ss.ordered() == SEED
    assert ss.is_preferred(UC2_TCP) and not ss.is_preferred(UC1_TCP)
    tried = [servers.target_key(UC2_TCP)]
    assert servers.untried(ss.ordered(), tried) is UC1_TCP
    tried += [servers.target_key(t) for t in (UC1_TCP, UC2_UDP, UC1_UDP)]
    assert servers.untried(ss.ordered(), tried) is None
    ss.hold(UC1_TCP, "timeout")  # a held server is tried last, not skipped
    assert servers.untried(ss.ordered(), tried[:1]) is UC2_UDP
    assert servers.untried(ss.ordered(), tried[:1] + tried[2:]) is UC1_TCP


def test_held_server_goes_last_then_returns_after_hold():
    s, _ = new_sched()
    ss = ServerSet(s)
    ss.update(SEED)
    ss.hold(UC2_TCP, "timeout", hold_ms=30000)
    assert ss.held(UC2_TCP) == "timeout"
    assert keys(ss.ordered()) == keys([UC1_TCP, UC2_UDP, UC1_UDP, UC2_TCP])
    s.run(until_ms=29999)
    assert ss.ordered()[0] is UC1_TCP
    s.run(until_ms=30000)
    assert ss.held(UC2_TCP) is None
    assert ss.ordered() == SEED


def test_hold_is_per_transport_and_release_clears_it():
    s, _ = new_sched()
    ss = ServerSet(s)
    ss.update(SEED)
    ss.hold(UC2_TCP, "refused")
    assert ss.held(UC2_UDP) is None  # same box, other transport: separate health
    ss.release(UC2_TCP)
    assert ss.ordered()[0] is UC2_TCP


def test_new_dns_answer_keeps_health_of_listed_servers_only():
    s, _ = new_sched()
    ss = ServerSet(s)
    ss.update(SEED)
    ss.hold(UC2_TCP, "timeout")
    ss.hold(UC1_UDP, "timeout")
    ss.update([UC2_TCP, UC1_TCP])
    assert ss.held(UC2_TCP) == "timeout"
    ss.update([UC1_UDP])
    assert ss.held(UC1_UDP) is None


def test_dns_staleness_follows_ttl():
    s, _ = new_sched()
    ss = ServerSet(s)
    ss.update(SEED, ttl_s=60)
    s.run(until_ms=59999)
    assert not ss.dns_stale()
    s.run(until_ms=60000)
    assert ss.dns_stale()


def test_failwait_follows_rfc5626():
    lo = lambda: 0.0  # noqa: E731
    hi = lambda: 0.9999999  # noqa: E731
    assert failwait_ms(0, rand=hi) == 29999
    assert failwait_ms(1, rand=lo) == 30000  # 50 % of 60 s
    assert failwait_ms(2, all_failed=False, rand=lo) == 180000
    assert failwait_ms(50, rand=lo) == 900000  # capped at 1800 s, halved
    for n in range(8):
        w = failwait_ms(n)
        assert w <= 1800000


def test_refresh_delay_is_80_to_90_percent_and_bounded():
    assert refresh_delay_ms(300, rand=lambda: 0.0) == 240000
    assert refresh_delay_ms(300, rand=lambda: 0.999999) == 269999
    assert refresh_delay_ms(3, rand=lambda: 0.5) == 1000
    assert refresh_delay_ms(10, rand=lambda: 0.99) == 8000


def test_failback_modes():
    nr = Failback("new-requests")
    assert due(nr, 5, 0, False, False)
    ttl = Failback("dns-ttl")
    assert not due(ttl, 10**6, 0, False, True) and due(ttl, 0, 0, True, False)
    reg = Failback("registration")
    assert due(reg, 1, 0, False, True) and not due(reg, 10**6, 0, True, False)
    dur = Failback("duration", timeout_s=120)
    assert not due(dur, 119999, 0, True, True) and due(dur, 120000, 0, False, False)
    assert why(dur) == "duration 120s" and why(ttl) == "dns-ttl"
    raises(ValueError, Failback, "sometimes")


def test_describe_for_logs():
    assert servers.describe(UC2_TCP) == "tcp:uc2.airties.lab/127.0.0.27:5060"
    assert servers.describe(T("udp", "127.0.0.9", "127.0.0.9", 5070)) == "udp:127.0.0.9:5070"


def test_a_refusing_server_is_held_briefly_a_silent_one_for_a_minute():
    assert servers.hold_for("transport_error") == servers.HOLD_REFUSED_MS < 10000
    assert servers.hold_for("timeout") == servers.hold_for("503") == servers.HOLD_MS == 60000
    s, _ = new_sched()
    ss = ServerSet(s)
    ss.update(SEED)
    ss.hold(UC2_TCP, "transport_error")
    ss.hold(UC1_TCP, "timeout")
    s.run(until_ms=servers.HOLD_REFUSED_MS)
    assert ss.held(UC2_TCP) is None and ss.held(UC1_TCP) == "timeout"
