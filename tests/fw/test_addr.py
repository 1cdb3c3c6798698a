"""sipua.addr: the one parser of addresses and host:port text (config, account, DNS, the
host tools all use it)."""

from fwtest import raises
from sipua import addr
from sipua.dns import DnsError
from sipua.dns.resolver import parse_server


def test_ipv4():
    for good in ("1.2.3.4", "127.0.0.53", "0.0.0.0", "255.255.255.255"):
        assert addr.ipv4(good) and addr.is_ip(good), good
    for bad in ("300.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.", "1..3.4", "1.2.3.x", "1.2.3.1000",
                "1.2.3.-1", "1.2.3.+1", " 1.2.3.4", "1:2", ""):
        assert not addr.ipv4(bad), bad
    assert not addr.ipv4("1.2.3.\u00b2")  # str.isdigit says yes, int() says no


def test_ipv6():
    for good in ("::1", "::", "fd00::1", "FE80::A:b", "1:2:3:4:5:6:7:8", "1::8",
                 "1:2:3:4:5:6:7::"):
        assert addr.ipv6(good) and addr.is_ip(good), good
    for bad in ("1:2", "1:2:3", "1::2::3", ":::", "12345::1", "::g", "1:2:3:4:5:6:7:8:9",
                "1:2:3:4:5:6:7::8", "::ffff:1.2.3.4", "[::1]", "fe80::1%eth0", ""):
        assert not addr.ipv6(bad), bad


def test_names():
    for good in ("airties.lab", "uc1.airties.lab.", "localhost", "_sip._udp.a.test", "a-b.c1",
                 "x" * 63 + ".test"):
        assert addr.name(good) and addr.host(good), good
    for bad in ("300.1.1.1", "1", "1.2.3.4", "a..b", "-a.test", "a-.test", "a b", "\u00e9.test",
                "x" * 64 + ".test", "a." * 127 + "b", "", ".", "1.2.3.123456"):
        assert not addr.name(bad), bad
    assert addr.host("1.2.3.4") and addr.host("::1") and not addr.host("a b")


def test_hostport():
    hp = addr.hostport
    assert hp("h.test") == ("h.test", None)
    assert hp("h.test", 5060) == ("h.test", 5060)
    assert hp("h.test:5070", 5060) == ("h.test", 5070)
    assert hp("h.test.:1") == ("h.test.", 1)  # the trailing dot stays: callers strip it
    assert hp("1.2.3.4:65535") == ("1.2.3.4", 65535)
    assert hp("[::1]:5060") == ("::1", 5060)
    assert hp("[::1]", 53) == ("::1", 53)
    assert hp("::1", 53) == ("::1", 53)  # a bare IPv6 address has no port
    assert hp("[::1]:53", 0, addr.is_ip) == ("::1", 53)
    for bad, why in (("1:2", "bad host"), ("h.test:0", "bad port"), ("h.test:65536", "bad port"),
                     ("h.test:x", "bad port"), ("h.test:", "bad port"),
                     ("h.test:\u00b2", "bad port"), ("[::1", "unclosed '['"),
                     ("[::1]5060", "expected ':port'"), ("300.1.1.1:5060", "bad host"),
                     ("", "bad host"), ("[h.test]:53x", "bad port")):
        e = raises(ValueError, hp, bad)
        assert why in str(e), (bad, e)
    assert "bad host" in str(raises(ValueError, hp, "h.test:53", 0, addr.is_ip))
    assert "bad host" in str(raises(ValueError, hp, "[h.test]:53", 0, addr.is_ip))


def test_dns_servers_are_addresses():
    assert parse_server(" 10.0.0.1 ") == ("10.0.0.1", 53)
    assert parse_server("[::1]:5353") == ("::1", 5353)
    for bad in ("ns.example.com", "1:2", "1.2.3.4:65536", "300.1.1.1"):
        e = raises(DnsError, parse_server, bad)
        assert "DNS server must be an IP address" in str(e) and repr(bad) in str(e), e
