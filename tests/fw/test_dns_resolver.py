"""Stub resolver against fake DNS servers on real loopback sockets, in virtual time."""

from dnsfake import FakeDns, response
from fwtest import bind_udp, new_sched, raises
from sipua import config
from sipua.dns import DnsError
from sipua.dns.resolver import Resolver, from_config, parse_server
from sipua.dns.static import Static
from sipua.dns.wire import AAAA, CNAME, NAPTR, SRV, A
from sipua.log import log, parse_line

ZONE = {"uc1.airties.test": [(A, 60, "127.0.1.26")],
        "uc2.airties.test": [(A, 0x80000010, "127.0.1.27")],  # top bit set: TTL 0
        "sip.airties.test": [(CNAME, 30, "uc1.airties.test")],
        "loop1.test": [(CNAME, 30, "loop2.test")], "loop2.test": [(CNAME, 30, "loop1.test")]}


def setup(zone=ZONE, n=1, **kw):
    s, _clock = new_sched(real_poll=True)
    fakes = [FakeDns(s, zone, **kw) for _ in range(n)]
    r = Resolver(s, [f.server for f in fakes])
    return s, r, fakes


def ask(s, r, name, qtype=A, limit=60000):
    box = []
    r.query(name, qtype, lambda a, e: box.append((a, e)))
    assert s.run_until(lambda: box, limit), "no answer"
    return box[0]


def close(fakes):
    for f in fakes:
        f.close()


def test_answer_then_cache_then_expiry_in_virtual_time():
    s, r, (f,) = setup()
    try:
        a, err = ask(s, r, "uc1.airties.test")
        assert err is None and a.records == ["127.0.1.26"] and a.ttl == 60 and a.source == "dns"
        t0 = s.now()
        a, err = ask(s, r, "UC1.airties.test")  # case does not matter
        assert a.source == "cache" and a.records == ["127.0.1.26"] and len(f.queries) == 1
        s.run(until_ms=t0 + 59000)
        a, err = ask(s, r, "uc1.airties.test")
        assert a.source == "cache" and a.ttl <= 1 and len(f.queries) == 1
        s.run(until_ms=t0 + 60001)
        a, err = ask(s, r, "uc1.airties.test")
        assert a.source == "dns" and len(f.queries) == 2
    finally:
        close([f])


def test_ttl_with_top_bit_is_zero_and_not_cached():
    s, r, (f,) = setup()
    try:
        a, _ = ask(s, r, "uc2.airties.test")
        assert a.ttl == 0 and a.records == ["127.0.1.27"]
        ask(s, r, "uc2.airties.test")
        assert len(f.queries) == 2
    finally:
        close([f])


def test_negative_answer_cached_for_soa_minimum():
    s, r, (f,) = setup(soa=(300, 10))  # RFC 2308: min(SOA TTL, MINIMUM) = 10 s
    try:
        a, err = ask(s, r, "nope.airties.test")
        assert err is None and a.records == [] and a.rcode == 3 and a.ttl == 10
        t0 = s.now()
        a, _ = ask(s, r, "nope.airties.test")
        assert a.source == "cache" and a.rcode == 3 and len(f.queries) == 1
        s.run(until_ms=t0 + 10001)
        ask(s, r, "nope.airties.test")
        assert len(f.queries) == 2
        a, _ = ask(s, r, "uc1.airties.test", SRV)  # NODATA is cached the same way
        assert a.records == [] and a.rcode == 0 and a.ttl == 10
    finally:
        close([f])


def test_negative_answer_without_soa_is_not_cached():
    s, r, (f,) = setup()
    try:
        ask(s, r, "nope.airties.test")
        ask(s, r, "nope.airties.test")
        assert len(f.queries) == 2
    finally:
        close([f])


def test_cache_is_capped():
    s, r, (f,) = setup()
    try:
        r.cache.max_entries = 1
        ask(s, r, "uc1.airties.test")
        ask(s, r, "sip.airties.test")
        assert len(r.cache) == 1
    finally:
        close([f])


def test_truncated_answer_is_asked_again_over_tcp():
    s, r, (f,) = setup()
    try:
        f.tc = True
        a, err = ask(s, r, "uc1.airties.test")
        assert err is None and a.records == ["127.0.1.26"]
        assert f.queries == [("uc1.airties.test", A, "udp"), ("uc1.airties.test", A, "tcp")]
    finally:
        close([f])


