"""Hanging up an established call: the BYE to the dialog's next hop, with digest and "BYE
failover" (when that hop fails, the account's other servers). Loaded with the BYE; the
call agent forgets it when the last call has ended."""

from .auth import Auth
from .call import ENDED
from .ctrans import RESPONSE
from .reg import _REASONS
from .servers import describe, target_key, untried


def bye(calls, c):
    c.state = ENDED  # whatever the far end says, this phone is done with the call
    calls._stop(c, "hangup")
    req = c.dialog.request(calls.stack, "BYE")
    hop = c.dialog.next_hop()
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
        if outcome == RESPONSE and resp.status in (401, 407):
            if c.auth_bye is None:
                acc = c.line.account
                c.auth_bye = Auth(acc.auth_user, acc.password, acc.ha1)
            if c.auth_bye.answer(req, resp):
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
