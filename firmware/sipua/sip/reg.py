"""The registration agent of one account: REGISTER, digest, 423, refresh, failover, failback.

    reg = Registration(sched, stack, locator, account, log)
    reg.start()          # resolve, then REGISTER to the best server
    reg.state            # "idle" | "registering" | "registered" | "failed" | "auth_failed"
    reg.server           # the target that holds the binding (server affinity)

The walk follows the seed: the locator's ordered list (NAPTR → SRV → A), REGISTER to the
first target, 401 → digest, 423 → adopt Min-Expires, 200 → registered. A server that is
silent (the SIP stack's retry budget ran out), refuses, resets, answers 503 (held for its
Retry-After) or another 5xx/6xx is *held* in the ServerSet and the next target is tried at
once ("REGISTER failover"); every decision is one log line with its reason and next target.
When every target failed the agent backs off as RFC 5626 §4.5 says and re-resolves.

Refreshes go to the server that holds the binding, unless the failback policy says it is
time to go back to the preferred server: then the preferred one is tried first
(``new-requests``) or probed with OPTIONS first (other modes), so a working registration is
never dropped for a server that is still dead. After a move in ``successive`` redundancy
the binding left on the old server is removed (REGISTER Expires: 0), so calls do not fork to
a server the phone no longer watches.
"""

from .. import log as logmod
from ..compat import forget
from .auth import Auth
from .ctrans import RESPONSE, TIMEOUT, TRANSPORT_ERROR, UNAVAILABLE
from .servers import Failback, describe, untried

IDLE = "idle"
REGISTERING = "registering"
REGISTERED = "registered"
FAILED = "failed"

_REASONS = {TIMEOUT: "timeout", TRANSPORT_ERROR: "transport_error", UNAVAILABLE: "503"}


