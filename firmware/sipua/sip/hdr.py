"""Header names as small ints: the one place that knows spellings and compact forms.

The parser maps every header name to an id once (case-insensitively, compact forms
included); everything above it compares ints. ``NAMES[id]`` is the canonical spelling used
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

NAMES = (
    "", "Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Contact", "Content-Length",
    "Content-Type", "WWW-Authenticate", "Proxy-Authenticate", "Authorization",
    "Proxy-Authorization", "Route", "Record-Route", "Retry-After", "Min-Expires", "Expires",
    "Require", "Proxy-Require", "Supported", "Unsupported", "Allow", "Accept",
    "Content-Encoding", "Subject", "Event", "Allow-Events", "Refer-To", "Referred-By",
    "Session-Expires", "User-Agent", "Server", "Accept-Encoding", "Accept-Language",
    "Content-Disposition", "Warning", "Date", "Timestamp", "Authentication-Info", "Identity",
    "Reason",
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

# Every name of NAMES twice, as spelled and lower-case, each after its id + 128 (a byte no
# header name holds): b"\x81Via\x82From...\x81via\x82from...". Built on first use; about
# 1 KB where two dicts of bytes keys took nearly 4. A lookup is a find() in it, no copy.
_table = None


def _find(name):
    """The id of header name ``name`` (bytes) as a whole entry of the table, or -1."""
    global _table
    if _table is None:
        t = bytearray()
        for i in range(1, len(NAMES)):
            t.append(128 + i)
            t.extend(NAMES[i].encode())
        _table = bytes(t) + bytes(t).lower()
    n = len(name)
    if not n or max(name) >= 128:  # no header name has such a byte: never span two entries
        return -1
    end = len(_table)
    i = _table.find(name)
    while i > 0:
        if _table[i - 1] >= 128 and (i + n == end or _table[i + n] >= 128):
            return _table[i - 1] - 128
        i = _table.find(name, i + 1)
    return -1


def lookup(name):
    """The id of a lower-cased header name (bytes); 0 when unknown."""
    if len(name) == 1:
        i = _COMPACT.find(name)  # letters only: ids are all below b"a"
        return _COMPACT[i + 1] if i >= 0 else _H_OTHER
    i = _find(name)
    return i if i > 0 else _H_OTHER


def lookup_exact(name):
    """The id of a header spelled as NAMES has it (or all lower-case), or -1: then lower it
    and use ``lookup``. The usual spelling thus costs no lower-case copy."""
    return _find(name) if len(name) > 1 else -1
