"""RFC 3263 §4.1/§4.2 rule by rule, and RFC 2782 weights, against a fake DNS server."""

from dnsfake import FakeDns
from fwtest import new_sched
from sipua.dns.host import locate_blocking
from sipua.dns.locator import Locator, parse_target, srv_order
from sipua.dns.resolver import Resolver
from sipua.dns.static import Static
from sipua.dns.wire import AAAA, NAPTR, SRV, A

D = "airties.test"


def naptr(order, pref, svc, repl, flags=b"s", regexp=b""):
    return (NAPTR, 3600, (order, pref, flags, svc, regexp, repl))


def srv(pr, w, port, target, ttl=3600):
    return (SRV, ttl, (pr, w, port, target))


SEED = {  # the seed's zone: NAPTR -> two SRV sets -> two A records
    D: [naptr(2, 0, b"SIP+D2U", "_sip._udp." + D), naptr(2, 0, b"SIP+D2T", "_sip._tcp." + D)],
    "_sip._tcp." + D: [srv(1, 0, 5060, "uc2." + D), srv(2, 0, 5060, "uc1." + D)],
    "_sip._udp." + D: [srv(2, 0, 5060, "uc1." + D), srv(1, 0, 5060, "uc2." + D)],
    "uc1." + D: [(A, 60, "127.0.1.26")],
    "uc2." + D: [(A, 120, "127.0.1.27")],
}


class Env:
    def __init__(self, zone, supported=("udp", "tcp", "tls"), ipv6=False, **kw):
        self.s, _ = new_sched(real_poll=True)
        self.f = FakeDns(self.s, zone, **kw)
        self.r = Resolver(self.s, [self.f.server])
        self.loc = Locator(self.s, self.r, supported, ipv6=ipv6, rng=Lcg(7))

    def go(self, target, **kw):
        return locate_blocking(self.s, self.loc, target, 60000, **kw)

    def rows(self, target, **kw):
        t, err = self.go(target, **kw)
        return [(x.transport, x.host, x.ip, x.port, x.source) for x in t], err

    def asked(self):
        return [(q[0], q[1]) for q in self.f.queries]

    def close(self):
        self.f.close()


