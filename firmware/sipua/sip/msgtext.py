"""A parsed message read back by name or as text (``Msg.header``, ``Msg.to_bytes``): for
tools, tests and proxies, never on a phone's own path, so loaded only when asked.
"""

from ..compat import const
from .hdr import lookup, name
from .scan import text

_H_OTHER = const(0)  # hdr.py's ids (private: no dict entry; a host test checks them)
_H_CONTENT_LENGTH = const(8)


def header(m, name):
    """``Msg.header``: the first value of a header by name, as str or None."""
    hid = lookup(name.lower().encode())
    if hid != _H_OTHER:
        return m.get(hid)
    name = name.lower().encode()
    h, b = m.h, m.buf
    for k in range(0, len(h), 5):
        if h[k] == _H_OTHER and b[h[k + 1]:h[k + 2]].lower() == name:
            return text(m._value(k))
    return None


def to_bytes(m):
    """``Msg.to_bytes``: serialized again, canonical names, unfolded values, Content-Length
    recomputed."""
    b, h = m.buf, m.h
    if m.status:
        parts = [b"SIP/2.0 %d %s\r\n" % (m.status, m.reason.encode())]
    else:
        parts = [m.method.encode(), b" ", m.ruri, b" SIP/2.0\r\n"]
    for k in range(0, len(h), 5):
        hid = h[k]
        if hid == _H_CONTENT_LENGTH:
            continue
        parts.append(name(hid).encode() if hid else b[h[k + 1]:h[k + 2]])
        parts.append(b": ")
        parts.append(m._value(k))
        parts.append(b"\r\n")
    parts.append(b"Content-Length: %d\r\n\r\n" % (m.be - m.bs))
    parts.append(m.body)
    return b"".join(parts)