class Registration:
    def __init__(self, sched, stack, locator, account, log=None, servers=None, leg=0,
                 avoid=None, on_change=None):
        from .servers import ServerSet

        self.sched = sched
        self.stack = stack
        self.locator = locator
        self.account = account
        self.log = log or logmod.log
        self.servers = servers or ServerSet(sched)
        self.leg = leg  # 0: the primary leg; 1: the backup leg of "concurrent" redundancy
        self.avoid = avoid  # fn() -> ip the other leg uses (concurrent redundancy), or None
        self.on_change = on_change
        self.failback = Failback(account.failback_mode, account.failback_timeout)
        self.state = IDLE
        self.server = None  # target holding our binding
        self.expires = account.expires  # asked for; raised by 423 Min-Expires
        self.granted = 0
        self.registered_at = 0
        self.failed_over_at = None  # when the binding left the preferred server
        self.failures = 0  # consecutive rounds in which every server failed
        self.last_error = None
        self.call_id = None
        self.from_tag = None
        self.cseq = 0
        self.auth = Auth(account.auth_user, account.password, account.ha1)
        self._timer = None
        self._txn = None
        self._race = None  # (its transaction, its server, the backup, the old server): hedge.py
        self._flow = None  # the stream connection our binding lives on (kept open)
        self._tried = []
        self._stopped = True

    # -- public ------------------------------------------------------------------------------
    def start(self):
        self._stopped = False
        self._cycle("start")

    def stop(self, unregister=True):
        """Stop refreshing; remove the binding first when asked (console ``unreg``)."""
        self._x("stop", unregister)

    def register_now(self):
        """Console ``reg``: refresh at once (to the same server, failover as usual)."""
        self._stopped = False
        if self._txn is not None:
            return  # a REGISTER is already on its way: its outcome decides
        self._cancel_timer()
        self._refresh()

    def flow_lost(self, flow):
        """The connection our binding lives on was closed by the other end (a server that
        stopped or restarted: its bindings are gone with it). Re-register at once rather
        than at the next refresh, minutes later — the failover path does the rest."""
        if flow is self._flow and not self._stopped:
            self._x("flow_lost")

    def expires_in(self):
        if self.state != REGISTERED:
            return 0
        left = self.granted - (self.sched.now() - self.registered_at) // 1000
        return left if left > 0 else 0

    # -- resolving ---------------------------------------------------------------------------
    def _cycle(self, why):
        """Start over: resolve (when needed), then try the servers in order."""
        if self._stopped:
            return
        self._set_state(REGISTERING)
        if self.servers.targets and not self.servers.dns_stale() and why != "retry":
            self._begin(self._first_choice())
            return
        self._resolve(why)

    def _resolve(self, why):
        """Resolve the account's plan, then try the servers in order (regdns.py, loaded
        with the DNS code for a resolution: at start, when the answer's TTL ran out, after
        every server failed)."""
        from .regdns import resolve

        forget("sipua.sip.regdns")
        resolve(self, why)

    # -- choosing a server -------------------------------------------------------------------
    def _first_choice(self, tried=()):
        """The best server not in ``tried``: healthy ones in locator order, then held ones;
        the one the other leg uses last (concurrent redundancy)."""
        order = self.servers.ordered()
        avoid = self.avoid() if self.avoid is not None else None
        if avoid is not None:
            order = [t for t in order if t.ip != avoid] or order
        return untried(order, tried)

    def _begin(self, target):
        self._tried = []
        if target is None:
            self._x("all_failed")
            return
        self._attempt(target)

    # -- one REGISTER ------------------------------------------------------------------------
    def _attempt(self, target):
        """A fresh REGISTER to ``target`` (new Call-ID when the registrar changes)."""
        self._r("_attempt", target)

    def _send(self, target, req):
        """Send ``req`` (again: after a challenge or a 423 it keeps its Authorization)."""
        self.cseq += 1
        req.cseq = self.cseq
        self.log.info("reg", "register", account=self.account.label, server=describe(target),
                      expires=req.get("Expires"), cseq=req.cseq)
        t = self._txn = self.stack.request(req, target,
                                           lambda o, r: self._on_result(target, req, o, r))
        self.sched.call_later(self.stack.t1 * 3 // 2, self._hedged, target, t)

    def _hedged(self, target, t):
        if self._txn is t and not t.state and not self._stopped:
            from .hedge import start  # unanswered after 1.5·T1: hedge.py decides what next

            start(self, target, t)

    def _raced(self, outcome, resp):
        """A hedged REGISTER's own server answered last, or its budget ran out (the
        transaction's callback from hedge.start on: it keeps neither the request nor the
        walk's closure)."""
        h = self._race
        if h is not None:
            self._race = None
            from .hedge import done

            done(self, h, outcome, resp)

    def _on_result(self, target, req, outcome, resp):
        self._txn = None
        if self._stopped:
            return
        if outcome == RESPONSE:  # 401/407 answered, 200 adopted, the rest refused
            self._r("_on_response", target, req, resp)
        else:
            self._x("failed", target, outcome, resp)

    # -- refresh and failback ----------------------------------------------------------------
    def _refresh(self):
        if self._stopped:
            return
        servers = self.servers
        if servers.dns_stale():
            self._resolve("ttl")
            return
        current = self.server
        if current is None:
            self._cycle("refresh")
            return
        if servers.is_preferred(current):
            self._begin(current)
            return
        self._x("failback", current)

    # -- helpers -----------------------------------------------------------------------------
    def _r(self, name, *args):
        """A step of one REGISTER (making it, taking its answer): its code is in register.py,
        loaded for the step and forgotten after it (a refresh every few minutes)."""
        from . import register

        forget("sipua.sip.register")
        return getattr(register, name)(self, *args)

    def _x(self, name, *args):
        """A rare step (failures, back-off, failback, resolving, un-REGISTER): its code is in
        regextra.py, loaded for the step and forgotten once nothing of it runs."""
        from . import regextra

        forget("sipua.sip.regextra")
        return getattr(regextra, name)(self, *args)

    def _schedule(self, delay_ms, fn, *args):
        self._cancel_timer()
        self._timer = self.sched.call_later(delay_ms, fn, *args)

    def _cancel_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set_state(self, state):
        if state != self.state:
            self.state = state
            if self.on_change is not None:
                self.on_change(self)
