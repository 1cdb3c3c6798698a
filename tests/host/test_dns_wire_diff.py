"""The firmware's DNS codec against dnspython on thousands of generated responses.

Valid responses are built as dnspython messages (random names with odd bytes and mixed case,
A / AAAA / CNAME / SRV / NAPTR / SOA, unknown types, other classes, EDNS) and rendered with
compression by ``to_wire()``; malformed ones are those responses cut, flipped, spliced.
Both decoders must decode the same records and reject the same packets, except where the
firmware deliberately differs (each one listed in ``documented_difference``):

1. Records of types the firmware does not use, or of a class other than IN, are skipped by
   RDLENGTH; dnspython parses the RDATA of every type it knows (MX, TXT, NS, TSIG, CH A, ...)
   and rejects a malformed one. A stub that never reads those records has no reason to fail
   the whole answer over them (RFC 3597: unknown RDATA is opaque).
2. Opcodes other than QUERY: dnspython switches to UPDATE section rules; the firmware reads
   every response the same way and its resolver drops any answer whose opcode is not QUERY.
"""

import contextlib
import ipaddress
import random
import struct

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.SOA
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.NAPTR
import dns.rdtypes.IN.SRV
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sipua.dns import DnsError
from sipua.dns.wire import _decode, put_name

A, CNAME, SOA, AAAA, SRV, NAPTR, OPT = 1, 5, 6, 28, 33, 35, 41
KNOWN = {A, CNAME, SOA, AAAA, SRV, NAPTR}
IN = dns.rdataclass.IN

label = st.one_of(
    st.sampled_from([b"sip", b"SIP", b"_sip", b"_tcp", b"_udp", b"uc1", b"Uc2", b"airties",
                     b"com", b"test", b"a", b"x-y"]),
    st.binary(min_size=1, max_size=12),  # any octet: dots, backslashes, 0xff, spaces ...
)
name = st.lists(label, min_size=0, max_size=5).map(lambda ls: dns.name.Name([*ls, b""]))
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
ttl = st.one_of(st.integers(0, 100000), st.sampled_from([0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]))


def _rdata():
    return st.one_of(
        st.builds(lambda b: dns.rdtypes.IN.A.A(IN, A, ".".join(str(x) for x in b)),
                  st.binary(min_size=4, max_size=4)),
        st.builds(lambda b: dns.rdtypes.IN.AAAA.AAAA(IN, AAAA, str(ipaddress.IPv6Address(b))),
                  st.one_of(st.binary(min_size=16, max_size=16),
                            st.sampled_from([bytes(16), bytes(15) + b"\x01",
                                             b"\x20\x01\x0d\xb8" + bytes(12)]))),
        st.builds(lambda n: dns.rdtypes.ANY.CNAME.CNAME(IN, CNAME, n), name),
        st.builds(lambda p, w, port, t: dns.rdtypes.IN.SRV.SRV(IN, SRV, p, w, port, t),
                  u16, u16, u16, name),
        st.builds(lambda o, p, f, s, r, t: dns.rdtypes.IN.NAPTR.NAPTR(IN, NAPTR, o, p, f, s,
                                                                         r, t),
                  u16, u16, st.sampled_from([b"s", b"S", b"u", b""]),
                  st.one_of(st.sampled_from([b"SIP+D2T", b"SIPS+D2T", b"SIP+D2U"]),
                            st.binary(max_size=20)),
                  st.one_of(st.just(b""), st.binary(max_size=30)), name),
        st.builds(lambda m, r, a, b, c, d, e: dns.rdtypes.ANY.SOA.SOA(IN, SOA, m, r, a, b, c,
                                                                        d, e),
                  name, name, u32, u32, u32, u32, u32),
        st.builds(lambda t, d: dns.rdata.GenericRdata(IN, t, d),
                  st.sampled_from([1000, 4000, 65280, 65534]), st.binary(max_size=20)),
    )


record = st.tuples(st.integers(0, 2), name, ttl, _rdata())


@st.composite
def responses(draw):
    m = dns.message.Message(id=draw(u16))
    m.flags = dns.flags.QR | draw(st.integers(0, 0x7FFF)) & ~0x7800 & ~0x000F
    m.set_rcode(draw(st.sampled_from([0, 0, 2, 3, 5])))
    qn = draw(name)
    m.question.append(dns.rrset.RRset(qn, IN, draw(st.sampled_from([A, AAAA, SRV, NAPTR]))))
    for section, owner, t, rd in draw(st.lists(record, max_size=8)):
        sec = (m.answer, m.authority, m.additional)[section]
        m.find_rrset(sec, owner if draw(st.booleans()) else qn, rd.rdclass, rd.rdtype,
                     create=True).add(rd, t)
    if draw(st.booleans()):
        opts = draw(st.lists(st.builds(lambda d: dns.edns.GenericOption(65001, d),
                                       st.binary(max_size=8)), max_size=2))
        m.use_edns(0, payload=draw(st.sampled_from([512, 1232, 4096, 100])), options=opts)
    return m  # rendered by the test: to_wire() touches the global RNG, which strategies must not


def render(m):
    return m.to_wire(max_size=65535)


# -- normalising both sides to comparable values ---------------------------------------------
def labels(text):
    """The firmware's presentation name back to lower-case wire labels (via its encoder)."""
    buf = bytearray(300)
    n = put_name(buf, 0, text)
    out, p = [], 0
    while buf[p]:
        out.append(bytes(buf[p + 1 : p + 1 + buf[p]]).lower())
        p += buf[p] + 1
    assert p + 1 == n
    return tuple(out)


def dlabels(n):
    return tuple(x.lower() for x in n.labels[:-1])


