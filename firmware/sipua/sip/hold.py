"""Console ``hold`` / ``resume``: a re-INVITE offering sendonly / sendrecv (RFC 3264 §8.4),
loaded while one runs. Held, we stop sending at once; resumed, when the far end has
answered. A refused re-INVITE leaves the call as it was (``call reinvite_failed``)."""

from .call import ACTIVE, _send_stateless
from .ctrans import RESPONSE
from .reg import _REASONS


def hold(calls, call_id=None, on=True):
    c = calls.find(call_id, ACTIVE)
    if c is None or c.dialog is None:
        return None
    stack = calls.stack
    c.held = on
    if on and c.media is not None:
        c.media.held = True
    req = c.dialog.request(stack, "INVITE", calls.sdp("offer", c), "application/sdp")
    target = c.server or c.line.targets()[0]
    acks = []

    def done(outcome, resp):
        if outcome == RESPONSE and 200 <= resp.status < 300:
            acks.append(c.dialog.request(stack, "ACK", cseq=req.cseq))
            _send_stateless(stack, acks[0], target)
            if c.state == ACTIVE:
                calls.sdp("answer_in", c, resp.body)
            return
        if outcome == RESPONSE and resp.status in (401, 407) and c.digest().answer(req, resp):
            req.cseq = c.dialog.local_cseq = req.cseq + 1
            stack.request(req, target, done)
            return
        c.held = not on
        if c.media is not None:
            c.media.held = c.held
        calls.log.warn("call", "reinvite_failed", call=c.id,
                       reason=resp.status if outcome == RESPONSE
                       else _REASONS.get(outcome, "error"))

    calls.log.info("call", "hold" if on else "resume", call=c.id)
    stack.request(req, target, done,
                  on_2xx=lambda r: acks and _send_stateless(stack, acks[0], target))
    return c
