"""The registration agent's occasional steps (``Registration._x``), loaded for the step and
forgotten once nothing of it runs: stopping; a failed REGISTER (failover, 423, a refusal,
back-off, the RFC 5626 wait); the stop after refused credentials (``auth_failed``); the
failback decision off the preferred server and its OPTIONS probe; the REGISTER with
Expires: 0 that removes a binding (console ``unreg``, or the old server after a move in
``successive`` redundancy); the re-REGISTER after the registrar's connection died. A phone
that stays on its preferred server refreshing its binding keeps none of it.
"""

from ..compat import const, urandom_u32
from .auth import Auth
from .ctrans import RESPONSE, UNAVAILABLE
from .reg import _REASONS, FAILED, IDLE, REGISTERED
from .servers import _unit_random, describe, hold_for, target_key

# hdr.py's ids (private: no dict entry here; a host test checks they match)
_H_RETRY_AFTER = const(16)
_H_MIN_EXPIRES = const(17)

FLOW_LOST_JITTER_MS = 1000  # spread of re-REGISTERs after the registrar's connection died

# RFC 5626 §4.5 back-off when every server failed: base 30 s (all failed) / 90 s, cap 1800 s.
_BASE_ALL_FAILED_S = const(30)
_BASE_SOME_OK_S = const(90)
_MAX_WAIT_S = const(1800)


def failwait_ms(failures, all_failed=True, rand=_unit_random):
    """RFC 5626 §4.5: min(max, base·2^failures), then a random 50–100 % of that."""
    base = _BASE_ALL_FAILED_S if all_failed else _BASE_SOME_OK_S
    n = failures if failures < 10 else 10  # 2**10·30 s is already far past the cap
    wait = base * (1 << n)
    if wait > _MAX_WAIT_S:
        wait = _MAX_WAIT_S
    return int(wait * 1000 * (0.5 + rand() / 2))