def test_queries_leave_from_the_configured_local_address():
    # A phone with a voice VLAN (or two interfaces) binds SIP to one address; its DNS must
    # leave from the same one, over UDP and over TCP after a truncated answer.
    s, r, (f,) = setup()
    try:
        ask(s, r, "uc1.airties.test")
        r.local_ip = "127.0.1.61"
        r.cache.clear()
        f.tc = True
        a, err = ask(s, r, "uc1.airties.test")
        assert err is None and a.records == ["127.0.1.26"]
        assert f.sources[0][1] != "127.0.1.61"  # unbound: the kernel's choice
        assert f.sources[1:] == [("udp", "127.0.1.61"), ("tcp", "127.0.1.61")]
    finally:
        close([f])


def test_spoofed_answers_are_ignored():
    s, r, (f,) = setup()
    other, _ = bind_udp(f.host)  # same address, wrong port
    far, _ = bind_udp("127.0.1.99")  # wrong address
    good = []

    def hook(srv, q, addr):
        fake = response(q.id, q.qname, A, [(q.qname, A, 60, "6.6.6.6")])
        forged_id = response(q.id ^ 1, q.qname, A, [(q.qname, A, 60, "6.6.6.1")])
        forged_q = response(q.id, "evil.test", A, [("evil.test", A, 60, "6.6.6.2")])
        other.sendto(fake, addr)
        far.sendto(fake, addr)
        srv.udp.sendto(forged_id, addr)
        srv.udp.sendto(forged_q, addr)
        srv.udp.sendto(b"\x00\x01garbage", addr)
        # The real answer comes later; the resolver must still be waiting for it.
        s.call_later(50, lambda: good.append(srv.udp.sendto(srv.answer(q, "udp"), addr)))
        return True

    f.hook = hook
    lines = []
    saved = log._write
    log.set_output(lines.append)
    try:
        a, err = ask(s, r, "uc1.airties.test")
        assert good and err is None and a.records == ["127.0.1.26"]
    finally:
        log.set_output(saved)
        other.close()
        far.close()
        close([f])
    # Each drop is logged with where it came from: the forged ID and question came from
    # the server's own address (the socket is connected to it), never "src=None".
    dropped = [parse_line(x) for x in lines if "answer_dropped" in x]
    server = f.server
    # (the two from other ports the kernel dropped already: the socket is connected)
    assert sorted(d["why"] for d in dropped) == ["id", "id", "question"], dropped
    assert [d["src"] for d in dropped] == [server] * 3, dropped


def test_second_server_on_timeout_then_backoff():
    s, r, fakes = setup(n=2)
    try:
        fakes[0].hook = lambda srv, q, addr: True  # silent
        t0 = s.now()
        a, err = ask(s, r, "uc1.airties.test")
        assert a.records == ["127.0.1.26"] and s.now() - t0 >= r.timeout_ms
        assert s.now() - t0 < r.timeout_ms + 500
        fakes[1].hook = lambda srv, q, addr: True  # now both silent
        t0 = s.now()
        a, err = ask(s, r, "sip.airties.test")
        assert a is None and err == "timeout"
        # Two rounds over two servers, the second round waiting twice as long.
        assert 6000 <= s.now() - t0 < 6500
        assert len(fakes[0].queries) == 3 and len(fakes[1].queries) == 3
    finally:
        close(fakes)


def test_servfail_refused_and_closed_port_go_to_the_next_server():
    s, _clock = new_sched(real_poll=True)
    dead, dead_port = bind_udp("127.0.1.53")
    dead.close()  # nothing listens here: ICMP port unreachable
    f1, f2, f3 = FakeDns(s, ZONE), FakeDns(s, ZONE), FakeDns(s, ZONE)
    f1.rcode, f2.rcode = 2, 5
    r = Resolver(s, ["127.0.1.53:%d" % dead_port, f1.server, f2.server, f3.server])
    try:
        t0 = s.now()
        a, _err = ask(s, r, "uc1.airties.test")
        assert a.records == ["127.0.1.26"] and s.now() - t0 < 200
        assert [len(f.queries) for f in (f1, f2, f3)] == [1, 1, 1]
    finally:
        close([f1, f2, f3])


