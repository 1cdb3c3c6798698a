"""Addresses as text, one way for the firmware and the host tools: IPv4 ``1.2.3.4``, IPv6
``fd00::1`` (in brackets when a port follows: ``[::1]:5060``), host names (RFC 1123, a
trailing dot allowed), ports 1..65535. ASCII digits only (``str.isdigit`` takes ``²``)."""


def _num(s, top):
    """``s`` as an int in 0..top, else -1."""
    if not s or len(s) > 5 or s.strip("0123456789"):
        return -1
    n = int(s)
    return n if n <= top else -1


def ipv4(text):
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if len(p) > 3 or _num(p, 255) < 0:
            return False
    return True


def ipv6(text):
    """RFC 4291 2.2 text: eight groups of 1-4 hex digits, one '::' for a run of zero
    groups (no dotted IPv4 tail: the resolver takes none)."""
    halves = text.split("::")
    if len(halves) > 2:
        return False
    n = 0
    for half in halves:
        if half:
            for g in half.split(":"):
                if not 0 < len(g) <= 4 or g.strip("0123456789abcdefABCDEF"):
                    return False
                n += 1
    return n < 8 if len(halves) == 2 else n == 8


def is_ip(text):
    return ipv4(text) or ipv6(text)


def name(text):
    """A host name: not an address ("300.1.1.1" and "1" are bad addresses, RFC 1123 2.1)."""
    if not text or len(text) > 253:
        return False
    labels = text.rstrip(".").split(".")
    if not labels[-1].strip("0123456789"):
        return False
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        for ch in label:
            if not (ch.isalpha() or ch.isdigit() or ch in "-_") or ord(ch) > 127:
                return False
    return True


def host(text):
    """Any host: an IP address or a name."""
    return is_ip(text) or name(text)


def hostport(text, port=None, ok=host):
    """'host', 'host:5060', '[::1]:53', '::1' -> (host, port), ``port`` when the text has
    none; ``ok(host)`` must hold (``is_ip``: addresses only). Raises ValueError with the
    reason."""
    h = text
    if text[:1] == "[":
        end = text.find("]")
        if end < 0:
            raise ValueError("unclosed '[' in %r" % text)
        h, rest = text[1:end], text[end + 1 :]
        if rest:
            if rest[0] != ":":
                raise ValueError("expected ':port' after ']' in %r" % text)
            port = rest[1:]
    elif text.count(":") == 1:
        h, port = text.split(":")
    if isinstance(port, str):
        port = _num(port, 65535)
        if port < 1:
            raise ValueError("bad port in %r" % text)
    if not ok(h):
        raise ValueError("bad host in %r" % text)
    return h, port
