"""A call's offers and answers (RFC 3264) and the media started or moved by them: our
offer, our answer to theirs (the INVITE's or a re-INVITE's), their answer to ours (in a 2xx
or an ACK). Loaded with ``sdp.py`` for each through ``Calls.sdp`` and forgotten after it:
a running call keeps only its media session."""

from . import sdp
from .call import ACTIVE


def _media(calls, c):
    """The call's media session, its RTP/RTCP ports bound (OSError: none free)."""
    if c.media is None:
        from ..media.rtp import Session

        c.media = Session(calls.sched, calls.audio, calls.stack.local_ip, calls.log, c.id)
    return c.media


def offer(calls, c):
    """Our SDP offer (bytes): a new o= version; sendonly while we hold the call."""
    c.ver += 1
    return sdp.build(calls.stack.local_ip, _media(calls, c).port, calls.ours,
                     "sendonly" if c.held else "sendrecv", version=c.ver,
                     session_id=c.sid, ptime=calls.audio["ptime"]).encode()


def answer(calls, c, body):
    """Our answer (c.answer_sdp) to the offer ``body``: the codec; SdpError means 488."""
    text, pt, their = sdp.answer(bytes(body), calls.stack.local_ip, _media(calls, c).port,
                                 calls.ours, calls.audio["ptime"], c.ver + 1, c.sid, c.held)
    c.sdir = sdp.parse(text).direction
    c.ver += 1
    c.answer_sdp = text.encode()
    c.offer = their
    return pt


def answer_in(calls, c, body):
    """The far end's answer to our offer: the codec, and the media (re)started on it."""
    try:
        pt, remote = sdp.negotiated(body, calls.ours)
        direction = sdp.flip(remote.direction) if remote.port else "inactive"
    except sdp.SdpError as e:
        calls.log.warn("media", "no_answer", call=c.id, err=str(e))
        return None
    go(calls, c, pt, remote, direction)
    return pt


def go(calls, c, pt, remote, direction):
    """Start the call's media, or apply a new offer/answer to it."""
    m = c.media
    if m is None or c.state != ACTIVE:
        return
    m.held = c.held
    try:
        m.update(pt, remote, direction)
    except Exception as e:  # noqa: BLE001 - the call goes on without audio, and says so
        calls.log.exc("media", "error", e, call=c.id)


def acked(calls, c, m):
    """The ACK of our 200: it carries the answer when our 200 carried the offer. None: no
    ACK came in 64·T1, so the far end never took the call (or its re-INVITE's answer): the
    session ends with a BYE (RFC 3261 §13.3.1.4), rather than a line open to nobody."""
    if m is None:
        if c.state == ACTIVE:
            calls.log.warn("call", "no_ack", call=c.id)
            calls.hangup(c.id)
        return
    calls.log.info("call", "confirmed", call=c.id)
    if c.sdir is None and len(m.body) and c.state == ACTIVE:
        c.codec = answer_in(calls, c, m.body)


def reinvite(calls, c, m, stx):
    """A re-INVITE: a new offer (address, port, hold), or a request for ours."""
    c.offer = c.sdir = None
    try:
        if len(m.body):
            pt = answer(calls, c, m.body)
            body = c.answer_sdp
        else:  # it asks for our offer: the answer comes in its ACK
            body = offer(calls, c)
    except (ValueError, OSError) as e:  # sdp.SdpError: the call goes on as it was
        stx.respond(488, "Not Acceptable Here", [("Warning", '304 sipfw "%s"' % e)])
        return
    calls._on_ack(stx, c)
    stx.respond(200, "OK", [("Contact", c.dialog.contact)], body, "application/sdp")
    if c.offer is not None:
        c.codec = pt
        go(calls, c, pt, c.offer, c.sdir)
        c.offer = None
