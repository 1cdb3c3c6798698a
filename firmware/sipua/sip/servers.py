"""Which server next: the locator's ordered targets plus what we learned of their health.

REGISTER, INVITE and BYE all ask the same question — "where do I send this request, and
where next if it fails?" (RFC 3263 §4.3) — so the answer lives here, apart from SIP messages.
A server that failed is *held* for a while: the next request skips it instead of spending
another retry budget on a dead box, and it comes back first in line once the hold ends.
The policies (back-off, refresh, failback) are small pure functions so they can be tested alone
(the refresh time is ``register.refresh_delay_ms``, the back-off ``regextra.failwait_ms``).
"""

from ..compat import urandom_u32

HOLD_MS = 60000  # how long a failed server is skipped (a 503's Retry-After may set another)
# A server that *refused* (ICMP unreachable, RST) costs ~1 RTT to try again, one that is
# silent costs the whole retry budget: only the silent one is worth skipping for a minute.
# A short hold still keeps a burst of requests from hammering a box that just went down, and
# lets a "new-requests" failback (or a console `reg`) find a restarted server within seconds.
HOLD_REFUSED_MS = 5000


def hold_for(reason):
    """How long to skip a server that failed for ``reason`` (the failover log's reason)."""
    return HOLD_REFUSED_MS if reason == "transport_error" else HOLD_MS


def _unit_random():
    return urandom_u32() / 4294967296.0


def target_key(t):
    return (t.transport, t.ip, t.port)


def untried(targets, tried):
    """The first of ``targets`` whose key is not in ``tried`` (a list of ``target_key``s),
    or None: "the next server" for a REGISTER, an INVITE or a BYE that failed over."""
    for t in targets:
        if target_key(t) not in tried:
            return t
    return None


def describe(t):
    """One short string for logs: ``tcp:uc2.airties.lab/127.0.0.27:5060``."""
    host = t.host if t.host and t.host != t.ip else ""
    return "%s:%s%s%s:%d" % (t.transport, host, "/" if host else "", t.ip, t.port)


class ServerSet:
    """Ordered targets of one account's server (from the locator) and their health."""

    def __init__(self, sched):
        self._sched = sched
        self.targets = []
        self.dns_expires_at = None  # scheduler time at which the DNS answer is stale
        self._held = {}  # target key -> (until_ms, reason)

    def update(self, targets, ttl_s=None):
        """New locator answer; health memory of servers still listed is kept."""
        self.targets = list(targets)
        now = self._sched.now()
        self.dns_expires_at = None if ttl_s is None else now + ttl_s * 1000
        keys = [target_key(t) for t in self.targets]
        for key in list(self._held):
            if key not in keys:
                del self._held[key]

    def dns_stale(self):
        return self.dns_expires_at is not None and self._sched.now() >= self.dns_expires_at

    def preferred(self):
        return self.targets[0] if self.targets else None

    def is_preferred(self, target):
        best = self.preferred()
        return best is not None and target_key(best) == target_key(target)

    def hold(self, target, reason, hold_ms=None):
        if hold_ms is None:
            hold_ms = hold_for(reason)
        self._held[target_key(target)] = (self._sched.now() + hold_ms, reason)

    def release(self, target):
        self._held.pop(target_key(target), None)

    def held(self, target):
        entry = self._held.get(target_key(target))
        if entry is None:
            return None
        if self._sched.now() >= entry[0]:
            del self._held[target_key(target)]
            return None
        return entry[1]

    def ordered(self):
        """Servers to try, best first: healthy ones in locator order, then held ones.

        Held servers stay at the end rather than vanishing: when everything is down the
        agent still tries them all before it backs off.
        """
        ok, held = [], []
        for t in self.targets:
            (held if self.held(t) else ok).append(t)
        return ok + held


class Failback:
    """When a request should go back to the preferred server (the phones' failback_mode).

    - ``new-requests``: every new request starts at the preferred server (unless it is held).
    - ``dns-ttl``: stay on the server that works until the DNS answer's TTL runs out.
    - ``registration``: stay until the registration is refreshed.
    - ``duration``: stay ``timeout_s`` seconds, then try the preferred server again.
    In every mode but new-requests the agent probes before it moves, so a working
    registration is never dropped for a server that is still dead. The decision
    (``regextra.due``) is taken off the preferred server only, so its code lives there.
    """

    def __init__(self, mode="new-requests", timeout_s=3600):
        if mode not in ("new-requests", "dns-ttl", "registration", "duration"):
            raise ValueError("failback mode %r" % (mode,))
        self.mode = mode
        self.timeout_ms = timeout_s * 1000
