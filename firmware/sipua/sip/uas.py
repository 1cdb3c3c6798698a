"""What a phone answers on its listening port (RFC 3261 §8.2), loaded with the first
incoming request: a phone that only registers and calls out never pays for it.

Order of the checks, each a defined answer: unknown method 501 / known but not allowed
405 (with Allow), CSeq method mismatch 400, Request-URI scheme 416, Require 420 (with
Unsupported), Content-Type/-Encoding 415 (with Accept), INVITE whose Accept excludes SDP
406. Then the stack answers OPTIONS (200 with Allow/Accept/Supported) and CANCEL itself
and hands the rest to ``stack.on_request``; without a UA it answers 481 inside a dialog
and 480 outside.

OPTIONS and the refusals of non-INVITE requests are answered statelessly (RFC 3261
§8.2.7): the answer depends only on the request, so a retransmission is simply answered
again, and no transaction is kept for 32 s (Timer J) per request. That is what lets a
phone answer a monitoring proxy's pings, or a flood of them, in constant memory. The To
tag of a stateless answer is one per load of this module, which stays loaded
``strans.SERVER_IDLE_MS`` after the last such answer: the same for every retransmission of
a request.
"""

from ..compat import const
from .scan import text
from .stack import new_tag
from .strans import ServerTxn, accepted_key, response, server_idle
from .uri import parse_uri

# hdr.py's ids (private: no dict entry; tests/host/test_sip_msg_ids.py checks them)
_H_CONTENT_TYPE = const(9)
_H_REQUIRE = const(19)
_H_ACCEPT = const(24)
_H_CONTENT_ENCODING = const(25)

# What the phone does (Allow), the option tags it supports (none: any Require -> 420) and
# the bodies it reads (Accept).
_ALLOW = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS")
_SUPPORTED = ()
_ACCEPT = ("application/sdp",)
KNOWN = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
         "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE")


_stateless_tag = None


def accept(tp, sock):
    """A TCP connection to our listening port (transport ``tp``): a flow of its own, read
    like the ones we open; requests on it are answered on it."""
    from ..sched import POLLIN
    from .transport import Flow, peer_of

    try:
        s, addr = sock.accept()
    except OSError:
        return
    ip, port = peer_of(addr)
    if tp.stack.registrations is not None and stranger(tp.stack, (ip, port), b"connect"):
        s.close()
        return
    if len(tp.flows) >= tp.max_flows:
        try:
            tp._x("make_room")
        except OSError:
            s.close()
            return
    s.setblocking(False)
    try:
        f = Flow(tp, "tcp", ip, port, None, s)
    except OSError:  # no heap for the stream receive buffer
        s.close()
        return
    f.state = 1  # transport's _OPEN (a const there, not importable)
    f.last = tp.sched.now()
    tp.flows[("tcp", ip, port)] = f
    tp._by_sock[s] = f
    tp.sched.watch(s, POLLIN, tp._on_flow)
    tp._arm_sweeper()


def stranger(stack, src, data):
    """``sip.accept_from: servers``: True (and dropped: guard.py) unless ``src`` is one of
    the addresses the locator gave for the registrations' servers (``stack.registrations``);
    ``data``: the request, ``b"connect"`` for a TCP connection."""
    ip = src[0]
    for r in stack.registrations:
        for t in r.servers.targets:
            if t.ip == ip:
                return False
    from .guard import dropped

    server_idle(stack)  # loaded for the check: unloaded again once requests stop coming
    return dropped(stack, src, data)


def server_key(m, method=None):
    """RFC 3261 §17.2.3 (branch with the magic cookie) or the RFC 2543 rules otherwise.
    An ACK and a CANCEL find their INVITE with ``method="INVITE"``.

    Stricter than §17.2.3 on purpose: Call-ID and CSeq number are part of the key too. A
    true retransmission (and its ACK or CANCEL) carries the same ones, while peers that
    reuse a branch for a new request (RFC 4475's vectors all say ``z9hG4bKkdjuw``; so do
    some buggy phones) get a new transaction instead of the old request's answer."""
    method = method or ("INVITE" if m.method == "ACK" else m.method)
    v = m.via
    b = v.branch
    if b and b.startswith("z9hG4bK") and len(b) > 7:
        return "%s|%s:%s|%s|%s|%d" % (b, v.host, v.port, method, m.call_id, m.cseq)
    return "2543|%s|%d|%s|%s|%s:%s|%s" % (m.call_id, m.cseq, m.from_tag, m.ruri, v.host,
                                          v.port, method)


def handle(stack, m):
    """A parsed request: to its server transaction, or answered here, or to the UA; the
    server side is unloaded again once requests stop coming (``strans.server_idle``)."""
    server_idle(stack, _handle(stack, m))


