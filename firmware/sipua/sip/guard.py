"""``sip.accept_from: servers`` (the default; desk phones' "accept SIP from trusted servers
only"): a request whose source is not one of the phone's servers — the registrars and
outbound proxies of its accounts, as the locator gave their addresses — is dropped without
an answer: no 200 to a scanner's OPTIONS, no ring for a stranger's INVITE. Responses are
not filtered (they only ever match a transaction the phone started). The test is
``SipStack.stranger``; this module, loaded with the first stranger, counts the drops
(``status`` → ``strangers``) and logs once per source per minute.
"""

from ..compat import const

_QUIET_MS = const(60000)  # one line per source per minute
_SOURCES = const(16)  # sources remembered; beyond that a new one is counted, not logged
_last = {}  # ip -> ms of its last line


def dropped(stack, src, data=None):
    """Drop what came from ``src`` = (ip, port): a request (``data``) or, without data, a
    TCP connection (closed by the caller)."""
    n = stack.dropped = getattr(stack, "dropped", 0) + 1
    now = stack.sched.now()
    ip = src[0]
    t = _last.get(ip)
    if t is not None and now - t < _QUIET_MS:
        return
    if t is None and len(_last) >= _SOURCES:
        for k in [k for k in _last if now - _last[k] >= _QUIET_MS]:
            del _last[k]
        if len(_last) >= _SOURCES:
            return
    _last[ip] = now
    what = "connect"
    if data is not None:
        what = data[:16].split(b" ")[0]
        what = what.decode() if what.isalpha() else "?"
    stack.log.warn("sip", "stranger_dropped", src="%s:%d" % (ip, src[1]), method=what,
                   dropped=n, next="none")
