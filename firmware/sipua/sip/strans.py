"""Server transactions (RFC 3261 §17.2, with RFC 6026's Accepted state for INVITE).

INVITE: a 100 Trying goes out at once (the phone's UA may take longer than 200 ms to
decide); a non-2xx final is retransmitted by Timer G (T1 doubling, capped at T2, UDP only)
until the ACK comes or Timer H (64·T1) gives up; the ACK leads to Confirmed and Timer I
(T4, 0 on a stream). A 2xx moves to Accepted: retransmitted INVITEs are absorbed and, over
UDP, the 2xx itself is repeated (T1 doubling to T2) until the ACK for it arrives — the
retransmission RFC 3261 §13.3.1.4 gives the UA core, kept here so the call agent needs
none — for at most 64·T1. Non-INVITE: the last response answers every retransmitted
request until Timer J (64·T1 UDP, 0 on a stream).

The request line of a received request is read here too (``request_line``, for
``msg.parse``): the server side's code, loaded with the first request, never by a phone
that only registers and calls out. It goes again (with ``uas.py``) once no server
transaction is left and no request was answered without one for ``SERVER_IDLE_MS``
(``server_idle``): a registrar's OPTIONS ping does not keep ~10 KB of heap for good, and a
call from the far end lets it go with the ACK of its 200.
"""

from ..compat import const, drop, forget
from . import SipError
from .hdr import H_CALL_ID, H_CSEQ, H_FROM, H_RECORD_ROUTE, H_TO, H_VIA, name
from .msg import tail
from .scan import is_token, split_list, text
from .stack import new_tag
from .transport import sockaddr

_PROCEEDING = const(1)
_COMPLETED = const(2)
_CONFIRMED = const(3)
_ACCEPTED = const(4)
_TERMINATED = const(5)

# 64·T1: the retransmissions of a request answered without a transaction (and the stateless
# answers' To tag, one per load of uas.py) never straddle an unload.
SERVER_IDLE_MS = 32000


def response(req, code, reason, to_tag=None, headers=None, body=b"", content_type=None,
             record_route=False):
    """The bytes of a response to parsed request ``req`` (RFC 3261 §8.2.6.2).

    Via (the top one with received/rport, see ``_received``), From, To, Call-ID and CSeq are
    copied as received, so even a request that failed to parse past its header structure can
    be answered. ``to_tag`` is added when the request's To has none. ``headers`` is a list of
    (name, value) str pairs.
    """
    h = req.h
    out = [b"SIP/2.0 %d %s\r\n" % (code, reason.encode())]
    top = True
    for k in range(0, len(h), 5):  # Via first, in order, as proxies expect to read them
        if h[k] == H_VIA:
            out.append(b"Via: ")
            val = req._value(k)
            if top and req.src and req.via:
                val = _received(val, req)
            top = False
            out.append(val)
            out.append(b"\r\n")
    for k in range(0, len(h), 5):
        hid = h[k]
        if hid == H_TO:
            out.append(b"To: ")
            out.append(req._value(k))
            if to_tag and req.to_tag is None:
                out.append(b";tag=")
                out.append(to_tag.encode())
            out.append(b"\r\n")
        elif hid in (H_FROM, H_CALL_ID, H_CSEQ) or (record_route and hid == H_RECORD_ROUTE):
            out.append(name(hid).encode())
            out.append(b": ")
            out.append(req._value(k))
            out.append(b"\r\n")
    tail(out, headers, body, content_type)
    return b"".join(out)


def _received(val, req):
    """The top Via as a server returns it: ``received`` when the packet came from another
    address than the Via names (RFC 3261 §18.2.1), ``rport`` filled in (RFC 3581)."""
    ip, port = req.src
    p = req.via.params
    add = b""
    if req.via.host != ip and "received" not in p:
        add = b";received=" + ip.encode()
    if "rport" not in p and not add:
        return val
    items = split_list(val)
    top = items[0]
    if "rport" in p and p["rport"] is None:
        low = top.lower()
        i = low.find(b"rport")
        while i >= 0:
            e = i + 5
            before = low[:i].rstrip()
            if before.endswith(b";") and (e == len(low) or low[e] in b" \t;"):
                top = top[:e] + b"=%d" % port + top[e:]
                break
            i = low.find(b"rport", e)
    items[0] = top + add
    return b", ".join(items)


