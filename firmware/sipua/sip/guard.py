"""``sip.accept_from: servers`` (the default; desk phones' "accept SIP from trusted servers
only"): a request whose source is not one of the phone's servers — the registrars and
outbound proxies of its accounts, as the locator gave their addresses — is dropped without
an answer: no 200 to a scanner's OPTIONS, no ring for a stranger's INVITE. Responses are
not filtered (they only ever match a transaction the phone started). The test is
``uas.stranger``; this module, loaded with the first stranger, counts the drops
(``status`` → ``strangers``) and logs once per source per minute: the sources logged in
the current minute are remembered (at most 16; past that, new ones are counted, not logged).
"""

from ..compat import const

_MINUTE_MS = const(60000)
_SOURCES = const(16)
_seen = {}  # the sources logged in this minute
_since = 0  # when this minute began


def dropped(stack, src, data):
    """Drop what came from ``src`` = (ip, port): a request (``data``), or a TCP connection
    (``b"connect"``; closed by the caller). True: ``uas.stranger``'s answer."""
    global _since
    n = stack.dropped = getattr(stack, "dropped", 0) + 1
    now = stack.sched.now()
    if now - _since >= _MINUTE_MS:
        _seen.clear()
        _since = now
    ip = src[0]
    if ip in _seen or len(_seen) >= _SOURCES:
        return True
    _seen[ip] = 1
    what = data[:16].split(b" ")[0]
    stack.log.warn("sip", "stranger_dropped", src="%s:%d" % src,
                   method=what.decode() if what.isalpha() else "?", dropped=n, next="none")
    return True