def test_formerr_with_edns_retries_without():
    s, r, (f,) = setup()
    seen = []

    def hook(srv, q, addr):
        seen.append(q.edns)
        if q.edns:
            srv.udp.sendto(response(q.id, q.qname, A, rcode=1), addr)
            return True
        return False

    f.hook = hook
    try:
        a, _err = ask(s, r, "uc1.airties.test")
        assert a.records == ["127.0.1.26"] and seen == [1232, 0]
    finally:
        close([f])


def test_cname_chains_are_followed_and_bounded():
    s, r, (f,) = setup()
    try:
        a, err = ask(s, r, "sip.airties.test")
        assert a.records == ["127.0.1.26"] and a.ttl == 30 and a.name == "sip.airties.test"
        assert len(f.queries) == 1  # the fake puts the whole chain in one answer
        a, err = ask(s, r, "loop1.test")
        assert a is None and "CNAME" in err
    finally:
        close([f])


def test_cname_leading_out_of_the_answer_is_asked_for():
    zone = dict(ZONE)
    zone["alias.test"] = [(CNAME, 40, "uc1.airties.test")]
    s, r, (f,) = setup(zone)

    def hook(srv, q, addr):  # answer the alias with the CNAME only
        if q.qname == "alias.test":
            srv.udp.sendto(response(q.id, q.qname, A, [(q.qname, CNAME, 40, "uc1.airties.test")]),
                           addr)
            return True
        return False

    f.hook = hook
    try:
        a, _err = ask(s, r, "alias.test")
        assert a.records == ["127.0.1.26"] and a.ttl == 40
        assert [q[0] for q in f.queries] == ["alias.test", "uc1.airties.test"]
    finally:
        close([f])


def test_several_queries_in_flight_and_identical_ones_shared():
    s, r, (f,) = setup()
    got = {}
    delayed = []

    def hook(srv, q, addr):  # hold every answer 100 ms: all questions are out together
        delayed.append(q.qname)
        s.call_later(100, srv.udp.sendto, srv.answer(q, "udp"), addr)
        return True

    f.hook = hook
    try:
        for n in ("uc1.airties.test", "sip.airties.test", "uc1.airties.test", "x.test"):
            r.query(n, A, lambda a, e, n=n: got.setdefault(n, []).append(a))
        t0 = s.now()
        assert s.run_until(lambda: sum([len(v) for v in got.values()]) == 4, 5000)
        assert s.now() - t0 < 200  # in parallel, not one after the other
        assert sorted(delayed) == ["sip.airties.test", "uc1.airties.test", "x.test"]
        assert got["uc1.airties.test"][0].records == ["127.0.1.26"]
    finally:
        close([f])


def test_static_records_when_dns_has_nothing():
    s, r, (f,) = setup()
    r.static = Static([{"name": "nope.airties.test", "type": "A", "address": "10.9.9.9",
                        "ttl": 99},
                       {"name": "uc1.airties.test", "type": "A", "address": "10.1.1.1"}])
    try:
        a, _err = ask(s, r, "nope.airties.test")  # NXDOMAIN -> static
        assert a.records == ["10.9.9.9"] and a.source == "static" and a.ttl == 99
        a, _err = ask(s, r, "uc1.airties.test")  # DNS has it: DNS wins
        assert a.records == ["127.0.1.26"] and a.source == "dns"
        f.hook = lambda srv, q, addr: True
        r.cache.clear()
        r.timeout_ms, r.tries = 100, 1
        a, _err = ask(s, r, "uc1.airties.test")  # server silent -> static
        assert a.records == ["10.1.1.1"] and a.source == "static"
    finally:
        close([f])


