"""DNS wire format: build a query, parse a response (RFC 1035, 2181, 2782, 3403, 6891).

Answers come from the network, so every read is bounded: the parser walks offsets over the
one receive buffer (labels are decoded straight from a ``memoryview``, nothing is copied byte
by byte) and every malformed input ends in ``DnsError`` — never an IndexError or a loop.

Names are presentation strings without the final dot (``"uc1.airties.com"``; the root is
``"."``). A label byte outside printable ASCII, and ``.`` or ``\\`` inside a label, are written
``\\DDD`` / ``\\.`` / ``\\\\`` as in zone files, so a hostile label cannot masquerade as two.

A record is a tuple ``(name, type, class, ttl, data)``; ``data`` is:
  A / AAAA  the address as text          CNAME  the target name
  SRV       (priority, weight, port, target)
  NAPTR     (order, preference, flags, services, regexp, replacement); the three
            character-strings stay ``bytes`` (they may hold any octet)
  SOA       (mname, rname, serial, refresh, retry, expire, minimum)
Types outside that list are skipped by RDLENGTH; the OPT record is folded into
``Message.edns`` (the sender's UDP payload size) and ``Message.rcode``.
"""

import struct

from ..compat import const
from . import DnsError

# RR types (RFC 1035, 3596, 2782, 3403, 6891): the ones other modules name.
A = const(1)
CNAME = const(5)
SOA = const(6)
AAAA = const(28)
SRV = const(33)
NAPTR = const(35)
OPT = const(41)

# Private (MicroPython inlines them and keeps no name): resolver.py keeps its own copies of
# the ones it needs, checked against these by tests/host/test_dns_consts.py.
_HEADER_LEN = const(12)
_MAX_NAME = const(255)  # wire octets, root label included (RFC 1035 §3.1)
_MAX_LABEL = const(63)
_EDNS_PAYLOAD = const(1232)  # the DNS flag day 2020 size: no IP fragmentation

_QR = const(0x8000)
_RD = const(0x0100)
_TC = const(0x0200)
_TTL_MAX = const(0x7FFFFFFF)


class Message:
    """A parsed response; see the module docstring for the record layout."""

    __slots__ = ("id", "flags", "rcode", "qname", "qtype", "qclass", "answers", "authority",
                 "additional", "edns")

    def __init__(self):
        self.id = self.flags = self.rcode = self.qtype = self.qclass = self.edns = 0
        self.qname = None  # type: str | None
        self.answers = self.authority = self.additional = []  # type: list


# -- building queries ---------------------------------------------------------------------
def put_name(buf, off, name):
    """Write ``name`` in wire form at ``off``; returns the offset after it."""
    if name in ("", "."):
        buf[off] = 0
        return off + 1
    if name[-1] == "." and name[-2:] != "\\.":
        name = name[:-1]
    if "\\" in name:
        return _put_labels(buf, off, name)
    # The common case in one copy: the text goes in one byte to the right, then each dot
    # becomes the length of the label that follows it.
    b = name.encode()
    n = len(b)
    if n + 2 > _MAX_NAME:
        raise DnsError("name too long: %r" % name)
    buf[off + 1 : off + 1 + n] = b
    i = 0
    while True:
        j = b.find(b".", i)
        if j < 0:
            j = n
        if j == i or j - i > _MAX_LABEL:
            raise DnsError("bad label in %r" % name)
        buf[off] = j - i
        off += j - i + 1
        if j == n:
            break
        i = j + 1
    buf[off] = 0
    return off + 1


def _put_labels(buf, off, name):
    start = off
    for label in _labels(name):
        n = len(label)
        if n == 0 or n > _MAX_LABEL:
            raise DnsError("bad label in %r" % name)
        if off - start + n + 2 > _MAX_NAME:
            raise DnsError("name too long: %r" % name)
        buf[off] = n
        buf[off + 1 : off + 1 + n] = label
        off += n + 1
    buf[off] = 0
    return off + 1


def _labels(name):
    if "\\" not in name:
        return [x.encode() for x in name.split(".")]
    # Zone-file escapes (\. \\ \DDD), the inverse of _escape(): rare, so kept simple.
    out, cur, i, n = [], bytearray(), 0, len(name)
    while i < n:
        c = name[i]
        if c == ".":
            out.append(bytes(cur))
            cur = bytearray()
        elif c == "\\" and i + 1 < n:
            d = name[i + 1 : i + 4]
            if len(d) == 3 and d.isdigit() and int(d) < 256:
                cur.append(int(d))
                i += 3
            else:
                cur.extend(name[i + 1].encode())
                i += 1
        else:
            cur.extend(c.encode())
        i += 1
    out.append(bytes(cur))
    return out


