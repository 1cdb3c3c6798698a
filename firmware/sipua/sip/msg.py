"""SIP messages: parsing into offsets, and building requests/responses (a stream's framing
is ``stream.frame``: a UDP-only phone never needs it).

A parsed ``Msg`` is one ``bytes`` object plus a flat list of small ints: per header
``(id, name_start, name_end, value_start, value_end)``. Values are sliced, unfolded and
decoded only when asked for. The few fields every layer needs (top Via, Call-ID, CSeq,
tags) are checked and kept at parse time; a message failing those checks is malformed.

Two outcomes are kept apart: ``stream.frame()`` answers "need more bytes"
(``NEED_MORE``) for a stream, while a malformed message raises ``SipError`` whose ``code``
is the answer to send (400, 505, 513) and whose ``msg`` is the partly parsed message when
the header structure allowed it, so a server can still copy Via/From/To/Call-ID/CSeq.
"""

from ..compat import const
from . import SipError
from .hdr import _LISTS, lookup, lookup_exact, name
from .scan import is_digits, is_token, parse_name_addr, parse_via, split_list, text

# hdr.py's ids, as private consts: an imported name costs a dict entry here (the
# tests check they match hdr's)
_H_VIA = const(1)
_H_FROM = const(2)
_H_TO = const(3)
_H_CALL_ID = const(4)
_H_CSEQ = const(5)
_H_MAX_FORWARDS = const(6)
_H_CONTACT = const(7)
_H_CONTENT_LENGTH = const(8)
_H_CONTENT_TYPE = const(9)
_H_EXPIRES = const(18)

# Reasons, numbers in reasons.py's _REASONS (tests/host/test_sip_msg_ids.py checks)
_R_MESSAGE_TOO_LARGE = const(10)
_R_BAD_CONTENT_LENGTH = const(11)
_R_BAD_START_LINE = const(12)
_R_NO_END_OF_HEADERS = const(13)
_R_HEADER_LINE_TOO_LONG = const(14)
_R_BAD_FOLDING = const(15)
_R_HEADER_WITHOUT_COLON = const(16)
_R_BAD_HEADER_NAME = const(17)
_R_TOO_MANY_HEADERS = const(18)
_R_CONTENT_LENGTH_LARGER_THAN_BODY = const(19)
_R_REQUEST_ENTITY_TOO_LARGE = const(20)
_R_BAD_STATUS_LINE = const(21)
_R_BAD_STATUS_CODE = const(22)
_R_MISSING_VIA = const(23)
_R_MISSING_CSEQ = const(24)
_R_MISSING_OR_BAD_CALL_ID = const(25)
_R_MISSING_FROM_OR_TO = const(26)
_R_BAD_MAX_FORWARDS = const(27)
_R_BAD_EXPIRES = const(28)

# Headers that may appear once; a second one makes the message ambiguous (RFC 4475 3.3.8).
# One bit per header id: Call-ID, CSeq, From, To, Max-Forwards, Content-Length, Content-Type,
# Expires (a const: no tuple on the heap).
_SINGLE = const(1 << 4 | 1 << 5 | 1 << 2 | 1 << 3 | 1 << 6 | 1 << 8 | 1 << 9 | 1 << 18)


class Limits:
    """Bounded input, in one visible place (cf. microdot's Request.max_*). Tunable."""

    # Whole message, bytes -> 513 Message Too Large. A phone's INVITE with SDP and a few
    # proxies' Via/Record-Route stays well under it (RFC 4475's longreq is 3.5 KB); every
    # UDP read needs this much contiguous heap, which an ESP32's ~100 KB cannot spare twice.
    max_msg = 4096
    max_headers = 64  # header lines -> 513
    # one header line (before unfolding) -> 513. A registrar lists every binding of the
    # address of record in one Contact line of its 200: a user with a dozen devices is ~2 KB.
    max_line = 4096
    max_body = 4096  # -> 413 Request Entity Too Large


LIMITS = Limits()