def _handle(stack, m):
    """True when no transaction took the request (answered statelessly, or absorbed)."""
    key = server_key(m)
    t = stack.stx.get(key)
    if t is not None:
        t.on_request(m)  # a retransmission
        return False
    if key in stack.absorbed:
        return True  # an answered INVITE again, its transaction ended early (absorb)
    if m.method == "ACK":
        t = stack._accepted.get(accepted_key(m))
        if t is not None:
            t.ack_2xx(m)
        elif stack.on_request is not None:
            stack.on_request(m, None)
        return False
    if m.method != "INVITE" and _answer_statelessly(stack, m):
        return True
    if len(stack.stx) >= stack.max_stx and not _make_room(stack):
        # Every slot holds a request still being decided: refuse statelessly, briefly.
        stack.tp.send_response(response(m, 503, "Service Unavailable",
                                         headers=[("Retry-After", "5")]), m)
        return True
    t = ServerTxn(stack, m, key)
    stack.stx[key] = t
    try:
        _dispatch(stack, m, t)
    except Exception as e:
        # Unanswered, the transaction would keep its slot for ever (an INVITE has had only
        # its 100 Trying): a request that broke what read it (a header that is not UTF-8)
        # gets a 500; a MemoryError leaves it half-made: forgotten, so the stack's retry
        # after shedding starts afresh instead of taking it for a retransmission.
        if not t.final and not isinstance(e, MemoryError):
            t.respond(500, "Server Internal Error")
        if not t.final:
            t._terminate()
        raise
    return False


def _answer_statelessly(stack, m):
    """Answer a refused non-INVITE request or an OPTIONS without a transaction; False
    when the request needs one."""
    global _stateless_tag
    err = check(stack, m)
    if err is None:
        if m.method != "OPTIONS":
            return False
        err = 200, "OK", capabilities(stack)
    if _stateless_tag is None:
        _stateless_tag = new_tag()
    stack.tp.send_response(response(m, err[0], err[1], _stateless_tag, err[2]), m)
    return True


def _dispatch(stack, m, t):
    if t.invite:
        t.respond(100, "Trying")
        err = check(stack, m)
        if err is not None:
            t.respond(err[0], err[1], err[2])
            return
    if m.method == "CANCEL":
        cancel(stack, m, t)
    elif stack.on_request is not None:
        stack.on_request(m, t)
    elif m.to_tag is not None or m.method == "BYE":
        t.respond(481, "Call/Transaction Does Not Exist")
    else:
        t.respond(480, "Temporarily Unavailable")


def _make_room(stack):
    """End one transaction that only absorbs retransmissions (it has answered; not a 200
    still waiting for its ACK, which the call needs), as ``SipStack.shed`` does."""
    for t in stack.stx.values():
        if t.final and t.on_ack is None:
            t.absorb()
            return True
    return False


def check(stack, m):
    """None, or (code, reason, headers) for a request the phone must refuse."""
    method = m.method
    if method not in _ALLOW:
        hdrs = [("Allow", ", ".join(_ALLOW))]
        if method in KNOWN:
            return 405, "Method Not Allowed", hdrs
        return 501, "Not Implemented", hdrs
    if method != m.cseq_method:
        return 400, "CSeq method mismatch", None
    if not parse_uri(m.ruri).is_sip():
        return 416, "Unsupported URI Scheme", None
    if method != "ACK" and method != "CANCEL":
        bad = [text(x) for x in m.values(_H_REQUIRE) if text(x) not in _SUPPORTED]
        if bad:
            return 420, "Bad Extension", [("Unsupported", ", ".join(bad))]
    if m.be > m.bs:
        ct = m.first(_H_CONTENT_TYPE)
        if ct is None or text(ct.split(b";")[0].strip().lower()) not in _ACCEPT:
            return 415, "Unsupported Media Type", [("Accept", ", ".join(_ACCEPT))]
        for enc in m.values(_H_CONTENT_ENCODING):
            if enc.lower() != b"identity":
                return 415, "Unsupported Media Type", [("Accept-Encoding", "identity")]
    if method == "INVITE" and m.first(_H_ACCEPT) is not None:
        ok = False
        for a in m.values(_H_ACCEPT):
            mt = text(a.split(b";")[0].strip().lower())
            if mt in _ACCEPT or mt == "*/*" or mt == "application/*":
                ok = True
        if not ok:
            return 406, "Not Acceptable", [("Accept", ", ".join(_ACCEPT))]
    return None


def capabilities(stack):
    return [("Allow", ", ".join(_ALLOW)), ("Accept", ", ".join(_ACCEPT)),
            ("Accept-Encoding", "identity"), ("Accept-Language", "en"),
            ("Supported", ", ".join(_SUPPORTED))]


def cancel(stack, m, t):
    k = server_key(m, "INVITE")
    inv = stack.stx.get(k)
    if inv is None and k not in stack.absorbed:  # absorbed: answered, still Accepted
        t.respond(481, "Call/Transaction Does Not Exist")
        return
    t.respond(200, "OK")
    if inv is not None and not inv.final:
        inv.respond(487, "Request Terminated")
        if stack.on_cancel is not None:
            stack.on_cancel(inv)
