"""The far end's requests (``Calls.on_request``, ``on_cancel``) and an incoming call until it
is answered: the INVITE (180 with a To-tag, 486 busy, 488 no common codec, 503 no RTP
ports), ``answer`` (200 with the SDP), BYE, re-INVITE, CANCEL. Loaded for each through
``Calls._in`` and forgotten after it: a running call keeps nothing of it."""

from ..compat import const
from ..dns import Target
from .call import ACTIVE, ENDED, RINGING, Call
from .invite import uas_dialog
from .scan import text

_H_FROM = const(2)  # hdr.py's id (tests/host/test_sip_msg_ids.py checks it)


def request(calls, m, stx):
    method = m.method
    if m.to_tag:
        _in_dialog(calls, m, stx)
    elif method == "INVITE":
        incoming(calls, m, stx)
    elif stx is not None:
        stx.respond(481 if method == "BYE" else 405,
                    "Call/Transaction Does Not Exist" if method == "BYE" else
                    "Method Not Allowed")


def _in_dialog(calls, m, stx):
    c = None
    for x in calls.calls:
        d = x.dialog
        if d is not None and d.call_id == m.call_id and d.local_tag == m.to_tag:
            c = x
            break
    if m.method == "ACK":
        return  # the ACK of a 2xx reached the transaction's on_ack; nothing else to do
    if c is None:
        if stx is not None:
            stx.respond(481, "Call/Transaction Does Not Exist")
        return
    if m.method == "BYE":
        stx.respond(200, "OK")
        calls.log.info("call", "remote_bye", call=c.id)
        calls._end(c, "remote hangup")
    elif m.method == "INVITE":  # re-INVITE: a new offer (address, port, hold)
        calls.sdp("reinvite", c, m, stx)
    else:
        stx.respond(200, "OK")


def cancelled(calls, stx):
    for c in calls.calls:
        if c.txn is stx:
            calls.log.info("call", "remote_cancel", call=c.id)
            calls._end(c, "cancelled")
            return


def incoming(calls, m, stx):
    line = calls.lines[0] if calls.lines else None
    if line is None:
        stx.respond(480, "Temporarily Unavailable")
        return
    if len([c for c in calls.calls if c.state != ENDED]) >= calls.max_calls:
        stx.respond(486, "Busy Here")
        return
    from_na = m.name_addr(_H_FROM)
    remote = text(from_na.uri) if from_na else "?"
    c = Call(calls.next_id, line, "in", remote)
    codec = None
    if len(m.body):
        try:
            codec = calls.sdp("answer", c, m.body)
        except ValueError as e:  # sdp.SdpError
            calls._stop(c, "488")
            stx.respond(488, "Not Acceptable Here", [("Warning", '304 sipfw "%s"' % e)])
            return
        except OSError as e:  # no RTP port pair free
            calls._stop(c, "503")
            stx.respond(503, "Service Unavailable", [("Warning", '399 sipfw "%s"' % e)])
            return
    calls.next_id += 1
    c.txn = stx
    c.codec = codec
    flow = m.flow  # the proxy it came from, in the shape of a locator target
    if flow is not None and getattr(flow, "kind", None):
        c.server = Target(flow.kind, flow.peer[0], flow.peer[0], flow.peer[1])
    elif m.src:
        c.server = Target("udp", m.src[0], m.src[0], m.src[1])
    transport = c.server.transport if c.server else "udp"
    contact = calls.stack.contact(line.account.user, transport)
    c.dialog = uas_dialog(m, stx.to_tag, contact)
    stx.respond(180, "Ringing", [("Contact", contact)])
    calls.log.info("call", "incoming", call=c.id, remote=remote)
    if line.account.auto_answer:
        calls.sched.call_later(500, calls.answer, c.id)  # still ringing then: answered
    # Listed last: whatever failed before (uas.py then ends the transaction) leaves no call
    # holding a transaction that is gone.
    calls.calls.append(c)


def answer(calls, call_id):
    c = None
    for x in calls.calls:
        if x.direction == "in" and x.state == RINGING and (call_id is None or x.id == call_id):
            c = x
            break
    if c is None:
        return None
    body = c.answer_sdp
    if body is None:  # no offer in the INVITE: ours goes in the 200, the answer in the ACK
        try:
            body = calls.sdp("offer", c)
        except OSError as e:
            c.txn.respond(503, "Service Unavailable", [("Warning", '399 sipfw "%s"' % e)])
            calls._end(c, str(e))
            return c
    calls._on_ack(c.txn, c)
    c.txn.respond(200, "OK", [("Contact", c.dialog.contact)], body, "application/sdp")
    # The transaction repeats the 200 (UDP) and takes its ACK on its own (on_ack): the call
    # lets it go, so the server side can be unloaded during the call (strans._unload).
    c.txn = None
    c.state = ACTIVE
    c.started = calls.sched.now()
    calls.log.info("call", "answered", call=c.id, codec=c.codec)
    # Media starts with our 200 (the offer told us where to send): the caller may send
    # before its ACK arrives, and the first words after "answer" are not clipped.
    if c.offer is not None:
        calls.sdp("go", c, c.codec, c.offer, c.sdir)
        c.offer = None  # an sdp.Media: it would keep sip/sdp.py loaded
    return c
