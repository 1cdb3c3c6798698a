"""DNS wire codec: queries byte for byte, every record type, and every malformed shape."""

import struct

from dnsfake import response, rr
from fwtest import raises
from sipua.dns import DnsError
from sipua.dns.wire import (
    AAAA,
    CNAME,
    NAPTR,
    OPT,
    SOA,
    SRV,
    A,
    _decode,
    decode,
    encode_query,
    ip6_text,
    put_name,
)

QUERY_BUF = 300  # the resolver's query buffer (dns/resolver.py _QUERY_BUF)
HDR = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0)
Q = b"\x03uc2\x07airties\x03com\x00\x00\x01\x00\x01"  # uc2.airties.com A IN, at offset 12


def test_query_is_a_recursive_question_with_edns_1232():
    buf = bytearray(QUERY_BUF)
    n = encode_query(buf, 0xBEEF, "_sip._tcp.AirTies.com", SRV)
    want = (b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01"
            b"\x04_sip\x04_tcp\x07AirTies\x03com\x00\x00\x21\x00\x01"
            b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00")
    assert bytes(buf[:n]) == want
    n = encode_query(buf, 1, "uc1.airties.com.", A, edns=False)
    assert bytes(buf[:n]) == b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + \
        b"\x03uc1\x07airties\x03com\x00\x00\x01\x00\x01"


def test_the_longest_name_fits_the_query_buffer():
    longest = ".".join(["a" * 63] * 3 + ["a" * 61])  # 253 characters, 255 octets on the wire
    buf = bytearray(QUERY_BUF)
    n = encode_query(buf, 1, longest, SRV)  # with the OPT record
    assert n == 12 + 255 + 4 + 11 <= QUERY_BUF
    raises(DnsError, encode_query, buf, 1, longest + "a", SRV)


def test_query_names_are_checked():
    buf = bytearray(QUERY_BUF)
    raises(DnsError, encode_query, buf, 1, "a" * 64 + ".com", A)
    raises(DnsError, encode_query, buf, 1, "a..com", A)
    raises(DnsError, encode_query, buf, 1, ".".join(["a" * 60] * 5), A)
    n = put_name(buf, 0, "x\\.y.z")  # an escaped dot stays inside its label
    assert bytes(buf[:n]) == b"\x03x.y\x01z\x00"


def test_seed_srv_answer_decodes():
    # Frame 19 of the seed: SRV 1 0 5060 uc2 / SRV 2 0 5060 uc1, TTL one hour.
    pkt = response(2, "_sip._tcp.airties.com", SRV,
                   [("_sip._tcp.airties.com", SRV, 3600, (1, 0, 5060, "uc2.airties.com")),
                    ("_sip._tcp.airties.com", SRV, 3600, (2, 0, 5060, "Uc1.airties.com"))])
    m = decode(pkt)
    assert m.id == 2 and m.flags & 0x8000 and not m.flags & 0x0200 and m.rcode == 0  # QR, not TC
    assert (m.qname, m.qtype, m.qclass) == ("_sip._tcp.airties.com", SRV, 1)
    assert [r[4] for r in m.answers] == [(1, 0, 5060, "uc2.airties.com"),
                                        (2, 0, 5060, "Uc1.airties.com")]
    assert m.answers[0][:4] == ("_sip._tcp.airties.com", SRV, 1, 3600)


def test_all_record_types_and_compression():
    # NAPTR owner and replacement compressed against the question name at offset 12.
    body = (b"\x07airties\x03com\x00\x00\x23\x00\x01"
            + b"\xc0\x0c\x00\x23\x00\x01\x00\x00\x0e\x10\x00\x1b"
            + b"\x00\x02\x00\x00\x01s\x07SIP+D2T\x00\x04_sip\x04_tcp\xc0\x0c"
            + b"\xc0\x0c\x00\x06\x00\x01\x00\x00\x00\x3c\x00\x1e"
            + b"\x02ns\xc0\x0c\x02hm\xc0\x0c" + struct.pack("!IIIII", 1, 2, 3, 4, 30)
            + b"\x04www1\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x05\x00\x02\xc0\x0c"
            + b"\x04www6\xc0\x0c\x00\x1c\x00\x01\x80\x00\x00\x00\x00\x10"
            + b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x01")
    pkt = struct.pack("!HHHHHH", 9, 0x8180, 1, 1, 1, 2) + body
    m = decode(pkt)
    assert m.answers == [("airties.com", NAPTR, 1, 3600,
                          (2, 0, b"s", b"SIP+D2T", b"", "_sip._tcp.airties.com"))]
    assert m.authority == [("airties.com", SOA, 1, 60,
                            ("ns.airties.com", "hm.airties.com", 1, 2, 3, 4, 30))]
    assert m.additional[0] == ("www1.airties.com", CNAME, 1, 5, "airties.com")
    # RFC 2181 §8: a TTL with the top bit set counts as zero.
    assert m.additional[1] == ("www6.airties.com", AAAA, 1, 0, "2001:db8::1")


def test_unknown_types_and_other_classes_are_skipped_by_rdlength():
    pkt = (struct.pack("!HHHHHH", 7, 0x8180, 1, 3, 0, 0) + Q
           + b"\xc0\x0c\x00\x63\x00\x01\x00\x00\x00\x05\x00\x03abc"  # type 99
           + b"\xc0\x0c\x00\x01\x00\x03\x00\x00\x00\x05\x00\x04\x01\x02\x03\x04"  # class CH
           + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04\x0a\x00\x00\x01")
    assert [r[4] for r in decode(pkt).answers] == ["10.0.0.1"]


def test_opt_gives_payload_and_extended_rcode():
    opt = b"\x00\x00\x29\x04\xd0\x01\x00\x00\x00\x00\x08\x00\x0a\x00\x04abcd"
    pkt = struct.pack("!HHHHHH", 7, 0x8180, 1, 0, 0, 1) + Q + opt
    m = decode(pkt)
    assert m.edns == 1232 and m.rcode == 16  # BADVERS: 1 << 4
    two = struct.pack("!HHHHHH", 7, 0x8180, 1, 0, 0, 2) + Q + opt + opt
    raises(DnsError, decode, two)
    in_answer = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0) + Q + opt
    raises(DnsError, decode, in_answer)
    overrun = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x08\x00\x0a\x00\x07abcd"
    raises(DnsError, decode, struct.pack("!HHHHHH", 7, 0x8180, 1, 0, 0, 1) + Q + overrun)


def test_odd_label_bytes_are_escaped_not_split():
    pkt = struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\x03a.b\x02\xff \x00\x00\x01\x00\x01"
    assert decode(pkt).qname == "a\\.b.\\255\\032"
    buf = bytearray(40)
    n = put_name(buf, 0, "a\\.b.\\255\\032")  # the escapes read back to the same octets
    assert bytes(buf[:n]) == b"\x03a.b\x02\xff \x00"


def test_ipv6_text_is_rfc5952():
    def t(hexs):
        return ip6_text(bytes.fromhex(hexs), 0)

    assert t("20010db8000000000000000000000001") == "2001:db8::1"
    assert t("00000000000000000000000000000000") == "::"
    assert t("20010db8000000010000000000000000") == "2001:db8:0:1::"
    assert t("20010db8000100010001000100010001") == "2001:db8:1:1:1:1:1:1"
    assert t("20010000000000010000000000000001") == "2001:0:0:1::1"  # longest run wins


def _bad(body, counts=(1, 1, 0, 0)):
    return struct.pack("!HHHHHH", 7, 0x8180, *counts) + body


def test_malformed_names_are_parse_errors():
    cases = [
        b"\xc0\x0c\x00\x01\x00\x01",  # pointer to itself: a loop
        b"\xc0\x20\x00\x01\x00\x01" + b"\x00" * 30,  # forward pointer
        b"\x01a\xc0\x0c\x00\x01\x00\x01",  # pointer back into the same name: loop
        b"\x01a\xff\xff\x00\x01\x00\x01",  # pointer out of range
        b"\x41" + b"a" * 65 + b"\x00\x00\x01\x00\x01",  # label type 0x40 (label > 63)
        b"\x81" + b"a" * 65 + b"\x00\x00\x01\x00\x01",  # label type 0x80
        b"\x05abc",  # label runs past the end
        b"\x03abc",  # name without its end
        b"\xc0",  # half a pointer
    ]
    for body in cases:
        raises(DnsError, _decode, _bad(body, (1, 0, 0, 0)))
    # An answer whose name points into the 12 header bytes, which then read as labels
    # (found by tests/host/test_dns_wire_diff.py; dnspython refuses it too).
    q = b"\x03uc1\x04test\x00\x00\x01\x00\x01"
    for ptr in (b"\xc0\x00", b"\xc0\x04", b"\xc0\x0b"):
        raises(DnsError, _decode, _bad(q + ptr + b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04"
                                            b"\x7f\x00\x01\x1a"))
    assert _decode(_bad(q + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04"
                        b"\x7f\x00\x01\x1a")).answers[0][0] == "uc1.test"
    # 256 octets: four 63-octet labels and a 2-octet one, plus the root.
    long_name = (b"\x3f" + b"a" * 63) * 4 + b"\x01b\x00"
    raises(DnsError, decode, _bad(long_name + b"\x00\x01\x00\x01", (1, 0, 0, 0)))
    ok = (b"\x3f" + b"a" * 63) * 3 + b"\x3d" + b"a" * 61 + b"\x00"  # exactly 255
    assert len(decode(_bad(ok + b"\x00\x01\x00\x01", (1, 0, 0, 0))).qname) == 253
    # Too long only through compression: 250 octets at 12, then "\x05xxxxx" + pointer.
    base = (b"\x3f" + b"a" * 63) * 3 + b"\x39" + b"a" * 57 + b"\x00"
    pkt = _bad(base + b"\x00\x01\x00\x01" + b"\x05bbbbb\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05"
               b"\x00\x04\x01\x02\x03\x04")
    raises(DnsError, decode, pkt)


def test_malformed_records_are_parse_errors():
    a = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05"
    cases = [
        Q + a + b"\x00\x05\x01\x02\x03\x04\x05",  # A with 5 octets
        Q + a + b"\x00\x08\x01\x02\x03\x04",  # RDLENGTH past the end
        Q + a[:6],  # record header cut short
        Q + a + b"\x00\x04\x01\x02\x03\x04" + b"\x00",  # trailing byte
        Q + b"\xc0\x0c\x00\x21\x00\x01\x00\x00\x00\x05\x00\x08\x00\x01\x00\x00\x13\xc4\x00\x00",
        Q + b"\xc0\x0c\x00\x21\x00\x01\x00\x00\x00\x05\x00\x03\x00\x01\x00",  # SRV too short
        Q + b"\xc0\x0c\x00\x23\x00\x01\x00\x00\x00\x05\x00\x06\x00\x01\x00\x01\x09s",  # NAPTR
        Q + b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x05\x00\x03\xc0\x0c\x00",  # CNAME + junk
        Q + b"\xc0\x0c\x00\x06\x00\x01\x00\x00\x00\x05\x00\x06\xc0\x0c\xc0\x0c\x00\x00",  # SOA
        Q + b"\xc0\x0c\x00\x1c\x00\x01\x00\x00\x00\x05\x00\x04\x01\x02\x03\x04",  # AAAA 4
    ]
    for body in cases:
        raises(DnsError, _decode, _bad(body))
    raises(DnsError, decode, HDR[:11])
    raises(DnsError, decode, _bad(Q[:-2]))  # question cut short
    raises(DnsError, decode, None)


def test_no_exception_but_dnserror_on_cut_or_flipped_packets():
    pkt = response(3, "airties.com", NAPTR,
                   [("airties.com", NAPTR, 60, (2, 0, b"s", b"SIP+D2T", b"", "_sip._tcp.x.y"))],
                   [("airties.com", SOA, 60, ("ns.x", "h.x", 1, 2, 3, 4, 5))],
                   [("uc1.x", A, 60, "1.2.3.4"), ("uc1.x", AAAA, 60, "::1"),
                    (".", OPT, 0, b"")])
    # _decode: the parser without decode()'s last-resort catch-all, so a missing bound check
    # fails here (on both interpreters) instead of hiding behind it.
    for n in range(len(pkt)):
        raises(DnsError, _decode, pkt[:n])
    seed = 12345
    for _ in range(3000):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        b = bytearray(pkt)
        for _ in range(1 + seed % 3):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            b[seed % len(b)] = (seed >> 8) & 0xFF
        try:
            _decode(b)
        except DnsError:
            pass


def test_record_builder_roundtrip():
    # The fake server's encoder and the decoder agree, so resolver tests test the resolver.
    m = decode(response(5, "x.test", SRV, [("x.test", SRV, 9, (0, 5, 5061, "."))]))
    assert m.answers == [("x.test", SRV, 1, 9, (0, 5, 5061, "."))]
    assert len(rr("a.b", A, 1, "1.2.3.4")) == 5 + 10 + 4