def mine_norm(t, d):
    if t == A:
        return d
    if t == AAAA:
        return ipaddress.IPv6Address(d)
    if t == CNAME:
        return labels(d)
    if t == SRV:
        return (*d[:3], labels(d[3]))
    if t == NAPTR:
        return (*d[:5], labels(d[5]))
    return (labels(d[0]), labels(d[1]), *d[2:])


def theirs_norm(rd):
    t = rd.rdtype
    if t == A:
        return rd.address
    if t == AAAA:
        return ipaddress.IPv6Address(rd.address)
    if t == CNAME:
        return dlabels(rd.target)
    if t == SRV:
        return (rd.priority, rd.weight, rd.port, dlabels(rd.target))
    if t == NAPTR:
        return (rd.order, rd.preference, rd.flags, rd.service, rd.regexp,
                dlabels(rd.replacement))
    return (dlabels(rd.mname), dlabels(rd.rname), rd.serial, rd.refresh, rd.retry, rd.expire,
            rd.minimum)


def mine_view(m):
    out = {}
    for i, sec in enumerate((m.answers, m.authority, m.additional)):
        for owner, t, c, ttl_, d in sec:
            assert c == 1 and t in KNOWN
            e = out.setdefault((i, labels(owner), t), [set(), ttl_])
            e[0].add(mine_norm(t, d))
            e[1] = min(e[1], ttl_)
    return out


def theirs_view(m):
    out = {}
    for i, sec in enumerate((m.answer, m.authority, m.additional)):
        for rrset in sec:
            if rrset.rdclass != IN or rrset.rdtype not in KNOWN:
                continue
            e = out.setdefault((i, dlabels(rrset.name), rrset.rdtype), [set(), rrset.ttl])
            e[0].update(theirs_norm(rd) for rd in rrset)
            e[1] = min(e[1], rrset.ttl)
    return out


def rr_headers(wire):
    """(type, class) of every record, walked leniently, for the documented differences."""
    out = []
    try:
        qd, an, ns, ar = struct.unpack_from("!HHHH", wire, 4)
        p = 12
        for i in range(qd + an + ns + ar):
            while wire[p] and wire[p] < 0xC0:
                p += wire[p] + 1
            p += 2 if wire[p] >= 0xC0 else 1
            if i < qd:
                p += 4
                continue
            t, c, _, rdlen = struct.unpack_from("!HHIH", wire, p)
            out.append((t, c))
            p += 10 + rdlen
    except (IndexError, struct.error):
        pass
    return out


def documented_difference(wire):
    if len(wire) > 3 and (wire[2] >> 3) & 15:
        return "opcode"
    for t, c in rr_headers(wire):
        if t != OPT and (t not in KNOWN or c != 1):
            return "skipped type or class"
    return None


def both(wire):
    try:
        mine = _decode(wire)  # without the catch-all: a stray exception fails the test
    except DnsError:
        mine = None
    try:
        theirs = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001 - dnspython raises many kinds: any of them is "rejected"
        theirs = None
    return mine, theirs


def check_same(wire):
    mine, theirs = both(wire)
    if (mine is None) != (theirs is None):
        why = documented_difference(wire)
        assert why, "only %s rejects %s" % ("firmware" if mine is None else "dnspython",
                                            wire.hex())
        return why
    if mine is None:
        return "both reject"
    assert mine.id == theirs.id and mine.rcode == theirs.rcode()
    assert mine.flags & 0xFFF0 == int(theirs.flags) & 0xFFF0
    if theirs.question:
        q = theirs.question[0]
        assert labels(mine.qname) == dlabels(q.name) and mine.qtype == q.rdtype
    assert mine.edns == (max(512, theirs.payload) if theirs.edns >= 0 else 0)
    assert mine_view(mine) == theirs_view(theirs)
    return "same"


FAST = settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(responses())
def test_valid_responses_decode_like_dnspython(m):
    assert check_same(render(m)) == "same"


@FAST
@given(responses(), st.randoms(use_true_random=False), st.integers(1, 4))
def test_malformed_responses_rejected_like_dnspython(m, rnd, k):
    b = bytearray(render(m))
    for _ in range(k):
        op = rnd.randrange(4)
        if op == 0 and b:
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif op == 1 and b:
            del b[rnd.randrange(len(b)) :]
        elif op == 2:
            at = rnd.randrange(len(b) + 1)
            b[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 4)))
        elif b:
            at = rnd.randrange(len(b))
            del b[at : at + rnd.randrange(1, 4)]
    check_same(bytes(b))


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.binary(max_size=700),
                 st.builds(lambda h, body: h + body, st.binary(min_size=12, max_size=12),
                           st.binary(max_size=300))))
def test_fuzz_only_the_parse_error_escapes(data):
    # The parser itself, without decode()'s last-resort catch-all: every bound is checked.
    with contextlib.suppress(DnsError):
        _decode(data)


def test_pointer_and_length_edge_cases_agree():
    # Hand-made edges where stub decoders often differ: pointer into the header, pointer to
    # the previous name's middle, exact 255-octet names, empty RDATA for unknown types.
    rng = random.Random(5)
    base = dns.message.make_response(dns.message.make_query("uc1.airties.test", "A"))
    base.answer.append(dns.rrset.from_text("uc1.airties.test.", 60, "IN", "A", "127.0.1.26"))
    wire = base.to_wire()
    cases = [wire, wire[:12] + b"\xc0\x02" + wire[30:]]
    for _ in range(500):
        b = bytearray(wire)
        b[rng.randrange(12, len(b))] = rng.choice([0xC0, 0xC1, 0x3F, 0x40, 0x00, 0xFF])
        cases.append(bytes(b))
    for c in cases:
        check_same(c)
