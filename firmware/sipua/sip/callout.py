"""An outgoing call's set-up (``Calls.call``): the INVITE, INVITE failover and hedging, 1xx,
digest, the 2xx that makes the dialog. Loaded to dial and forgotten once the call is
answered or ends: nothing of it is left to a running call (its transaction's callbacks are
``call.py``'s from the 2xx on)."""

from ..compat import const, forget
from .auth import Auth
from .call import ACTIVE, CALLING, ENDED, RINGING, Call, _send_stateless
from .ctrans import RESPONSE, TIMEOUT, ClientTxn
from .invite import cancel, uac_dialog
from .msg import Request
from .reg import _REASONS
from .servers import describe, hold_for, target_key, untried

_H_RETRY_AFTER = const(16)  # hdr.py's id (tests/host/test_sip_msg_ids.py checks it)
_hedges = []  # the hedge timers (their arguments keep this module and the call alive)


def dial(calls, dest, line_index):
    if not calls.lines:
        raise ValueError("no account")
    line = calls.lines[line_index]
    acc = line.account
    uri = dest if ":" in dest else "sip:%s@%s" % (dest, acc.domain)
    c = Call(calls.next_id, line, "out", uri)
    calls.next_id += 1
    calls.calls.append(c)
    targets = line.targets()
    if not targets:
        calls._end(c, "no server")
        return c
    try:
        body = calls.sdp("offer", c)
    except OSError as e:  # no RTP port pair free
        calls._end(c, str(e))
        return c
    req = calls.stack.make_request("INVITE", uri, acc.aor, uri,
                                   from_display=acc.display_name or None,
                                   body=body, content_type="application/sdp")
    c.invite = req
    c.auth = Auth(acc.auth_user, acc.password, acc.ha1)
    calls.log.info("call", "dial", call=c.id, to=uri)
    _invite(calls, c, targets[0])
    return c


