"""SIP/SIPS URIs (RFC 3261 §19.1), parsed only where one is needed whole: the Request-URI
of a request received (``msg.parse``), the checks of the server side and a dialog's next
hop. A phone that registers and calls out parses none, so it never loads this.
"""

from ..compat import const
from .scan import _CT, bad, is_digits, params, scheme_end, text

_TOK = const(1)  # scan.py's character classes and bytes (its consts are not importable)
_DIG = const(4)
_COLON = const(58)
_LBRACK = const(91)


class Uri:
    """A parsed SIP/SIPS URI (other schemes: ``scheme`` and ``raw`` only).

    ``user`` stays %-escaped as received: a phone compares and echoes it, never needs it
    unescaped.
    """

    __slots__ = ("raw", "scheme", "user", "password", "host", "port", "params", "headers")

    def __init__(self):
        self.raw = ""
        self.scheme = ""
        self.user = None
        self.password = None
        self.host = ""
        self.port = None
        self.params = {}
        self.headers = None

    def is_sip(self):
        return self.scheme == "sip" or self.scheme == "sips"

    def __str__(self):
        return self.raw


def parse_uri(s):
    """bytes -> Uri; raises SipError(400) on a malformed SIP URI or a missing scheme."""
    c = scheme_end(s)
    if c < 1:
        raise bad("Bad URI")
    for ch in s:
        if ch <= 32 or ch in b"<>\"":
            raise bad("Bad character in URI")
    u = Uri()
    u.raw = text(s)
    u.scheme = text(s[:c]).lower()
    if not u.is_sip():
        return u
    i = c + 1
    n = len(s)
    at = s.find(b"@", i)
    if at >= 0:
        colon = s.find(b":", i, at)
        if colon >= 0:
            u.user = text(s[i:colon])
            u.password = text(s[colon + 1:at])
        else:
            u.user = text(s[i:at])
        if not u.user:
            raise bad("Empty user in URI")
        i = at + 1
    if i < n and s[i] == _LBRACK:
        e = s.find(b"]", i)
        if e < 0:
            raise bad("Bad IPv6 reference")
        e += 1
    else:
        e = i
        while e < n and s[e] not in b":;?":
            e += 1
    if e == i:
        raise bad("Empty host in URI")
    for ch in s[i:e]:
        if not ((ch < 128 and _CT[ch] & (_TOK | _DIG)) or ch in b"[]:"):
            raise bad("Bad host in URI")
    u.host = text(s[i:e])
    i = e
    if i < n and s[i] == _COLON:
        e = i + 1
        while e < n and s[e] not in b";?":
            e += 1
        if not is_digits(s[i + 1:e]) or e - i > 6:
            raise bad("Bad port in URI")
        u.port = int(s[i + 1:e])
        if u.port > 65535:
            raise bad("Bad port in URI")
        i = e
    q = s.find(b"?", i)
    if q >= 0:
        u.headers = text(s[q + 1:])
        n = q
    if i < n:
        u.params, e = params(s[:n], i)
        if e != n:
            raise bad("Bad URI parameter")
    return u