def encode_query(buf, qid, name, qtype, edns=True, qclass=1):
    """Build a recursive query for (name, qtype) into ``buf``; returns its length.

    ``buf`` is the caller's preallocated buffer (the resolver's 300 bytes: header, the longest
    name, question and OPT fit), reused for every query.
    """
    struct.pack_into("!HHHHHH", buf, 0, qid & 0xFFFF, _RD, 1, 0, 0, 1 if edns else 0)
    off = put_name(buf, _HEADER_LEN, name)
    struct.pack_into("!HH", buf, off, qtype, qclass)
    off += 4
    if edns:
        # OPT: root owner, CLASS = our UDP payload size, TTL = 0 (no DO bit), no options.
        buf[off] = 0
        struct.pack_into("!HHIH", buf, off + 1, OPT, _EDNS_PAYLOAD, 0, 0)
        off += 11
    return off


def question_end(buf):
    """Offset just after the first question of a packet (to compare it with the query's)."""
    p = _HEADER_LEN
    n = len(buf)
    while p < n:
        c = buf[p]
        if c == 0:
            return p + 5
        if c >= 0xC0:
            return p + 6
        p += c + 1
    return n + 1


# -- parsing ------------------------------------------------------------------------------
def decode(buf):
    """Parse a whole DNS message; raises only ``DnsError``."""
    try:
        return _decode(buf)
    except DnsError:
        raise
    except MemoryError:
        raise
    # a bound check missed below must still not escape as a crash
    except Exception as e:  # noqa: BLE001
        raise DnsError("malformed: %r" % e) from None


def _decode(buf):
    end = len(buf)
    if end < _HEADER_LEN:
        raise DnsError("short header")
    mv = memoryview(buf)
    m = Message()
    m.id, m.flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", buf, 0)
    m.rcode = m.flags & 15
    names = {}  # type: dict # offset -> (name, wire length, last offset read): compression targets
    p = _HEADER_LEN
    for i in range(qd):
        name, p = _name(buf, mv, p, end, names)
        if p + 4 > end:
            raise DnsError("short question")
        if i == 0:
            m.qname = name
            m.qtype, m.qclass = struct.unpack_from("!HH", buf, p)
        p += 4
    m.answers, p = _section(m, buf, mv, p, end, an, names, 0)
    m.authority, p = _section(m, buf, mv, p, end, ns, names, 1)
    m.additional, p = _section(m, buf, mv, p, end, ar, names, 2)
    if p != end:
        raise DnsError("trailing bytes")
    return m


def _section(m, buf, mv, p, end, count, names, which):
    out = []
    for _ in range(count):
        name, p = _name(buf, mv, p, end, names)
        if p + 10 > end:
            raise DnsError("short record header")
        # Read by hand: unpack_from would make a tuple per record.
        t = buf[p] << 8 | buf[p + 1]
        c = buf[p + 2] << 8 | buf[p + 3]
        ttl = buf[p + 4] << 24 | buf[p + 5] << 16 | buf[p + 6] << 8 | buf[p + 7]
        rdlen = buf[p + 8] << 8 | buf[p + 9]
        p += 10
        q = p + rdlen
        if q > end:
            raise DnsError("RDLENGTH past the end")
        if t == OPT:
            # RFC 6891 §6.1.1: one OPT, owner root, additional section only.
            if which != 2 or name != "." or m.edns:
                raise DnsError("misplaced OPT")
            r = p
            while r < q:  # options are TLVs that must tile RDATA exactly
                if r + 4 > q:
                    raise DnsError("OPT option header")
                r += 4 + (buf[r + 2] << 8 | buf[r + 3])
            if r != q:
                raise DnsError("OPT option length")
            m.edns = c if c > 512 else 512
            m.rcode |= (ttl >> 20) & 0xFF0  # extended RCODE: its upper 8 bits are TTL[31:24]
            p = q
            continue
        if c != 1:
            p = q  # a stub only asks class IN; other classes are skipped like unknown types
            continue
        if ttl > _TTL_MAX:
            ttl = 0  # RFC 2181 §8: a TTL with the top bit set is zero
        data = None  # type: object
        if t == A:
            if rdlen != 4:
                raise DnsError("A length")
            data = "%d.%d.%d.%d" % (buf[p], buf[p + 1], buf[p + 2], buf[p + 3])
        elif t == SRV:
            if rdlen < 7:
                raise DnsError("SRV length")
            pr, w, port = struct.unpack_from("!HHH", buf, p)
            data = (pr, w, port, _rdname(buf, mv, p + 6, q, names))
        elif t == NAPTR:
            data = _naptr(buf, mv, p, q, names)
        elif t == CNAME:
            data = _rdname(buf, mv, p, q, names)
        elif t == AAAA:
            if rdlen != 16:
                raise DnsError("AAAA length")
            data = ip6_text(buf, p)
        elif t == SOA:
            mname, r = _name(buf, mv, p, q, names)
            rname, r = _name(buf, mv, r, q, names)
            if r + 20 != q:
                raise DnsError("SOA length")
            data = (mname, rname) + struct.unpack_from("!IIIII", buf, r)
        else:
            p = q  # unknown type: skipped by RDLENGTH
            continue
        out.append((name, t, c, ttl, data))
        p = q
    return out, p


