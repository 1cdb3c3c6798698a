"""The registration agent's occasional steps, loaded the first time one is taken: the
OPTIONS probe before a failback (modes other than new-requests), the REGISTER with
Expires: 0 that removes a binding (console ``unreg``, or the old server after a move in
``successive`` redundancy) and the stop after refused credentials (``auth_failed``). A
phone that stays on its preferred server with the right password never loads this.
"""

from .auth import Auth
from .ctrans import RESPONSE
from .reg import _REASONS
from .servers import describe, failwait_ms, target_key


def probe(reg, current):
    """Ask the preferred server with OPTIONS before moving the binding back to it."""
    # The preferred server by the locator's order, held or not: the probe *is* the health
    # check, and the failback timeout (not the failover hold) says when to ask again.
    avoid = reg.avoid() if reg.avoid is not None else None
    preferred = None
    for t in reg.servers.targets:
        if t.ip != avoid:
            preferred = t
            break
    if preferred is None or target_key(preferred) == target_key(current):
        reg._begin(current)
        return
    acc = reg.account
    log = reg.log
    log.info("reg", "failback_probe", account=acc.label, server=describe(preferred),
             reason=reg.failback.why(), next="OPTIONS")
    req = reg.stack.make_request("OPTIONS", "sip:%s" % preferred.host, acc.aor)

    def probed(outcome, resp):
        if reg._stopped:
            return
        if outcome == RESPONSE:
            log.info("reg", "failback", account=acc.label, server=describe(current),
                     reason="probe answered %d" % resp.status, next=describe(preferred))
            reg._begin(preferred)
        else:
            why = _REASONS.get(outcome, "error")
            reg.servers.hold(preferred, why)
            log.info("reg", "failback_deferred", account=acc.label, server=describe(preferred),
                     reason=why, next=describe(current))
            reg.failed_over_at = reg.sched.now()  # "duration" counts again from now
            reg._begin(current)

    reg.stack.request(req, preferred, probed)


def unregister(reg, target):
    """REGISTER Expires: 0 for our Contact at ``target``, answering one challenge."""
    acc = reg.account
    stack = reg.stack
    req = stack.make_request("REGISTER", acc.registrar_uri, acc.aor,
                             from_display=acc.display_name or None)
    req.contact = stack.contact(acc.user, target.transport)
    req.set("Expires", "0")
    reg.log.info("reg", "unregister", account=acc.label, server=describe(target))
    auth = Auth(acc.auth_user, acc.password, acc.ha1)

    def done(outcome, resp):
        # One digest round is worth it: a stale binding would fork calls to a dead phone.
        if outcome == RESPONSE and resp.status in (401, 407) and auth.answer(req, resp):
            req.cseq += 1
            stack.request(req, target, done)

    stack.request(req, target, done)


def auth_failed(reg, target, resp):
    """Our answer to the challenge was refused (or there is none we can give): another
    server would say the same and asking again at once repeats it, so one line and a long
    back-off — RFC 5626 §4.5's from 8 × its start: 4–8 min, then 8–16, to the 30 min cap."""
    reg.failures += 1
    wait = failwait_ms(reg.failures + 3)
    why = reg.last_error = "%d %s" % (resp.status, resp.reason)
    reg.server = None
    reg._hold_flow(None)
    reg._set_state("auth_failed")
    reg.log.error("reg", "auth_failed", account=reg.account.label, server=describe(target),
                  reason=why, retry_in_ms=wait, next="resolve")
    reg._schedule(wait, reg._cycle, "retry")
