"""Byte-level lexing of header values: tokens, quoted strings, parameters, URIs, Via.

Everything works on ``bytes`` with integer positions (indexing bytes yields small ints: no
allocation); only the leaves a caller keeps (a tag, a branch, a host) are decoded to
``str``. Any syntax error raises ``SipError(400, reason)``, never a stray IndexError.
Values reaching here are already unfolded (``msg`` removes the CRLF of folded lines).
"""

from ..compat import const
from . import SipError

# Character classes for bytes 0..127 (>= 128 is none): 1 token, 2 white space, 4 digit.
_CT = (
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x02\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x01\x00\x00\x00\x01\x00\x01\x00\x00"
    b"\x01\x01\x00\x01\x01\x00\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x00\x00\x00\x00\x00"
    b"\x00\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
    b"\x01\x01\x01\x01\x01\x01\x01\x00\x00\x00\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
    b"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x00\x00"
    b"\x01\x00"
)
# Reasons, numbers in reasons.py's _REASONS (tests/host/test_sip_msg_ids.py checks)
_R_UNTERMINATED_QUOTED_STRING = const(0)
_R_EMPTY_PARAMETER = const(1)
_R_EMPTY_PARAMETER_VALUE = const(2)
_R_MISSING_AFTER_DISPLAY_NAME = const(3)
_R_BAD_DISPLAY_NAME = const(4)
_R_JUNK_AFTER_NAME_ADDR = const(5)
_R_BAD_VIA_PROTOCOL = const(6)
_R_BAD_VIA_VERSION = const(7)
_R_BAD_VIA_HOST = const(8)
_R_BAD_VIA_PORT = const(9)

# consts: no dict entries (uri.py repeats the ones it needs)
_TOK = const(1)
_WS = const(2)
_DIG = const(4)
_QUOTE = const(34)  # "
_BSLASH = const(92)
_SEMI = const(59)
_COMMA = const(44)
_EQ = const(61)
_LT = const(60)
_GT = const(62)
_COLON = const(58)
_SLASH = const(47)
_LBRACK = const(91)


def bad(reason):
    return SipError(400, reason)


def text(b):
    """bytes -> str; malformed UTF-8 is a malformed message, not a crash."""
    try:
        return str(b, "utf-8")
    except UnicodeError:
        raise bad("Bad UTF-8") from None


def is_token(b):
    if not b:
        return False
    for c in b:
        if c >= 128 or not _CT[c] & _TOK:
            return False
    return True


def is_digits(b):
    if not b:
        return False
    for c in b:
        if c >= 128 or not _CT[c] & _DIG:
            return False
    return True


def ws(s, i):
    """Skip white space (LWS after unfolding) from i."""
    n = len(s)
    while i < n and s[i] < 128 and _CT[s[i]] & _WS:
        i += 1
    return i


def token_end(s, i):
    n = len(s)
    while i < n and s[i] < 128 and _CT[s[i]] & _TOK:
        i += 1
    return i


def quoted_end(s, i):
    """s[i] is a double quote: the index just after the closing one (escapes honoured)."""
    n = len(s)
    i += 1
    while i < n:
        c = s[i]
        if c == _BSLASH:
            i += 2
            continue
        if c == _QUOTE:
            return i + 1
        i += 1
    raise bad(_R_UNTERMINATED_QUOTED_STRING)


def unquote(b):
    """The content of a quoted string (with its quotes), escapes removed."""
    b = b[1:-1]
    if b.find(b"\\") < 0:
        return b
    out = bytearray()
    i, n = 0, len(b)
    while i < n:
        if b[i] == _BSLASH and i + 1 < n:
            i += 1
        out.append(b[i])
        i += 1
    return bytes(out)


def split_list(s):
    """A comma-separated header value -> stripped items (commas in quotes or <> kept)."""
    out = []
    i, n, start, depth = 0, len(s), 0, 0
    while i < n:
        c = s[i]
        if c == _QUOTE:
            i = quoted_end(s, i)
            continue
        if c == _LT:
            depth += 1
        elif c == _GT and depth:
            depth -= 1
        elif c == _COMMA and not depth:
            out.append(s[start:i].strip())
            start = i + 1
        i += 1
    out.append(s[start:].strip())
    return out


def value_end(s, i):
    """End of an unquoted parameter value (token, host, IPv6 reference): white space or
    one of ``;,<>"?``."""
    n = len(s)
    while i < n:
        c = s[i]
        if c < 128 and (_CT[c] & _WS or c in b";,<>\"?"):
            break
        i += 1
    return i