def _rdname(buf, mv, p, q, names):
    name, r = _name(buf, mv, p, q, names)
    if r != q:
        raise DnsError("name does not fill RDATA")
    return name


def _naptr(buf, mv, p, q, names):
    if p + 4 > q:
        raise DnsError("NAPTR length")
    order, pref = struct.unpack_from("!HH", buf, p)
    p += 4
    strs = []
    for _ in range(3):  # flags, services, regexp: <character-string>s
        if p >= q:
            raise DnsError("NAPTR string")
        n = buf[p]
        p += 1 + n
        if p > q:
            raise DnsError("NAPTR string length")
        strs.append(bytes(mv[p - n : p]))
    return (order, pref, strs[0], strs[1], strs[2], _rdname(buf, mv, p, q, names))


def _name(buf, mv, p, end, names):
    """Read a (possibly compressed) name at ``p``, reading no byte at or past ``end``.

    Returns (name, offset after it). A pointer must point strictly before the segment it
    continues (RFC 1035 §4.1.4 only allows earlier names); that makes loops impossible.
    And no earlier than the question: the 12 header bytes hold no name.
    """
    start = limit = seg = p
    parts = None  # the text of each run of labels between pointers
    nl = 0  # labels in the current run
    total = 1  # wire octets so far, the root label counted
    nxt = -1  # where parsing resumes after the first pointer
    hi = p  # highest offset read: a cached name is reused only if it fits in ``end``
    suffix = None
    while True:
        if p >= end:
            raise DnsError("name runs past the end")
        n = buf[p]
        if 0 < n < 64:
            total += n + 1
            if total > _MAX_NAME:
                raise DnsError("name too long")
            p += n + 1
            if p > end:
                raise DnsError("label runs past the end")
            nl += 1
            continue
        if nl:
            if parts is None:
                parts = []
            parts.append(_run(mv, seg, p, nl))
        if n == 0:
            p += 1
            break
        if n < 0xC0:
            raise DnsError("bad label type")
        if p + 1 >= end:
            raise DnsError("pointer runs past the end")
        ptr = (n & 0x3F) << 8 | buf[p + 1]
        if nxt < 0:
            nxt = p + 2
        if p + 1 > hi:
            hi = p + 1
        if ptr >= limit:
            raise DnsError("forward or looping pointer")
        if ptr < _HEADER_LEN:  # no name lives in the header: its bytes would read as labels
            raise DnsError("pointer into the header")
        hit = names.get(ptr)
        if hit is not None and hit[2] < end:
            total += hit[1] - 1
            if total > _MAX_NAME:
                raise DnsError("name too long")
            if hit[2] > hi:
                hi = hit[2]
            suffix = hit[0]
            break
        limit = p = seg = ptr
        nl = 0
    if p - 1 > hi:
        hi = p - 1
    if parts is None:
        name = suffix or "."  # a bare pointer: the name is already known, keep no new entry
    else:
        if suffix is not None and suffix != ".":
            parts.append(suffix)
        name = parts[0] if len(parts) == 1 else ".".join(parts)
        names[start] = (name, total, hi)
    return name, (nxt if nxt >= 0 else p)


def _run(mv, a, b, nl):
    """The text of ``nl`` labels at mv[a:b] (length bytes included), dot-separated.

    One copy per run of labels rather than one per label: the length bytes become dots in
    place. A run with bytes outside ASCII, or a dot or backslash of its own, is escaped.
    """
    raw = bytearray(mv[a + 1 : b])
    i = mv[a]  # where the second length byte sits in raw
    while i < len(raw):
        k = raw[i]
        raw[i] = 0x2E
        i += k + 1
    try:
        s = str(raw, "utf-8")
    except UnicodeError:
        s = None
    # ASCII decodes to as many characters as bytes, and then the dots are exactly nl - 1.
    if s is None or len(s) != len(raw) or s.count(".") != nl - 1 or "\\" in s:
        out = []
        while a < b:
            k = mv[a]
            out.append(_escape(mv[a + 1 : a + 1 + k]))
            a += k + 1
        return ".".join(out)
    return s


def _escape(seg):
    out = []
    for b in bytes(seg):
        if b == 0x2E or b == 0x5C:
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append("\\%03d" % b)
    return "".join(out)


def ip6_text(buf, p):
    """16 octets at ``p`` as RFC 5952 text: lower case, the longest zero run as ``::``."""
    g = struct.unpack_from("!8H", buf, p)
    best, blen, i = -1, 1, 0
    while i < 8:
        if g[i]:
            i += 1
            continue
        j = i
        while j < 8 and not g[j]:
            j += 1
        if j - i > blen:
            best, blen = i, j - i
        i = j
    if best < 0:
        return ":".join(["%x" % x for x in g])
    return (":".join(["%x" % x for x in g[:best]]) + "::"
            + ":".join(["%x" % x for x in g[best + blen :]]))