class ServerTxn:
    def __init__(self, stack, req, key):
        self.stack = stack
        self.req = req
        self.key = key
        self.invite = req.method == "INVITE"
        self.state = _PROCEEDING  # Trying and Proceeding behave alike here
        self.last = None
        self.to_tag = None if req.to_tag else new_tag()
        self.final = 0
        self.interval = stack.t1
        self._retx = None
        self._timer = None
        self.on_ack = None  # set by the call agent: called with the ACK of a 2xx

    @property
    def reliable(self):
        f = self.req.flow
        return f is not None and f.reliable

    def respond(self, code, reason, headers=None, body=b"", content_type=None):
        """Send a response. After a final one, later calls are ignored (logged)."""
        if self.final:
            self.stack.log.info("sip", "late_response", method=self.req.method, detail=code)
            return
        data = response(self.req, code, reason, self.to_tag if code > 100 else None, headers,
                        body, content_type, record_route=self.invite and code < 300)
        self.stack.tp.send_response(data, self.req)
        self.last = data
        if code < 200:
            return
        self.final = code
        # From here on only the key, the last response and the addressing are needed:
        # let the request's bytes go now rather than after Timer J/H (32 s).
        self.req.buf = b""
        self.req.h = []
        sched = self.stack.sched
        t1 = self.stack.t1
        if self.invite:
            self.state = _ACCEPTED if code < 300 else _COMPLETED
            if code < 300:
                self.stack._accepted[accepted_key(self.req)] = self
            if not self.reliable:
                self._retx = sched.call_later(t1, self._retransmit)
            self._timer = sched.call_later(64 * t1, self._timeout)
        else:
            self.state = _COMPLETED
            self._timer = sched.call_later(0 if self.reliable else 64 * t1, self._terminate)

    def on_request(self, m):
        """A request matching this transaction: a retransmission, or the ACK."""
        if m.method == "ACK":
            if self.state == _COMPLETED:
                self.state = _CONFIRMED
                self._cancel_timers()
                t4 = 0 if self.reliable else self.stack.t4
                self._timer = self.stack.sched.call_later(t4, self._terminate)
            elif self.state == _ACCEPTED:  # RFC 2543 peers reuse the INVITE's Via
                self.ack_2xx(m)
            return
        if self.last is not None and self.state != _CONFIRMED:
            self.stack.tp.send_response(self.last, self.req)

    def ack_2xx(self, m):
        if self.state != _ACCEPTED:
            return
        cb = self.on_ack
        self.on_ack = None
        # All Accepted still does until Timer L is drop retransmissions of the INVITE (RFC
        # 6026 §8.7): its key in the stack does that, so this transaction, and with it the
        # server side's code, can go now rather than 32 s into the call.
        self.absorb()
        if cb is not None:
            cb(m)

    def absorb(self):
        """End an answered transaction now. An INVITE's key stays in ``stack.absorbed`` for
        64·T1 (from now: a little past Timer L, harmless), where ``uas._handle`` drops its
        retransmissions and ``uas.cancel`` answers a CANCEL of it 200 — never a new call;
        any other request retransmitted later is simply answered again. For the ACK of a
        2xx, and for a transaction ended early to free heap or a slot (``SipStack.shed``,
        ``uas._make_room``)."""
        if self.invite:
            st = self.stack
            st.absorbed.add(self.key)
            st.sched.call_later(64 * st.t1, st.absorbed.discard, self.key)
        self._terminate()

    def _retransmit(self):
        self._retx = None
        if self.state in (_COMPLETED, _ACCEPTED) and self.last is not None:
            self.stack.tp.send_response(self.last, self.req)
            self.interval = min(self.interval * 2, self.stack.t2)
            self._retx = self.stack.sched.call_later(self.interval, self._retransmit)

    def _timeout(self):
        cb = self.on_ack  # still set: no ACK came for our 2xx
        if self.state == _COMPLETED or cb is not None:
            self.stack.log.info("sip", "no_ack", method=self.req.method, detail=self.final)
        self._terminate()
        if cb is not None:
            # 64·T1 without the ACK of our 2xx, on any transport: the call is told (None
            # for the ACK) and ends the session (RFC 3261 §13.3.1.4)
            self.on_ack = None
            cb(None)

    def _cancel_timers(self):
        for t in (self._retx, self._timer):
            if t is not None:
                t.cancel()
        self._retx = self._timer = None

    def _terminate(self):
        self.state = _TERMINATED
        self._cancel_timers()
        st = self.stack
        key = self.key
        k = accepted_key(self.req)
        if st.stx.get(key) is self:
            drop(st.stx, key)
        if st._accepted.get(k) is self:
            drop(st._accepted, k)
        if not st.stx and not st._accepted:
            server_idle(st, False)


def accepted_key(m):
    """An accepted INVITE's key in ``stack._accepted``, which its ACK (a transaction of its
    own, RFC 3261 §17.1.1.3) matches by: Call-ID and CSeq number."""
    return "%s|%d" % (m.call_id, m.cseq)