class Msg:
    __slots__ = (
        "buf", "status", "method", "ruri", "reason", "h", "bs", "be", "via", "call_id",
        "cseq", "cseq_method", "from_tag", "to_tag", "src", "flow",
    )

    def __init__(self, buf):
        self.buf = buf
        self.status = 0  # 0 for a request
        self.method = ""
        self.ruri = b""
        self.reason = ""
        self.h = []
        self.bs = self.be = len(buf)
        self.via = None
        self.call_id = None
        self.cseq = -1
        self.cseq_method = ""
        self.from_tag = None
        self.to_tag = None
        self.src = None  # (ip, port) it came from; set by the transport
        self.flow = None  # the transport flow it came on

    # -- header access ---------------------------------------------------------------------
    def _value(self, k):
        h = self.h
        b = self.buf[h[k + 3]:h[k + 4]]
        if b.find(b"\r\n") >= 0:
            b = b.replace(b"\r\n", b"")  # unfold: the white space after the CRLF remains
        return b.strip()

    def first(self, hid):
        """The first value of header ``hid`` as bytes, or None."""
        h = self.h
        for k in range(0, len(h), 5):
            if h[k] == hid:
                return self._value(k)
        return None

    def get(self, hid, default=None):
        v = self.first(hid)
        return default if v is None else text(v)

    def all(self, hid):
        """Every line of header ``hid``, as bytes values."""
        h = self.h
        return [self._value(k) for k in range(0, len(h), 5) if h[k] == hid]

    def values(self, hid):
        """All values of a list header (repeated lines and commas read alike), as bytes."""
        out = []  # type: list
        for v in self.all(hid):
            if hid in _LISTS:  # comma-separated values (RFC 3261 §7.3.1)
                out.extend(x for x in split_list(v) if x)
            else:
                out.append(v)
        return out

    def header(self, name):
        """First value of a header by name (for ones without an id), as str or None."""
        from .msgtext import header

        return header(self, name)

    def int(self, hid, default=None):
        """A numeric header (Expires, Min-Expires, Retry-After's seconds); None if bad."""
        v = self.first(hid)
        if v is None:
            return default
        e = 0
        while e < len(v) and 48 <= v[e] <= 57:
            e += 1
        if e == 0 or e > 10:
            return default
        return int(v[:e])

    def name_addr(self, hid):
        v = self.first(hid)
        return None if v is None else parse_name_addr(v)

    def contacts(self):
        """Contact values as NameAddr; None stands for ``*``."""
        return [parse_name_addr(v, True) for v in self.values(_H_CONTACT)]

    @property
    def body(self):
        return self.buf[self.bs:self.be]

    def to_bytes(self):
        """Serialize again: canonical names, unfolded values, Content-Length recomputed."""
        from .msgtext import to_bytes

        return to_bytes(self)


def parse(b, udp=True, limits=LIMITS):
    """bytes -> Msg, or raise SipError. ``udp``: a datagram (body = rest when no
    Content-Length, extra bytes after the body ignored) rather than one framed stream
    message."""
    n = len(b)
    e = b.find(b"\r\n", 0, limits.max_line)
    if e <= 0:
        raise SipError(400, _R_BAD_START_LINE)
    m = Msg(b)
    line_end = e
    h = m.h
    p = e + 2
    while True:
        e = b.find(b"\r\n", p)
        if e < 0:
            if n > limits.max_msg:
                raise SipError(513, _R_MESSAGE_TOO_LARGE, m)
            raise SipError(400, _R_NO_END_OF_HEADERS, m)
        if e == p:
            break
        if e - p > limits.max_line:
            raise SipError(513, _R_HEADER_LINE_TOO_LONG, m)
        c = b[p]
        if c == 32 or c == 9:  # a folded line continues the previous value
            if not h:
                raise SipError(400, _R_BAD_FOLDING)
            h[-1] = e
        else:
            colon = b.find(b":", p, e)
            if colon < 0:
                raise SipError(400, _R_HEADER_WITHOUT_COLON, m)
            ne = colon
            while ne > p and (b[ne - 1] == 32 or b[ne - 1] == 9):
                ne -= 1
            hn = b[p:ne]
            if not is_token(hn):
                raise SipError(400, _R_BAD_HEADER_NAME, m)
            vs = colon + 1
            while vs < e and (b[vs] == 32 or b[vs] == 9):
                vs += 1
            hid = lookup_exact(hn)  # the usual spelling costs no lower-case copy
            if hid < 0:
                hid = lookup(hn.lower())
            h.extend((hid, p, ne, vs, e))
            if len(h) > 5 * limits.max_headers:
                raise SipError(513, _R_TOO_MANY_HEADERS, m)
        p = e + 2
    m.bs = bs = e + 2
    _start_line(m, b, line_end)
    # Size is judged once the headers are known, so that even 513 can be answered; the
    # header loop above is bounded by max_line and max_headers.
    if n > limits.max_msg:
        raise SipError(513, _R_MESSAGE_TOO_LARGE, m)
    seen = 0  # one bit per header id of _SINGLE seen so far
    for k in range(0, len(h), 5):
        hid = h[k]
        if _SINGLE >> hid & 1:
            if seen & (1 << hid):
                raise SipError(400, "Duplicate " + name(hid), m)
            seen |= 1 << hid
    cl = m.first(_H_CONTENT_LENGTH)
    if cl is None:
        if not udp:
            m.be = bs  # RFC 3261 §18.3: on a stream a missing Content-Length means none
    else:
        if not is_digits(cl) or len(cl) > 9:
            raise SipError(400, _R_BAD_CONTENT_LENGTH, m)
        ln = int(cl)
        if bs + ln > n:
            raise SipError(400, _R_CONTENT_LENGTH_LARGER_THAN_BODY, m)
        m.be = bs + ln
    if m.be - bs > limits.max_body:
        raise SipError(413, _R_REQUEST_ENTITY_TOO_LARGE, m)
    _core(m)
    return m


def _start_line(m, b, e):
    line = b[:e]
    if line.startswith(b"SIP/"):
        m.status = 1  # a response, even if its status line is bad: never answered
        parts = line.split(b" ", 2)
        if len(parts) < 3 or parts[0] != b"SIP/2.0":
            raise SipError(400, _R_BAD_STATUS_LINE, m)
        code = parts[1]
        if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
            raise SipError(400, _R_BAD_STATUS_CODE, m)
        m.status = int(code)
        m.reason = text(parts[2])
        return
    from .strans import request_line  # requests only: a registering phone receives none

    request_line(m, line)