def why(fb):
    """The reason a failback check of ``servers.Failback`` ``fb`` runs, for its log line."""
    if fb.mode == "duration":
        return "duration %ds" % (fb.timeout_ms // 1000)
    return fb.mode


def due(fb, now, failed_over_at, dns_stale, refreshing):
    """True when, by ``servers.Failback`` ``fb``, the next request should try the preferred
    server first."""
    mode = fb.mode
    if mode == "new-requests":
        return True
    if mode == "dns-ttl":
        return dns_stale
    if mode == "registration":
        return refreshing
    return now - failed_over_at >= fb.timeout_ms


def stop(reg, unreg=True):
    """Stop refreshing; remove the binding first when asked (console ``unreg``)."""
    reg._stopped = True
    h = reg._race
    if h is not None:  # a hedged REGISTER's late answer is no longer news
        h[0].abandon()
        reg._race = None
    reg._cancel_timer()
    if unreg and reg.server is not None and reg.state == REGISTERED:
        unregister(reg, reg.server)
    reg._r("_hold_flow", None)
    reg.server = None
    reg._set_state(IDLE)


def failed(reg, target, outcome, resp):
    """The REGISTER got no answer (timeout, transport error) or a 503 from the stack."""
    reason = _REASONS.get(outcome, "error")
    hold = hold_for(reason)
    if outcome == UNAVAILABLE:
        ra = resp.int(_H_RETRY_AFTER) if resp is not None else None
        if ra:
            hold = ra * 1000
    failover(reg, target, reason, hold)


def refused(reg, target, req, resp):
    """A final answer other than 2xx and a challenge: 423, 5xx, 3xx, 4xx."""
    code = resp.status
    if code == 423:
        min_exp = resp.int(_H_MIN_EXPIRES)
        if not min_exp or min_exp <= reg.expires:
            give_up(reg, target, "423 without a usable Min-Expires")
            return
        reg.log.info("reg", "interval_too_brief", account=reg.account.label,
                     expires=reg.expires, min_expires=min_exp)
        reg.expires = min_exp
        reg.auth._req = None  # the resent request may meet a new nonce: answer it
        req.set("Expires", str(min_exp))
        reg._send(target, req)
    elif code >= 500:
        failover(reg, target, "%d" % code, hold_for(""))
    else:  # 3xx, 403, 404 ...: the next server would say the same
        give_up(reg, target, "%d %s" % (code, resp.reason))


def failover(reg, target, reason, hold_ms):
    reg.servers.hold(target, reason, hold_ms)
    reg.last_error = reason
    nxt = reg._first_choice(reg._tried)
    reg.log.warn("reg", "failover", account=reg.account.label, server=describe(target),
                 reason=reason, next=describe(nxt) if nxt else "none")
    if nxt is None:
        all_failed(reg)
    else:
        reg._attempt(nxt)


def give_up(reg, target, reason):
    """A failure another server would repeat (bad credentials, 403): back off."""
    reg.last_error = reason
    reg.log.error("reg", "register_failed", account=reg.account.label,
                  server=describe(target), reason=reason)
    all_failed(reg)


def all_failed(reg):
    reg.failures += 1
    wait = failwait_ms(reg.failures)
    if reg.server is not None and reg.expires_in() > 0:
        # The old binding is still valid: keep it, just retry (sooner than it expires).
        left_ms = reg.expires_in() * 1000
        wait = min(wait, left_ms // 2 if left_ms > 2000 else 1000)
        reg._set_state(REGISTERED)
    else:
        reg.server = None
        reg._set_state(FAILED)
    reg.log.warn("reg", "all_failed", account=reg.account.label, failures=reg.failures,
                 retry_in_ms=wait, reason=reg.last_error or "", next="resolve")
    reg._schedule(wait, reg._cycle, "retry")


def flow_lost(reg):
    """The connection our binding lives on was closed by the other end (a server that
    stopped or restarted: its bindings are gone with it). Re-register at once rather than
    at the next refresh, minutes later — the failover path does the rest."""
    reg._flow = None
    # Every phone on a dead server learns of it in the same millisecond: a random wait of
    # up to a second spreads the herd over the backup instead of hitting it at once.
    delay = urandom_u32() % FLOW_LOST_JITTER_MS
    reg.log.warn("reg", "flow_lost", account=reg.account.label,
                 server=describe(reg.server) if reg.server else "", reason="closed",
                 next="register", in_ms=delay)
    reg._schedule(delay, reg.register_now)


def failback(reg, current):
    """A refresh while the binding is off the preferred server: stay, go back, or probe."""
    now = reg.sched.now()
    since = reg.failed_over_at if reg.failed_over_at is not None else now
    if not due(reg.failback, now, since, reg.servers.dns_stale(), True):
        reg._begin(current)
    elif reg.failback.mode == "new-requests":
        first = reg._first_choice()
        if first is not None and target_key(first) != target_key(current):
            reg.log.info("reg", "failback", account=reg.account.label,
                         server=describe(current), reason="new-requests",
                         next=describe(first))
        reg._begin(first if first is not None else current)
    else:
        probe(reg, current)


def arm_failback(reg):
    """Timed failback checks (modes that do not wait for the next refresh)."""
    mode = reg.failback.mode
    if mode == "duration":
        delay_ms = reg.failback.timeout_ms
    elif mode == "dns-ttl" and reg.servers.dns_expires_at is not None:
        delay_ms = reg.servers.dns_expires_at - reg.sched.now()
    else:
        return
    # Shares the refresh timer slot: whichever comes first re-decides, then re-arms.
    if reg._timer is not None and reg._timer.due - reg.sched.now() <= delay_ms:
        return
    reg._schedule(delay_ms, reg._refresh)


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
             reason=why(reg.failback), next="OPTIONS")
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
    reg._r("_hold_flow", None)
    reg._set_state("auth_failed")
    reg.log.error("reg", "auth_failed", account=reg.account.label, server=describe(target),
                  reason=why, retry_in_ms=wait, next="resolve")
    reg._schedule(wait, reg._cycle, "retry")