def _invite(calls, c, target):
    stack = calls.stack
    c.server = target
    c.provisional = False
    if target_key(target) not in c.tried:
        c.tried.append(target_key(target))
    req = c.invite
    req.contact = stack.contact(c.line.account.user, target.transport)
    calls.log.info("call", "invite", call=c.id, server=describe(target), cseq=req.cseq)
    t = c.txn = stack.request(req, target, lambda o, r: _result(calls, c, o, r),
                              on_provisional=lambda r: _provisional(calls, c, r),
                              on_2xx=calls._reack(c))
    _hedges.append(calls.sched.call_later(stack.t1 * 3 // 2, _hedge, calls, c, t))


def _hedge(calls, c, t):
    """Not even a 100 Trying (a live server sends one at once, RFC 3261 §17.2.1) after
    two sends and 1.5·T1: the INVITE goes on to the next server now, not after the
    retry budget. Should this server answer after all, its 1xx gets a CANCEL, and a 2xx
    (one that crossed the CANCEL, or came without a 1xx) is ACKed and ended with a BYE
    (RFC 3261 §13.2.2.4): the callee reached through it must not hold a call nobody is on."""
    if c.txn is t and not t.state and untried(c.line.targets(first=None), c.tried):
        q = c.invite  # its own copy: the next INVITE's CSeq is not this one's CANCEL's
        t.req = Request("INVITE", q.uri, q.from_uri, q.to_uri, q.call_id, q.cseq,
                        q.from_tag, headers=list(q.headers), from_display=q.from_display)
        t.on_2xx = None  # what it brings now is not this call's
        t.on_result = _late_final(calls, c.id, c.server, t)

        def late(r):  # once: a second 1xx sends no second CANCEL
            t.on_provisional = None
            cancel_invite(calls.stack, t)

        t.on_provisional = late
        _result(calls, c, TIMEOUT, None)


def _late_final(calls, call_id, server, t):
    """The hedged-away INVITE's outcome: a 2xx is ACKed (again for each retransmission) and
    ended with a BYE."""

    def answered(outcome, r):
        if outcome != RESPONSE or r.status >= 300:
            return
        st = calls.stack
        d = uac_dialog(t.req, r)
        ack = d.request(st, "ACK", cseq=t.req.cseq)
        _send_stateless(st, ack, server)
        t.on_2xx = lambda r: _send_stateless(st, ack, server)
        calls.log.info("call", "late_answer", call=call_id, server=describe(server))
        st.request(d.request(st, "BYE"), server, _ignore)

    return answered


def _ignore(outcome, resp):
    pass


def _provisional(calls, c, resp):
    c.provisional = True
    if c.cancel_pending:
        c.cancel_pending = False
        cancel_invite(calls.stack, c.txn)
    if resp.status in (180, 183) and c.state == CALLING:
        c.state = RINGING
        calls.log.info("call", "ringing", call=c.id, status=resp.status)


def _result(calls, c, outcome, resp):
    if c.state == ENDED:
        return
    if outcome != RESPONSE:
        reason = _REASONS.get(outcome, "error")
        if c.provisional or c.cancel_pending:
            calls._end(c, reason)
            return
        # INVITE failover: hold this server, try the next one of the line
        line = c.line
        hold = hold_for(reason)
        if resp is not None and reason == "503":
            ra = resp.int(_H_RETRY_AFTER)
            if ra:
                hold = ra * 1000
        line.registration.servers.hold(c.server, reason, hold)
        nxt = untried(line.targets(first=None), c.tried)
        calls.log.warn("call", "invite_failover", call=c.id, server=describe(c.server),
                       reason=reason, next=describe(nxt) if nxt else "none")
        if nxt is None:
            calls._end(c, reason)
            return
        c.invite.cseq += 1
        _invite(calls, c, nxt)
        return
    code = resp.status
    if 200 <= code < 300:
        _answered(calls, c, resp)
    elif code in (401, 407) and c.auth.answer(c.invite, resp):
        c.invite.cseq += 1
        _invite(calls, c, c.server)
    else:
        calls._end(c, "%d %s" % (code, resp.reason))


def _answered(calls, c, resp):
    c.dialog = uac_dialog(c.invite, resp)
    c.ack = c.dialog.request(calls.stack, "ACK", cseq=c.invite.cseq)
    # Accepted, the transaction only absorbs 2xx retransmissions (call.py's on_2xx): it
    # needs neither its request nor this module any more, and the call neither of them
    t = c.txn
    t.on_provisional = t.req = None
    for h in _hedges:  # the INVITE was answered: nothing is left to hedge
        if h.args and h.args[1] is c:
            h.cancel()
    c.txn = c.invite = c.tried = c.auth = None  # (the digest state holds the INVITE too)
    _send_stateless(calls.stack, c.ack, c.server)
    forget("sipua.sip.callout", "sipua.sip.invite")  # what is left of the call is call.py's
    if c.cancel_pending or c.state == ENDED:
        from .bye import bye  # (forgotten when the last call has ended)

        bye(calls, c)  # answered as we hung up: end it properly
        return
    c.state = ACTIVE
    c.started = calls.sched.now()
    c.codec = calls.sdp("answer_in", c, resp.body)
    calls.log.info("call", "answered", call=c.id, server=describe(c.server), codec=c.codec)


def cancel_invite(stack, txn):
    """CANCEL a pending INVITE client transaction (same branch, RFC 3261 §9.1). Send it only
    after a 1xx arrived; the INVITE then ends with 487 through its own on_result."""
    req = txn.req
    t = ClientTxn(stack, Request("CANCEL", req.uri, req.from_uri, req.to_uri, req.call_id,
                                 req.cseq, req.from_tag), txn.flow,
                  txn.key.split("|")[0], txn.via, None)  # the INVITE's branch
    t.data = cancel(req, txn.via)
    stack.ctx[t.key] = t
    t.start()