class Lcg:
    """A deterministic RNG(n) -> [0, n], so weight statistics cannot flake."""

    def __init__(self, seed):
        self.x = seed

    def __call__(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % (n + 1)


def test_seed_airties_list():
    e = Env(SEED)
    try:
        rows, err = e.rows(D)
        assert err is None
        assert rows == [("tcp", "uc2." + D, "127.0.1.27", 5060, "naptr"),
                        ("tcp", "uc1." + D, "127.0.1.26", 5060, "naptr"),
                        ("udp", "uc2." + D, "127.0.1.27", 5060, "naptr"),
                        ("udp", "uc1." + D, "127.0.1.26", 5060, "naptr")]
        t, _ = e.go("sip:6903@" + D)
        assert t[0].priority == 1 and t[1].priority == 2 and t[0].naptr == "_sip._tcp." + D
        assert t.ttl == 60 and t.expires_ms == e.s.now() + 60000  # the smallest TTL used
        # One NAPTR, two SRV, two A: each A asked once although both SRV sets name it.
        assert sorted(e.asked()[:5]) == sorted([(D, NAPTR), ("_sip._tcp." + D, SRV),
                                                ("_sip._udp." + D, SRV), ("uc2." + D, A),
                                                ("uc1." + D, A)])
        assert len(e.asked()) == 5  # the second run came from the cache
    finally:
        e.close()


def test_numeric_ip_needs_no_dns():
    e = Env(SEED)
    try:
        assert e.rows("sip:127.0.1.9") == ([("udp", "127.0.1.9", "127.0.1.9", 5060, "a")], None)
        assert e.rows("sip:127.0.1.9:5070;transport=tcp")[0] == [
            ("tcp", "127.0.1.9", "127.0.1.9", 5070, "a")]
        assert e.rows("sips:127.0.1.9")[0] == [("tls", "127.0.1.9", "127.0.1.9", 5061, "a")]
        assert e.rows("[::1]:5062")[0] == [("udp", "::1", "::1", 5062, "a")]
        t, _ = e.go("127.0.1.9")
        assert t.ttl is None and e.asked() == []
    finally:
        e.close()


def test_explicit_port_means_address_records_only():
    e = Env(SEED)
    try:
        rows, _err = e.rows("sip:uc1.%s:5080" % D)
        assert rows == [("udp", "uc1." + D, "127.0.1.26", 5080, "a")]
        assert e.asked() == [("uc1." + D, A)]
        rows, _ = e.rows(D, port=5090, transport="tcp")
        assert e.asked()[-1] == (D, A) and rows == [] and _ == "no address for " + D
    finally:
        e.close()


def test_explicit_transport_means_srv_for_it():
    e = Env(SEED)
    try:
        rows, _err = e.rows("sip:%s;transport=tcp" % D)
        assert [x[:2] for x in rows] == [("tcp", "uc2." + D), ("tcp", "uc1." + D)]
        assert e.asked()[0] == ("_sip._tcp." + D, SRV) and (D, NAPTR) not in e.asked()
        e.rows(D, transport="tls")
        assert ("_sips._tcp." + D, SRV) in e.asked()
    finally:
        e.close()


def test_explicit_transport_without_srv_falls_back_to_a_on_default_port():
    zone = {D: [(A, 60, "127.0.1.30")]}
    e = Env(zone)
    try:
        assert e.rows(D, transport="tcp")[0] == [("tcp", D, "127.0.1.30", 5060, "a")]
        assert e.rows(D, transport="tls")[0] == [("tls", D, "127.0.1.30", 5061, "a")]
    finally:
        e.close()


def test_naptr_filtering_and_order():
    zone = dict(SEED)
    zone[D] = [
        naptr(10, 5, b"SIP+D2U", "_sip._udp." + D),
        naptr(10, 1, b"SIP+D2T", "_sip._tcp." + D),  # same order, better preference
        naptr(5, 50, b"SIP+D2S", "_sip._sctp." + D),  # SCTP: not supported
        naptr(1, 0, b"SIP+D2T", "_x._tcp." + D, regexp=b"!^.*$!sip:x@y!"),  # has a regexp
        naptr(1, 0, b"SIP+D2T", "_y._tcp." + D, flags=b"u"),  # not an "s" record
        naptr(1, 0, b"E2U+sip", "_z._tcp." + D),  # not a SIP service
        naptr(20, 0, b"SIPS+D2T", "_sips._tcp." + D),
    ]
    zone["_sips._tcp." + D] = [srv(1, 0, 5061, "uc1." + D)]
    e = Env(zone)
    try:
        rows, _ = e.rows(D)
        assert [(x[0], x[1]) for x in rows] == [("tcp", "uc2." + D), ("tcp", "uc1." + D),
                                               ("udp", "uc2." + D), ("udp", "uc1." + D),
                                               ("tls", "uc1." + D)]
        asked = [q[0] for q in e.asked()]
        for bad in ("_sip._sctp.", "_x._tcp.", "_y._tcp.", "_z._tcp."):
            assert bad + D not in asked
    finally:
        e.close()


def test_naptr_ties_prefer_tls_tcp_udp_whatever_the_server_order():
    for recs in (SEED[D], list(reversed(SEED[D]))):
        zone = dict(SEED)
        zone[D] = recs
        e = Env(zone)
        try:
            assert [x[0] for x in e.rows(D)[0]] == ["tcp", "tcp", "udp", "udp"]
        finally:
            e.close()


def test_unsupported_transports_are_left_out():
    e = Env(SEED, supported=("udp",))
    try:
        rows, _ = e.rows(D)
        assert [x[0] for x in rows] == ["udp", "udp"]
        assert e.rows(D, transport="tcp") == ([], "transport tcp not usable here")
    finally:
        e.close()


def test_sips_only_over_tls():
    zone = dict(SEED)
    zone[D] = SEED[D] + [naptr(3, 0, b"SIPS+D2T", "_sips._tcp." + D)]
    zone["_sips._tcp." + D] = [srv(1, 0, 5061, "uc2." + D)]
    e = Env(zone)
    try:
        rows, _ = e.rows("sips:" + D)
        assert rows == [("tls", "uc2." + D, "127.0.1.27", 5061, "naptr")]
        assert e.rows("sips:%s;transport=udp" % D)[0] == []
        assert e.rows("sips:%s;transport=tcp" % D)[0][0][0] == "tls"
    finally:
        e.close()
    e = Env(SEED, supported=("udp", "tcp"))
    try:
        assert e.rows("sips:" + D) == ([], "sips: needs TLS, not supported here")
        assert e.asked() == []
    finally:
        e.close()


def test_no_naptr_means_srv_for_each_transport_in_parallel():
    zone = {k: v for k, v in SEED.items() if k != D}
    zone["_sips._tcp." + D] = [srv(1, 0, 5061, "uc1." + D)]
    e = Env(zone)
    held = []

    def slow(srv_, q, addr):  # every answer takes 100 ms
        held.append(q.qname)
        e.s.call_later(100, srv_.udp.sendto, srv_.answer(q, "udp"), addr)
        return True

    e.f.hook = slow
    try:
        t0 = e.s.now()
        rows, _ = e.rows(D)
        # NAPTR, then three SRV at once, then two A at once: three round trips, not six.
        assert e.s.now() - t0 < 400
        assert [(x[0], x[1], x[3], x[4]) for x in rows] == [
            ("tls", "uc1." + D, 5061, "srv"), ("tcp", "uc2." + D, 5060, "srv"),
            ("tcp", "uc1." + D, 5060, "srv"), ("udp", "uc2." + D, 5060, "srv"),
            ("udp", "uc1." + D, 5060, "srv")]
        assert held[0] == D and sorted(held[1:4]) == sorted(
            ["_sips._tcp." + D, "_sip._tcp." + D, "_sip._udp." + D])
        rows, _ = e.rows("sips:" + D)  # sips: only _sips._tcp
        assert [x[0] for x in rows] == ["tls"]
    finally:
        e.close()


def test_no_srv_means_a_on_5060_udp_or_5061_tls():
    e = Env({D: [(A, 60, "127.0.1.30"), (A, 60, "127.0.1.31")]})
    try:
        rows, _ = e.rows(D)
        assert rows == [("udp", D, "127.0.1.30", 5060, "a"), ("udp", D, "127.0.1.31", 5060, "a")]
        assert e.rows("sips:" + D)[0][0] == ("tls", D, "127.0.1.30", 5061, "a")
    finally:
        e.close()


def test_naptr_whose_srv_is_empty_falls_back_to_a_with_its_transport():
    e = Env({D: [naptr(1, 0, b"SIP+D2T", "_sip._tcp." + D), (A, 60, "127.0.1.30")]})
    try:
        assert e.rows(D)[0] == [("tcp", D, "127.0.1.30", 5060, "a")]
    finally:
        e.close()


def test_srv_target_dot_means_not_offered_and_no_a_fallback():
    e = Env({"_sip._udp." + D: [srv(0, 0, 0, ".")], "_sip._tcp." + D: [srv(0, 0, 0, ".")],
             D: [(A, 60, "127.0.1.30")]})
    try:
        rows, err = e.rows(D)
        assert rows == [] and "not offered" in err
        assert (D, A) not in e.asked()
    finally:
        e.close()


def test_addresses_from_the_additional_section_save_queries():
    e = Env(SEED)
    e.f.extra[("_sip._udp." + D, SRV)] = [("uc1." + D, A, 30, "127.0.1.26"),
                                          ("uc2." + D, A, 30, "127.0.1.27")]
    try:
        rows, _ = e.rows(D, transport="udp")
        assert [x[2] for x in rows] == ["127.0.1.27", "127.0.1.26"]
        assert e.asked() == [("_sip._udp." + D, SRV)]
        assert e.go(D, transport="udp")[0].ttl == 30
        # Both SRV sets carry the same glue (as dnsmasq sends it): each address once.
        e.f.extra[("_sip._tcp." + D, SRV)] = e.f.extra[("_sip._udp." + D, SRV)]
        e.r.cache.clear()
        rows, _ = e.rows(D)
        assert [(x[0], x[2]) for x in rows] == [("tcp", "127.0.1.27"), ("tcp", "127.0.1.26"),
                                               ("udp", "127.0.1.27"), ("udp", "127.0.1.26")]
        assert (("uc1." + D, A)) not in e.asked()
    finally:
        e.close()


def test_ipv6_asks_aaaa_and_lists_a_first():
    zone = dict(SEED)
    zone["uc1." + D] = [(A, 60, "127.0.1.26"), (AAAA, 60, "fd00::26")]
    e = Env(zone, ipv6=True)
    try:
        rows, _ = e.rows(D, transport="udp")
        assert [x[2] for x in rows] == ["127.0.1.27", "127.0.1.26", "fd00::26"]
    finally:
        e.close()


def test_nothing_resolvable_is_an_error_with_empty_list():
    e = Env({})
    try:
        t, err = e.go("nowhere.test")
        assert list(t) == [] and err
    finally:
        e.close()


def test_static_records_stand_in_when_the_server_is_silent():
    e = Env({})
    e.f.hook = lambda s, q, a: True
    e.r.timeout_ms, e.r.tries = 200, 1
    e.r.static = Static([{"name": D, "type": "NAPTR", "order": 2, "preference": 0,
                          "flags": "s", "service": "SIP+D2T", "replacement": "_sip._tcp." + D},
                         {"name": "_sip._tcp." + D, "type": "SRV", "priority": 1, "weight": 0,
                          "port": 5060, "target": "uc2." + D},
                         {"name": "uc2." + D, "type": "A", "address": "127.0.1.27"}])
    try:
        rows, _err = e.rows(D)
        assert rows == [("tcp", "uc2." + D, "127.0.1.27", 5060, "naptr")]
    finally:
        e.close()


def test_srv_order_by_priority_then_weight():
    recs = [(2, 0, 1, "c"), (1, 0, 1, "a"), (3, 5, 1, "d"), (1, 0, 1, "b")]
    assert [r[3] for r in srv_order(recs, Lcg(1))] == ["a", "b", "c", "d"]


def test_srv_weights_follow_rfc2782():
    # RFC 2782: pick uniform r in [0, sum]; the first record whose running sum >= r wins.
    # Weights 0, 10, 30, 60 -> first pick: P(w0)=1/101, P(w10)=10/101, P(w30)=30/101,
    # P(w60)=60/101.
    recs = [(1, 10, 5060, "b"), (1, 60, 5060, "d"), (1, 0, 5060, "a"), (1, 30, 5060, "c")]
    rng = Lcg(2024)
    n = 20000
    first = {"a": 0, "b": 0, "c": 0, "d": 0}
    for _ in range(n):
        first[srv_order(recs, rng)[0][3]] += 1
    for host, p in (("a", 1 / 101), ("b", 10 / 101), ("c", 30 / 101), ("d", 60 / 101)):
        assert abs(first[host] / n - p) < 0.015, (host, first[host] / n, p)
    # Lower priority always first, whatever the weights.
    for _ in range(200):
        out = srv_order([(2, 1000, 1, "x"), (1, 1, 1, "y")], rng)
        assert out[0][3] == "y"


def test_parse_target():
    assert parse_target("sip:6903@airties.com") == ("airties.com", None, None, False)
    assert parse_target("sips:u@Host.Test:5071;transport=TCP;lr") == ("host.test", 5071, "tcp",
                                                                      True)
    assert parse_target("sip:x@h.test;maddr=127.0.1.5") == ("127.0.1.5", None, None, False)
    assert parse_target("sip:[fd00::1]:5062") == ("fd00::1", 5062, None, False)
    assert parse_target("airties.com.") == ("airties.com", None, None, False)
    e = Env({})
    try:
        t, err = e.go("sip:h.test:99999")
        assert list(t) == [] and "port" in err
    finally:
        e.close()