def test_static_records_from_the_config_and_server_errors_name_the_entry():
    cfg = config.validate({"dns": {"servers": ["127.0.1.53:5353", "[::1]"], "static": [
        {"name": "A.test.", "type": "SRV", "priority": 1, "weight": 2, "port": 5060,
         "target": "b.test.", "ttl": 60},
        {"name": "a.test", "type": "SRV", "priority": 3, "weight": 0, "port": 5061,
         "target": "c.test"},
        {"name": "a.test", "type": "NAPTR", "order": 1, "preference": 2, "flags": "s",
         "service": "SIP+D2U", "replacement": "_sip._udp.a.test"},
        {"name": "v6.test", "type": "AAAA", "address": "fd00::1"}]}})
    s, _clock = new_sched()
    r = from_config(s, cfg["dns"], "127.0.0.1")
    assert r.servers == [("127.0.1.53", 5353), ("::1", 53)] and r.local_ip == "127.0.0.1"
    st = r.static
    assert st.lookup("a.test", SRV) == (60, [(1, 2, 5060, "b.test"), (3, 0, 5061, "c.test")])
    assert st.lookup("A.TEST.", NAPTR) == (300, [(1, 2, b"s", b"SIP+D2U", b"",
                                                  "_sip._udp.a.test")])
    assert st.lookup("v6.test", AAAA) == (300, ["fd00::1"]) and st.lookup("b.test", A) is None
    assert from_config(s, {}).static is None
    e = raises(DnsError, from_config, s, {"servers": ["10.0.0.1", "ns.example.com"]})
    assert "dns.servers[1]: DNS server must be an IP address" in str(e), e
    assert parse_server("10.0.0.1") == ("10.0.0.1", 53)
    assert parse_server("127.0.1.53:5353") == ("127.0.1.53", 5353)
    assert parse_server("[::1]:53") == ("::1", 53)
    for bad in ("dns.example.com", "1.2.3.4:0", "1.2.3.4:x", "[::1", "1.2.3"):
        try:
            parse_server(bad)
        except DnsError:
            continue
        raise AssertionError("accepted %r" % bad)


def test_cancelled_query_never_calls_back():
    s, r, (f,) = setup()
    try:
        seen = []
        t = r.query("uc1.airties.test", A, lambda a, e: seen.append(a))
        t.cancel()
        s.run(until_ms=s.now() + 3000)
        assert seen == [] and not r._pending and r._active == 0
    finally:
        close([f])


def test_no_servers_is_an_error_not_a_crash():
    s, _clock = new_sched(real_poll=True)
    r = Resolver(s, [])
    r.servers = []
    a, err = ask(s, r, "uc1.airties.test")
    assert a is None and err == "no DNS servers"


def test_oversized_udp_answer_is_asked_again_over_tcp():
    zone = dict(ZONE)
    zone["big.test"] = [(A, 60, "10.0.%d.%d" % (i // 250, i % 250)) for i in range(100)]
    s, r, (f,) = setup(zone)
    r.rx_max = 512  # as a server ignoring our EDNS size would overflow it
    try:
        a, err = ask(s, r, "big.test")
        assert err is None and len(a.records) == 100
        assert f.queries == [("big.test", A, "udp"), ("big.test", A, "tcp")]
    finally:
        close([f])


class _Dgram:
    """Stands in for the query's socket: hands out one datagram from a chosen source."""

    def __init__(self, data, src):
        self.data, self.src = data, src

    def recvfrom(self, n):
        return self.data, self.src


def test_source_check_does_not_rely_on_the_kernel():
    # connect() makes Linux and lwIP filter foreign datagrams already; the resolver checks
    # the source itself too, for stacks that do not. Feed it one directly.
    from dnsfake import response

    s, r, (f,) = setup()
    f.hook = lambda srv, q, addr: True  # silent: the answers come from the test
    got = []
    try:
        r.query("uc1.airties.test", A, lambda a, e: got.append(a))
        s.run_once(0)
        q = r._pending[("uc1.airties.test", A)]
        pkt = response(q.qid, "uc1.airties.test", A, [("uc1.airties.test", A, 60, "6.6.6.6")])
        if isinstance(q.addr, tuple):
            other = ("127.0.1.99", q.addr[1])
        else:  # the unix port's raw sockaddr_in: change the address's last octet
            b = bytearray(q.addr)
            b[7] ^= 1
            other = bytes(b)
        q._readable(_Dgram(pkt, other), 1)
        s.run_once(0)
        assert got == [] and q.sock is not None  # still waiting
        good = response(q.qid, "uc1.airties.test", A, [("uc1.airties.test", A, 60, "10.0.0.7")])
        q._readable(_Dgram(good, q.addr), 1)
        s.run_until(lambda: got, 1000)
        assert got[0].records == ["10.0.0.7"]
    finally:
        close([f])