def send_response(tp, data, req):
    """``Transports.send_response``: down the request's connection, else by UDP to where
    ``response_addr`` says; a failure is one log line (the client retransmits)."""
    f = req.flow
    if f is not None and f.reliable:
        try:
            f.send(data)
        except OSError as e:
            tp._log("info", "response_lost", flow=f, err=e)
        return
    if tp.udp is None:
        return
    ip, port = response_addr(req)
    tp.trace_tx(data, "udp", ip, port)
    try:
        tp.udp.sendto(data, sockaddr(ip, port))
    except OSError as e:
        tp._log("info", "response_lost", ip=ip, port=port, err=e)


def response_addr(req):
    """Where a UDP response goes (RFC 3261 §18.2.2 with RFC 3581 rport): the source
    address, and the source port if the Via asked for rport, else the Via's port."""
    ip, port = req.src
    v = req.via
    if v is None or "rport" in v.params:
        return ip, port
    return ip, v.port or 5060


def answer_error(stack, err, flow, src):
    """A stateless answer to a request that failed to parse (``SipStack.receive``, the
    stream reader); responses are dropped."""
    m = err.msg
    # A response can fail before its start line is read (a header line too long): its
    # first bytes still say so, and a phone never answers a response.
    if (m is None or m.status or bytes(m.buf[:4]) == b"SIP/" or m.method == "ACK"
            or m.first(1) is None):  # 1 = H_VIA
        stack.log.debug("sip", "dropped", code=err.code, reason=err.reason, src=src)
    else:
        m.src = src
        m.flow = flow
        stack.log.debug("sip", "malformed", code=err.code, reason=err.reason, src=src)
        stack.tp.send_response(response(m, err.code, err.reason), m)
    server_idle(stack)  # this module goes again once idle


def server_idle(stack, stateless=True):
    """A request was answered (or dropped) without a transaction (``stateless``), or one went
    to a transaction, or a transaction ended: unload the server side once no transaction is
    left, but not before ``SERVER_IDLE_MS`` after the last stateless answer — its
    retransmissions are answered again from here, not by a transaction. A transaction's own
    timers cover its retransmissions (an answered INVITE's, the stack's ``absorbed`` keys), so
    a call from the far end lets the code go with the ACK of its 200. One timer at a time: a
    request meanwhile only moves the time of the last stateless answer (no garbage per
    request); the timer waits out the rest. Its state lives here and goes with the module."""
    now = stack.sched.now()
    if _idle[2] is not stack:  # another stack (a config reload swaps them): its own timer
        if _idle[0] is not None:
            _idle[0].cancel()
            _idle[0] = None
        _idle[2] = stack
        _idle[1] = now - SERVER_IDLE_MS  # no stateless answer yet
    if stateless:
        _idle[1] = now
    if _idle[0] is None:
        left = SERVER_IDLE_MS - (now - _idle[1])
        _idle[0] = stack.sched.call_later(left if left > 0 else 0, _unload)


# the unload timer, scheduler time of the last stateless answer, the stack it came to
_idle = [None, 0, None]  # type: list


def _unload():
    _idle[0] = None
    stack = _idle[2]
    if stack.stx or stack._accepted:
        return  # the last one's end arms the timer again
    # No transaction left is no object of this module's classes left: the stack's tables
    # hold every live one, and a call holds its INVITE's only while that one waits for its
    # final answer (callin.py), so a reload never makes a second copy beside the first.
    left = SERVER_IDLE_MS - (stack.sched.now() - _idle[1])
    if left > 0:
        _idle[0] = stack.sched.call_later(left, _unload)
        return
    forget("sipua.sip.uas", "sipua.sip.strans", "sipua.sip.uri")  # uri: no call code uses it


def request_line(m, line):
    """``msg.parse``'s request line (bytes, no CRLF) into ``m``: method, Request-URI (parsed
    here, so a malformed one is a 400), version; raises SipError naming what is wrong."""
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise SipError(400, "Bad request line", m)
    if not is_token(parts[0]):
        raise SipError(400, "Bad method", m)
    m.method = text(parts[0])
    m.ruri = parts[1]
    if parts[2] != b"SIP/2.0":
        if parts[2].startswith(b"SIP/"):
            raise SipError(505, "Version Not Supported", m)
        raise SipError(400, "Bad request line", m)
    from .uri import parse_uri  # loaded with the first request anyway (uas.py)

    try:
        u = parse_uri(parts[1])
    except SipError as err:
        err.msg = m
        raise
    if u.headers is not None:  # RFC 3261 §19.1.5: never in a Request-URI
        raise SipError(400, "Headers in Request-URI", m)
