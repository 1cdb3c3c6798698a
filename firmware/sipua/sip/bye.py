"""Hanging up: ``hangup`` (486, CANCEL or BYE), and the BYE of an established call to the
dialog's next hop, with digest and "BYE failover" (when that hop fails, the account's
other servers). Loaded to hang up; the call agent forgets it when the last call has
ended."""

from ..dns import Target
from .call import ACTIVE, CALLING, ENDED, RINGING
from .ctrans import RESPONSE
from .reg import _REASONS
from .scan import parse_name_addr, text
from .servers import describe, target_key, untried


def hangup(calls, call_id):
    """The console's hangup: 486 to a ringing incoming call, CANCEL a ringing outgoing one
    (after a 1xx, RFC 3261 §9.1), BYE an established one."""
    c = None
    for x in calls.calls:  # that call, or the first one not ended
        if x.id == call_id if call_id is not None else x.state != ENDED:
            c = x
            break
    if c is None:
        return None
    if c.direction == "in" and c.state == RINGING:
        c.txn.respond(486, "Busy Here")
        calls._end(c, "rejected")
    elif c.state == ACTIVE:
        bye(calls, c)
    elif c.state in (CALLING, RINGING):
        if c.provisional:
            from .callout import cancel_invite

            cancel_invite(calls.stack, c.txn)
        else:
            c.cancel_pending = True  # RFC 3261 §9.1: CANCEL only after a 1xx
        calls.log.info("call", "cancel", call=c.id)
    return c


def bye(calls, c):
    c.state = ENDED  # whatever the far end says, this phone is done with the call
    calls._stop(c, "hangup")
    req = c.dialog.request(calls.stack, "BYE")
    hop = next_hop(c.dialog)
    calls.log.info("call", "bye", call=c.id, hop=hop.host)
    # Targets for the dialog's next hop, the call's server first when it is the same.
    line = c.line
    if hop.host == line.account.domain or (c.server and hop.host in (c.server.host,
                                                                        c.server.ip)):
        _send(calls, c, req, line.targets(first=c.server), [])
        return

    def located(targets, err):
        extra = [t for t in line.targets(first=c.server)
                 if targets is None or all(target_key(t) != target_key(x) for x in targets)]
        _send(calls, c, req, list(targets or []) + extra, [])

    calls.locator.locate(hop.host, located, transport=hop.transport, port=hop.port)


def _send(calls, c, req, targets, tried):
    nxt = untried(targets, tried)
    if nxt is None:
        calls.log.warn("call", "bye_failed", call=c.id)
        calls._end(c, "bye failed")
        return
    tried.append(target_key(nxt))

    def done(outcome, resp):
        if outcome == RESPONSE and resp.status in (401, 407) and c.digest().answer(req, resp):
            req.cseq += 1
            calls.stack.request(req, nxt, done)
            return
        if outcome == RESPONSE:
            calls._end(c, "hangup")
            return
        c.line.registration.servers.hold(nxt, _REASONS.get(outcome, "error"))
        following = untried(targets, tried)
        calls.log.warn("call", "bye_failover", call=c.id, server=describe(nxt),
                       reason=_REASONS.get(outcome, "error"),
                       next=describe(following) if following else "none")
        req.cseq += 1
        _send(calls, c, req, targets, tried)

    calls.stack.request(req, nxt, done)


def next_hop(d):
    """The first Route URI (loose routing) or the remote target: where an in-dialog
    request goes, as a dns.Target whose host is to be located (``ip`` None)."""
    from .uri import parse_uri  # the server side's, unloaded with it (strans._unload)

    uri = d.route_set[0] if d.route_set else d.remote_target
    if uri.startswith("<") or '"' in uri or " " in uri:
        na = parse_name_addr(uri.encode())
        uri = text(na.uri)
    u = parse_uri(uri.encode())
    transport = u.params.get("transport")
    if isinstance(transport, (bytes, bytearray)):
        transport = text(transport)
    if transport:
        transport = transport.lower()
    elif u.scheme == "sips":
        transport = "tls"
    return Target(transport, u.host, None, u.port)