def _core(m):
    """Check and keep the headers every layer relies on."""
    v = m.first(_H_VIA)
    if v is None:
        raise SipError(400, _R_MISSING_VIA, m)
    try:
        m.via = parse_via(split_list(v)[0])
    except SipError as e:
        e.msg = m
        raise
    cs = m.first(_H_CSEQ)
    if cs is None:
        raise SipError(400, _R_MISSING_CSEQ, m)
    parts = cs.split()
    if len(parts) != 2 or not is_digits(parts[0]) or len(parts[0]) > 10 or \
            not is_token(parts[1]):
        raise SipError(400, "Bad CSeq", m)
    m.cseq = int(parts[0])
    if m.cseq > 2147483647:  # RFC 3261 §8.1.1.5: less than 2**31
        raise SipError(400, "Bad CSeq", m)
    m.cseq_method = text(parts[1])
    cid = m.first(_H_CALL_ID)
    if not cid or len(cid.split()) != 1:
        raise SipError(400, _R_MISSING_OR_BAD_CALL_ID, m)
    m.call_id = text(cid)
    fr = m.first(_H_FROM)
    to = m.first(_H_TO)
    if fr is None or to is None:
        raise SipError(400, _R_MISSING_FROM_OR_TO, m)
    m.from_tag = _parse_na(fr, m).tag
    m.to_tag = _parse_na(to, m).tag
    mf = m.first(_H_MAX_FORWARDS)
    if mf is not None and (not is_digits(mf) or len(mf) > 5 or int(mf) > 255):
        raise SipError(400, _R_BAD_MAX_FORWARDS, m)
    ex = m.first(_H_EXPIRES)
    if ex is not None and (not is_digits(ex) or len(ex) > 10 or int(ex) > 4294967295):
        raise SipError(400, _R_BAD_EXPIRES, m)
    for c in m.values(_H_CONTACT):
        _parse_na(c, m, True)


def _parse_na(v, m, star_ok=False):
    try:
        return parse_name_addr(v, star_ok)
    except SipError as e:
        e.msg = m
        raise


# -- building (responses: sip/strans.py, loaded with the first request) ---------------------
def tail(out, headers, body, content_type):
    """Extra headers, Content-Type, Content-Length and the body, appended to ``out``."""
    if headers:
        for name, value in headers:
            out.append(("%s: %s\r\n" % (name, value)).encode())
    if body and content_type:
        out.append(("Content-Type: %s\r\n" % content_type).encode())
    out.append(b"Content-Length: %d\r\n\r\n" % len(body))
    if body:
        out.append(body)


class Request:
    """An outgoing request owned by the agent. The stack writes the Via (one new branch per
    transaction) and Max-Forwards each time it sends, so the same object is sent again
    after a 401 (with ``cseq`` + 1 and an Authorization header) or to the next target.

    ``headers`` holds the other headers as (name, value) str pairs in order; ``set()``
    replaces one by name.
    """

    def __init__(self, method, uri, from_uri, to_uri, call_id, cseq=1, from_tag=None,
                 to_tag=None, contact=None, headers=None, body=b"", content_type=None,
                 from_display=None):
        self.method = method
        self.uri = uri
        self.from_uri = from_uri
        self.from_display = from_display
        self.from_tag = from_tag
        self.to_uri = to_uri
        self.to_tag = to_tag
        self.call_id = call_id
        self.cseq = cseq
        self.contact = contact
        self.headers = headers if headers is not None else []
        self.body = body
        self.content_type = content_type

    def set(self, name, value):
        """Replace header ``name`` (or add it at the end); value None removes it."""
        low = name.lower()
        hs = [x for x in self.headers if x[0].lower() != low]
        if value is not None:
            hs.append((name, value))
        self.headers = hs

    def get(self, name):
        low = name.lower()
        for n, v in self.headers:
            if n.lower() == low:
                return v
        return None

    def _from(self):
        s = "<%s>" % self.from_uri
        if self.from_display:
            s = '"%s" %s' % (self.from_display.replace("\\", "\\\\").replace('"', '\\"'), s)
        if self.from_tag:
            s += ";tag=" + self.from_tag
        return s

    def _to(self):
        s = "<%s>" % self.to_uri
        return s + ";tag=" + self.to_tag if self.to_tag else s

    def encode(self, via, user_agent=None):
        out = ["%s %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\n"
               "Call-ID: %s\r\nCSeq: %d %s\r\n" % (
                   self.method, self.uri, via, self._from(), self._to(), self.call_id,
                   self.cseq, self.method)]
        if self.contact:
            out.append("Contact: %s\r\n" % self.contact)
        if user_agent:
            out.append("User-Agent: %s\r\n" % user_agent)
        parts = ["".join(out).encode()]
        tail(parts, self.headers, self.body, self.content_type)
        return b"".join(parts)