def params(s, i, sep=_SEMI):
    """``*( SEMI name [= value] )`` from i -> (dict, i). Names are lower-case str.

    A flag parameter (no ``=``) maps to None; a quoted value maps to its unquoted text.
    LWS is allowed around the separator and the ``=`` (RFC 3261 §25.1). With
    ``sep=_COMMA`` it reads digest auth-params instead.
    """
    out = {}  # type: dict
    n = len(s)
    first = sep == _COMMA
    while True:
        i = ws(s, i)
        if i >= n:
            return out, i
        if first:
            first = False
        elif s[i] == sep:
            i = ws(s, i + 1)
        else:
            return out, i
        e = token_end(s, i)
        if e == i:
            raise bad(_R_EMPTY_PARAMETER)
        name = text(s[i:e]).lower()
        i = ws(s, e)
        value = None
        if i < n and s[i] == _EQ:
            i = ws(s, i + 1)
            if i < n and s[i] == _QUOTE:
                e = quoted_end(s, i)
                value = text(unquote(s[i:e]))
            else:
                e = value_end(s, i)
                if e == i:
                    raise bad(_R_EMPTY_PARAMETER_VALUE)
                value = text(s[i:e])
            i = e
        out[name] = value


def scheme_end(s):
    """Index of the ':' after a valid URI scheme, or -1."""
    n = len(s)
    if not n or not (65 <= (s[0] | 32) - 32 <= 90 or 97 <= s[0] <= 122):
        return -1
    i = 1
    while i < n:
        c = s[i]
        if c == _COLON:
            return i
        if not (97 <= c | 32 <= 122 or 48 <= c <= 57 or c in b"+-."):
            return -1
        i += 1
    return -1


class NameAddr:
    """From/To/Contact/Route: ``display <uri>;params`` or ``uri;params``."""

    __slots__ = ("display", "uri", "params")

    def __init__(self, display, uri, params):
        self.display = display
        self.uri = uri  # bytes of the URI, parsed on demand with parse_uri
        self.params = params

    @property
    def tag(self):
        return self.params.get("tag")


def parse_name_addr(s, star_ok=False):
    """bytes -> NameAddr; ``*`` (Contact: *) -> None when star_ok."""
    n = len(s)
    i = ws(s, 0)
    if star_ok and s[i:].strip() == b"*":
        return None
    display = None
    lt = -1
    if i < n and s[i] == _QUOTE:
        e = quoted_end(s, i)
        display = text(unquote(s[i:e]))
        lt = ws(s, e)
        if lt >= n or s[lt] != _LT:
            raise bad(_R_MISSING_AFTER_DISPLAY_NAME)
    else:
        j = i
        while j < n and s[j] != _LT:
            c = s[j]
            if c == _SEMI or c == _QUOTE:
                break
            j += 1
        if j < n and s[j] == _LT:
            lt = j
            d = s[i:j].strip()
            for word in d.split():
                if not is_token(word):
                    raise bad(_R_BAD_DISPLAY_NAME)
            display = text(d) if d else None
    if lt >= 0:
        gt = s.find(b">", lt)
        if gt < 0:
            raise bad("Missing >")
        uri = s[lt + 1:gt].strip()
        i = gt + 1
    else:
        e = i
        while e < n and s[e] != _SEMI and not (s[e] < 128 and _CT[s[e]] & _WS):
            e += 1
        uri = s[i:e]
        i = e
    if scheme_end(uri) < 1:
        raise bad("Bad URI")
    p, i = params(s, i)
    if ws(s, i) != n:
        raise bad(_R_JUNK_AFTER_NAME_ADDR)
    return NameAddr(display, uri, p)


class Via:
    __slots__ = ("transport", "host", "port", "params", "raw")

    def __init__(self, raw):
        self.raw = raw
        self.transport = ""
        self.host = ""
        self.port = None
        self.params = {}  # type: dict

    @property
    def branch(self):
        return self.params.get("branch")


def parse_via(s):
    """One via-parm: ``SIP / 2.0 / UDP host[:port] *(;param)``, LWS allowed around '/'."""
    n = len(s)
    parts = []
    i = ws(s, 0)
    for k in range(3):
        e = token_end(s, i)
        if e == i:
            raise bad(_R_BAD_VIA_PROTOCOL)
        parts.append(s[i:e])
        i = ws(s, e)
        if k < 2:
            if i >= n or s[i] != _SLASH:
                raise bad(_R_BAD_VIA_PROTOCOL)
            i = ws(s, i + 1)
    if parts[0].upper() != b"SIP" or parts[1] != b"2.0":
        raise bad(_R_BAD_VIA_VERSION)
    v = Via(s)
    v.transport = text(parts[2]).upper()
    if i < n and s[i] == _LBRACK:
        e = s.find(b"]", i)
        if e < 0:
            raise bad(_R_BAD_VIA_HOST)
        e += 1
    else:
        e = i
        while e < n and s[e] < 128 and _CT[s[e]] & (_TOK | _DIG):
            e += 1
    if e == i:
        raise bad(_R_BAD_VIA_HOST)
    v.host = text(s[i:e])
    i = ws(s, e)
    v.port = None
    if i < n and s[i] == _COLON:
        i = ws(s, i + 1)
        e = i
        while e < n and s[e] < 128 and _CT[s[e]] & _DIG:
            e += 1
        if e == i or e - i > 5 or int(s[i:e]) > 65535:
            raise bad(_R_BAD_VIA_PORT)
        v.port = int(s[i:e])
        i = e
    v.params, i = params(s, i)
    if i != n:
        raise bad("Bad Via")
    return v
