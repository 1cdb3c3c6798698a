"""Header names as small ints: the one place that knows spellings and compact forms.

The parser maps every header name to an id once (case-insensitively, compact forms
included); everything above it compares ints. ``name(id)`` is the canonical spelling used
when writing. Unknown headers get ``_H_OTHER`` and keep their own name.
"""

from ..compat import const

_H_OTHER = const(0)
H_VIA = const(1)
H_FROM = const(2)
H_TO = const(3)
H_CALL_ID = const(4)
H_CSEQ = const(5)
_H_MAX_FORWARDS = const(6)
_H_CONTACT = const(7)
_H_CONTENT_LENGTH = const(8)
_H_CONTENT_TYPE = const(9)
_H_WWW_AUTHENTICATE = const(10)
_H_PROXY_AUTHENTICATE = const(11)
_H_AUTHORIZATION = const(12)
_H_PROXY_AUTHORIZATION = const(13)
_H_ROUTE = const(14)
H_RECORD_ROUTE = const(15)
_H_RETRY_AFTER = const(16)
_H_MIN_EXPIRES = const(17)
_H_EXPIRES = const(18)
_H_REQUIRE = const(19)
_H_PROXY_REQUIRE = const(20)
_H_SUPPORTED = const(21)
_H_UNSUPPORTED = const(22)
_H_ALLOW = const(23)
_H_ACCEPT = const(24)
_H_CONTENT_ENCODING = const(25)
_H_SUBJECT = const(26)
_H_EVENT = const(27)
_H_ALLOW_EVENTS = const(28)
_H_REFER_TO = const(29)
_H_REFERRED_BY = const(30)
_H_SESSION_EXPIRES = const(31)
_H_USER_AGENT = const(32)
_H_SERVER = const(33)
_H_ACCEPT_ENCODING = const(34)
_H_ACCEPT_LANGUAGE = const(35)
_H_CONTENT_DISPOSITION = const(36)
_H_WARNING = const(37)
_H_DATE = const(38)
_H_TIMESTAMP = const(39)
_H_AUTHENTICATION_INFO = const(40)
_H_IDENTITY = const(41)
_H_REASON = const(42)

# Every header name as spelled when written, each after its id + 128 (a byte no header name
# holds): one bytes constant where a tuple of names cost a str object each. ``name(id)``
# reads one back; ``_find`` looks names up in it.
_TABLE = (
    b"\x81Via\x82From\x83To\x84Call-ID\x85CSeq\x86Max-Forwards\x87Contact"
    b"\x88Content-Length\x89Content-Type\x8aWWW-Authenticate\x8bProxy-Authenticate"
    b"\x8cAuthorization\x8dProxy-Authorization\x8eRoute\x8fRecord-Route\x90Retry-After"
    b"\x91Min-Expires\x92Expires\x93Require\x94Proxy-Require\x95Supported"
    b"\x96Unsupported\x97Allow\x98Accept\x99Content-Encoding\x9aSubject\x9bEvent"
    b"\x9cAllow-Events\x9dRefer-To\x9eReferred-By\x9fSession-Expires\xa0User-Agent"
    b"\xa1Server\xa2Accept-Encoding\xa3Accept-Language\xa4Content-Disposition"
    b"\xa5Warning\xa6Date\xa7Timestamp\xa8Authentication-Info\xa9Identity\xaaReason"
)

# RFC 3261 §7.3.3 and later RFCs' compact forms, each a letter then its id as a byte
# (v Via, f From, t To, i Call-ID, m Contact, l Content-Length, c Content-Type, k Supported,
# s Subject, e Content-Encoding, o Event, u Allow-Events, r Refer-To, b Referred-By,
# x Session-Expires, y Identity): one bytes object, no dict. The only place they are
# known.
_COMPACT = (b"v\x01f\x02t\x03i\x04m\x07l\x08c\x09k\x15s\x1ae\x19o\x1bu\x1cr\x1db\x1ex\x1f"
            b"y\x29")

# Headers whose value is a comma-separated list (RFC 3261 §7.3.1): one header line may
# carry several values and the same header may repeat; both read the same.
_LISTS = (
    H_VIA, _H_CONTACT, _H_ROUTE, H_RECORD_ROUTE, _H_REQUIRE, _H_PROXY_REQUIRE, _H_SUPPORTED,
    _H_UNSUPPORTED, _H_ALLOW, _H_ACCEPT, _H_CONTENT_ENCODING, _H_ALLOW_EVENTS, _H_ACCEPT_ENCODING,
    _H_ACCEPT_LANGUAGE, _H_WARNING,
)

# The table in lower case, built on first use (~0.5 KB): ``lookup`` finds lower-cased names
# in it, ``lookup_exact`` finds names as spelled in ``_TABLE`` itself; no copy of the name.
_low = None


def name(hid):
    """The canonical spelling of header id ``hid`` (str; "" for an unknown header)."""
    t = _TABLE
    i = t.find(bytes((128 + hid,))) + 1 if hid else 0
    e = i
    while 0 < e < len(t) and t[e] < 128:
        e += 1
    return t[i:e].decode()


def _find(t, name):
    """The id of header name ``name`` (bytes) as a whole entry of table ``t``, or -1."""
    n = len(name)
    if not n or max(name) >= 128:  # no header name has such a byte: never span two entries
        return -1
    end = len(t)
    i = t.find(name)
    while i > 0:
        if t[i - 1] >= 128 and (i + n == end or t[i + n] >= 128):
            return t[i - 1] - 128
        i = t.find(name, i + 1)
    return -1


def lookup(name):
    """The id of a lower-cased header name (bytes); 0 when unknown."""
    global _low
    if len(name) == 1:
        i = _COMPACT.find(name)  # letters only: ids are all below b"a"
        return _COMPACT[i + 1] if i >= 0 else _H_OTHER
    if _low is None:
        _low = _TABLE.lower()
    i = _find(_low, name)
    return i if i > 0 else _H_OTHER


def lookup_exact(name):
    """The id of a header spelled as ``name`` has it, or -1: then lower it and use
    ``lookup``. The usual spelling thus costs no lower-case copy."""
    return _find(_TABLE, name) if len(name) > 1 else -1
