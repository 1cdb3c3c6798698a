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
from ..compat import const, urandom_u32
from .auth import Auth
from .ctrans import RESPONSE, TIMEOUT, TRANSPORT_ERROR, UNAVAILABLE
from .servers import (
    Failback,
    describe,
    failwait_ms,
    hold_for,
    refresh_delay_ms,
    target_key,
    untried,
)

# hdr.py's ids (private: no dict entry here; a host test checks they match)
_H_CONTACT = const(7)
_H_RETRY_AFTER = const(16)
_H_MIN_EXPIRES = const(17)
_H_EXPIRES = const(18)

FLOW_LOST_JITTER_MS = 1000  # spread of re-REGISTERs after the registrar's connection died

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
        self._race = None  # (request, its server, the backup, the old server): hedge.py
        self._flow = None  # the stream connection our binding lives on (kept open)
        self._tried = []
        self._stopped = True

    # -- public ------------------------------------------------------------------------------
    def start(self):
        self._stopped = False
        self._cycle("start")

    def stop(self, unregister=True):
        """Stop refreshing; remove the binding first when asked (console ``unreg``)."""
        self._stopped = True
        self._race = None  # a hedged REGISTER's late answer is no longer news
        self._cancel_timer()
        if unregister and self.server is not None and self.state == REGISTERED:
            from .regextra import unregister

            unregister(self, self.server)
        self._hold_flow(None)
        self.server = None
        self._set_state(IDLE)

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
        if flow is not self._flow or self._stopped:
            return
        self._flow = None
        # Every phone on a dead server learns of it in the same millisecond: a random wait of
        # up to a second spreads the herd over the backup instead of hitting it at once.
        delay = urandom_u32() % FLOW_LOST_JITTER_MS
        self.log.warn("reg", "flow_lost", account=self.account.label,
                      server=describe(self.server) if self.server else "", reason="closed",
                      next="register", in_ms=delay)
        self._schedule(delay, self.register_now)

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
        plan = self.account.locate_plan()
        found = []

        def step(i, targets=None, err=None):
            """Name ``i`` of the plan next; first the answer for name ``i - 1``."""
            if targets:
                found.append(targets)
            elif err:
                self.log.warn("reg", "resolve_failed", account=self.account.label,
                              name=plan[i - 1][0], reason=err)
            if i < len(plan):
                host, port, transport = plan[i]
                self.locator.locate(host, lambda ts, e: step(i + 1, ts, e),
                                    transport=transport, port=port)
                return
            if self._stopped:  # every name answered
                return
            merged, ttl = [], None
            for ts in found:
                merged.extend(ts)
                t = getattr(ts, "ttl", None)
                if t is not None and (ttl is None or t < ttl):
                    ttl = t
            if not merged:
                self.last_error = "dns"
                self._all_failed()
                return
            self.servers.update(merged, ttl)
            self.log.info("reg", "resolved", account=self.account.label, why=why,
                          targets=" ".join(describe(t) for t in merged), ttl=ttl)
            self._begin(self._first_choice())

        step(0)

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
            self._all_failed()
            return
        self._attempt(target)

    # -- one REGISTER ------------------------------------------------------------------------
    def _attempt(self, target):
        """A fresh REGISTER to ``target`` (new Call-ID when the registrar changes)."""
        if self._stopped:
            return
        acc = self.account
        key = target_key(target)
        if key not in self._tried:
            self._tried.append(key)
        if self.server is None or target_key(self.server) != key:
            # One Call-ID per registrar (RFC 3261 §10.2.4 keeps it across refreshes), and
            # fresh digest state: "this nonce was already answered" is about one server.
            self.call_id = None
            self.from_tag = None
            self.auth = Auth(acc.auth_user, acc.password, acc.ha1)
        req = self.stack.make_request("REGISTER", acc.registrar_uri, acc.aor,
                                      call_id=self.call_id, cseq=self.cseq + 1,
                                      from_tag=self.from_tag,
                                      from_display=acc.display_name or None)
        self.call_id = req.call_id
        self.from_tag = req.from_tag
        c = self.stack.contact(acc.user, target.transport)
        if acc.instance:  # RFC 5626 §4.2: a reboot or a new address replaces the binding
            req.set("Supported", "outbound")
            c = c + acc.instance + str(self.leg + 1)  # reg-id: 1 primary, 2 backup
        req.contact = c
        req.set("Expires", str(self.expires))
        self._send(target, req)

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

    def _on_result(self, target, req, outcome, resp):
        h = self._race
        if h is not None and h[0] is req:  # a hedged REGISTER's own server answered last
            self._race = None
            from .hedge import done

            done(self, h, outcome, resp)
            return
        self._txn = None
        if self._stopped:
            return
        if outcome == RESPONSE:
            self._on_response(target, req, resp)
            return
        reason = _REASONS.get(outcome, "error")
        hold = hold_for(reason)
        if outcome == UNAVAILABLE:
            ra = resp.int(_H_RETRY_AFTER) if resp is not None else None
            if ra:
                hold = ra * 1000
        self._failover(target, reason, hold)

    def _on_response(self, target, req, resp):
        code = resp.status
        if 200 <= code < 300:
            self._registered(target, req, resp)
        elif code in (401, 407):
            # Auth.answer refuses a request that carried our answer challenged again (but
            # for one stale=true): the credentials are wrong, another server won't differ.
            if self.auth.answer(req, resp):
                self._send(target, req)
            else:
                from .regextra import auth_failed

                auth_failed(self, target, resp)
        elif code == 423:
            min_exp = resp.int(_H_MIN_EXPIRES)
            if not min_exp or min_exp <= self.expires:
                self._give_up(target, "423 without a usable Min-Expires")
                return
            self.log.info("reg", "interval_too_brief", account=self.account.label,
                          expires=self.expires, min_expires=min_exp)
            self.expires = min_exp
            self.auth._req = None  # the resent request may meet a new nonce: answer it
            req.set("Expires", str(min_exp))
            self._send(target, req)
        elif code >= 500:
            self._failover(target, "%d" % code, hold_for(""))
        else:  # 3xx, 403, 404 ...: the next server would say the same
            self._give_up(target, "%d %s" % (code, resp.reason))

    def _registered(self, target, req, resp):
        granted = _granted_expires(resp, req.contact, self.expires)
        if granted <= 0:
            self._give_up(target, "200 without a binding")
            return
        old = self.server
        self.server = target
        self.granted = granted
        self.registered_at = self.sched.now()
        self.failures = 0
        self.last_error = None
        self.servers.release(target)
        self._hold_flow(resp.flow)
        preferred = self.servers.is_preferred(target)
        if preferred:
            if self.failed_over_at is not None:
                self.log.info("reg", "failback_done", account=self.account.label,
                              server=describe(target))
            self.failed_over_at = None
        elif self.failed_over_at is None:
            self.failed_over_at = self.sched.now()
        self._set_state(REGISTERED)
        self.log.info("reg", "registered", account=self.account.label, server=describe(target),
                      expires=granted, preferred=1 if preferred else 0)
        if (old is not None and target_key(old) != target_key(target)
                and self.account.redundancy == "successive"):
            from .regextra import unregister

            unregister(self, old)
        self._schedule(refresh_delay_ms(granted), self._refresh)
        if not preferred:
            self._arm_failback()

    # -- failover ----------------------------------------------------------------------------
    def _failover(self, target, reason, hold_ms):
        self.servers.hold(target, reason, hold_ms)
        self.last_error = reason
        nxt = self._first_choice(self._tried)
        self.log.warn("reg", "failover", account=self.account.label, server=describe(target),
                      reason=reason, next=describe(nxt) if nxt else "none")
        if nxt is None:
            self._all_failed()
        else:
            self._attempt(nxt)

    def _give_up(self, target, reason):
        """A failure another server would repeat (bad credentials, 403): back off."""
        self.last_error = reason
        self.log.error("reg", "register_failed", account=self.account.label,
                       server=describe(target), reason=reason)
        self._all_failed()

    def _all_failed(self):
        self.failures += 1
        wait = failwait_ms(self.failures)
        if self.server is not None and self.expires_in() > 0:
            # The old binding is still valid: keep it, just retry (sooner than it expires).
            left_ms = self.expires_in() * 1000
            wait = min(wait, left_ms // 2 if left_ms > 2000 else 1000)
            self._set_state(REGISTERED)
        else:
            self.server = None
            self._set_state(FAILED)
        self.log.warn("reg", "all_failed", account=self.account.label, failures=self.failures,
                      retry_in_ms=wait, reason=self.last_error or "", next="resolve")
        self._schedule(wait, self._cycle, "retry")

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
        now = self.sched.now()
        since = self.failed_over_at if self.failed_over_at is not None else now
        if not self.failback.due(now, since, servers.dns_stale(), True):
            self._begin(current)
        elif self.failback.mode == "new-requests":
            first = self._first_choice()
            if first is not None and target_key(first) != target_key(current):
                self.log.info("reg", "failback", account=self.account.label,
                              server=describe(current), reason="new-requests",
                              next=describe(first))
            self._begin(first if first is not None else current)
        else:
            from .regextra import probe  # loaded with the first probe

            probe(self, current)

    def _arm_failback(self):
        """Timed failback checks (modes that do not wait for the next refresh)."""
        mode = self.failback.mode
        if mode == "duration":
            delay_ms = self.failback.timeout_ms
        elif mode == "dns-ttl" and self.servers.dns_expires_at is not None:
            delay_ms = self.servers.dns_expires_at - self.sched.now()
        else:
            return
        # Shares the refresh timer slot: whichever comes first re-decides, then re-arms.
        if self._timer is not None and self._timer.due - self.sched.now() <= delay_ms:
            return
        self._schedule(delay_ms, self._refresh)

    def _hold_flow(self, flow):
        """Keep the TCP/TLS connection of our binding open (the transport closes idle ones):
        the registrar reaches a phone registered over a stream only down that connection —
        Kamailio stores its source, RFC 5626 calls it the flow."""
        if flow is not None and not getattr(flow, "reliable", False):
            flow = None
        old = self._flow
        if old is flow:
            return
        if old is not None:
            self.stack.tp.pin(old, False)
        if flow is not None:
            self.stack.tp.pin(flow)
        self._flow = flow

    # -- helpers -----------------------------------------------------------------------------
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

    def status(self):
        s = self.server
        return {
            "label": self.account.label,
            "state": self.state,
            "server": None if s is None else {"host": s.host, "ip": s.ip, "port": s.port,
                                              "transport": s.transport},
            "expires_in": self.expires_in(),
            "preferred": bool(s is not None and self.servers.is_preferred(s)),
            "last_error": self.last_error,
        }


def _granted_expires(resp, contact, expires):
    """The interval the registrar granted our binding (RFC 3261 §10.2.4).

    The ``expires`` parameter of *our* Contact in the 200 wins, then the Expires header,
    then what we asked for. Ours is recognised by its URI (the registrar lists every binding
    of the address of record).
    """
    ours = None  # the URI of our Contact, without its parameters
    if contact:
        lt = contact.find("<")
        gt = contact.find(">")
        ours = contact[lt + 1:gt] if 0 <= lt < gt else contact
        semi = ours.find(";")
        if semi > 0:
            ours = ours[:semi]
    for v in resp.values(_H_CONTACT):
        text = v.decode() if isinstance(v, (bytes, bytearray)) else v
        if ours and ours in text:
            semi = text.find(">")
            params = text[semi + 1:] if semi >= 0 else text
            for p in params.split(";"):
                p = p.strip()
                if p.lower().startswith("expires="):
                    try:
                        return int(p[8:])
                    except ValueError:
                        break
    exp = resp.int(_H_EXPIRES)
    return exp if exp is not None else expires
