"""RFC 3263 §4: from a SIP URI (or host) to the ordered list of servers to try.

    numeric IP                 -> that address, no DNS
    explicit port              -> A/AAAA of the host, at that port
    explicit transport         -> SRV for it (_sips._tcp for TLS), else A/AAAA at 5060/5061
    otherwise                  -> NAPTR, kept if flags "s", empty regexp and a service we
                                  support (SIPS+D2T, SIP+D2T, SIP+D2U); sorted by order,
                                  preference; each one's SRV. No usable NAPTR -> SRV for
                                  _sips._tcp, _sip._tcp, _sip._udp. No SRV at all ->
                                  A/AAAA at 5060 (UDP) / 5061 (TLS for sips:).

SRV sets go by priority, weighted random inside a priority (RFC 2782); a lone target "."
means "not offered here" (no A fallback for it). Addresses in the additional section are
used instead of asking again. Queries that do not depend on each other run in parallel.

``Locator.locate(target, on_done, ...)`` calls ``on_done(targets, error)`` from the
scheduler: ``targets`` is a ``Targets`` list (best first) that also carries ``ttl`` (the
smallest TTL of every record used, s) and ``expires_ms`` (scheduler time to re-resolve);
``error`` is ``None``, or a short reason when the list is empty.
"""

from ..addr import hostport, is_ip
from ..compat import const, forget, urandom_u32
from . import Target, Targets
from .wire import AAAA, NAPTR, SRV, A

DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061}
# NAPTR service -> transport (RFC 3263 §4.1); SCTP is not on any board.
SERVICES = {b"SIPS+D2T": "tls", b"SIP+D2T": "tcp", b"SIP+D2U": "udp"}
# Who goes first when two NAPTRs tie on order and preference: DNS servers rotate RRsets,
# so keeping their order would make the transport flap between resolutions.
_RANK = {"tls": 0, "tcp": 1, "udp": 2}
_SRV_NAME = {"tls": "_sips._tcp.", "tcp": "_sip._tcp.", "udp": "_sip._udp."}
_NO_TTL = const(0x7FFFFFFF)


def parse_target(text):
    """'sips:u@host:5061;transport=tcp;maddr=x' or 'host[:port]' ->
    (host, port or None, transport or None, secure)."""
    s = str(text).strip()
    low = s[:5].lower()
    secure = low == "sips:"
    if secure:
        s = s[5:]
    elif low[:4] == "sip:":
        s = s[4:]
    s = s.partition("?")[0]
    s, _, params = s.partition(";")
    s = s.rpartition("@")[2]
    transport = maddr = None
    for p in params.split(";"):
        k, _, v = p.partition("=")
        k = k.strip().lower()
        if k == "transport":
            transport = v.strip().lower()
        elif k == "maddr":
            maddr = v.strip()
    host, port = hostport(s)
    if maddr:  # RFC 3263 §4: maddr, when present, is the target
        host = maddr
    return host.rstrip(".").lower(), port, transport, secure


def srv_order(records, rng):
    """RFC 2782 "Usage rules": by priority; inside one, weighted random: zero weights first,
    then repeatedly pick the first record whose running weight sum reaches rng(total)."""
    recs = sorted(records, key=lambda r: r[0])  # stable: ties keep their order
    out = []
    i, n = 0, len(recs)
    while i < n:
        j = i
        while j < n and recs[j][0] == recs[i][0]:
            j += 1
        group = [r for r in recs[i:j] if not r[1]] + [r for r in recs[i:j] if r[1]]
        while group:
            pick = rng(sum([r[1] for r in group]))
            run = k = 0
            for k in range(len(group)):
                run += group[k][1]
                if run >= pick:
                    break
            out.append(group.pop(k))
        i = j
    return out


def _rng(n):
    """Uniform in [0, n] from the system RNG."""
    return urandom_u32() % (n + 1)


class Locator:
    def __init__(self, sched, resolver, supported=("udp", "tcp", "tls"), ipv6=False, rng=None):
        self.sched = sched
        self.resolver = resolver
        self.supported = tuple(supported)
        self.ipv6 = ipv6  # also ask AAAA (most boards have IPv4 only)
        self.rng = rng or _rng

    def locate(self, target, on_done, transport=None, port=None, secure=None):
        """Resolve ``target`` (SIP URI or host); ``on_done(targets, error)`` later.

        ``transport``/``port``/``secure`` override what the URI says. Returns a job with
        ``cancel()``.
        """
        job = _Job(self, on_done)
        try:
            host, uport, utransport, usecure = parse_target(target)
        except ValueError as e:
            job.fail(str(e))
            return job
        job.start(host, port or uport, (transport or utransport or "").lower() or None,
                  usecure if secure is None else secure)
        return job


class _Slot:
    """One SRV set: its transport, name, where it came from, and what it held."""

    __slots__ = ("transport", "name", "source", "records", "dead")

    def __init__(self, transport, name, source):
        self.transport = transport
        self.name = name
        self.source = source
        self.records = []
        self.dead = False  # the SRV said "." - not offered


class _Job:
    def __init__(self, loc, on_done):
        self.loc = loc
        self.on_done = on_done
        self.pending = 0
        self.after = None  # the next stage, run when every query of this one is back
        self.tickets = []
        self.ttl = _NO_TTL
        self.err = None
        self.slots = []
        self.addrs = {}  # host -> [ip, ...]
        self.host = ""
        self.port = None
        self.transport = ""  # fixed by the URI or the caller; "" = chosen by DNS
        self.secure = False

    def cancel(self):
        self.on_done = None
        for t in self.tickets:
            t.cancel()
        self.tickets = []

    def fail(self, why):
        self.loc.sched.call_soon(self._finish, Targets(), why)

    def _finish(self, targets, err):
        cb = self.on_done
        self.on_done = None
        if cb is None:
            return
        if targets and self.ttl != _NO_TTL:
            targets.ttl = self.ttl
            targets.expires_ms = self.loc.sched.now() + self.ttl * 1000
        cb(targets, None if targets else (err or self.err or "no targets"))

    # -- running queries -------------------------------------------------------------------
    def _ask(self, name, qtype, fn, arg):
        self.pending += 1
        self.tickets.append(self.loc.resolver.query(name, qtype, lambda a, e: self._back(fn, arg,
                                                                                        a, e)))

    def _back(self, fn, arg, ans, err):
        self.pending -= 1
        if self.on_done is None:
            return
        if ans is None:
            self.err = err
        else:
            if ans.records and ans.ttl < self.ttl:
                self.ttl = ans.ttl
            fn(ans, arg)
        if self.pending == 0:
            self.tickets = []
            nxt, self.after = self.after, None
            if nxt is not None:
                nxt()

    def _ok(self, transport):
        if transport not in self.loc.supported:
            return False
        return transport == "tls" or not self.secure

    # -- §4.1 / §4.2 -------------------------------------------------------------------------
    def start(self, host, port, transport, secure):
        self.host, self.port, self.secure = host, port, secure
        if secure and transport == "tcp":
            transport = "tls"  # sips: over TCP means TLS
        if transport is not None and transport not in DEFAULT_PORT:
            return self.fail("unknown transport %r" % transport)
        if not host:
            return self.fail("no host")
        if secure and "tls" not in self.loc.supported:
            return self.fail("sips: needs TLS, not supported here")
        if is_ip(host) or port is not None:
            t = transport or ("tls" if secure else "udp")
            if not self._ok(t):
                return self.fail("transport %s not usable here" % t)
            self.transport = t
            if is_ip(host):
                return self.loc.sched.call_soon(
                    self._finish, Targets([Target(t, host, host, port or DEFAULT_PORT[t])]), None)
            return self._addresses()
        if transport is not None:
            if not self._ok(transport):
                return self.fail("transport %s not usable here" % transport)
            self.transport = transport
            self.slots = [_Slot(transport, _SRV_NAME[transport] + host, "srv")]
            return self._srv()
        self.after = self._after_naptr
        self._ask(host, NAPTR, self._on_naptr, None)

    def _on_naptr(self, ans, _):
        keep = []
        for r in ans.records:
            t = SERVICES.get(r[3].upper())
            # RFC 3263 §4.1: a SIP NAPTR maps the domain to an SRV name: flag "s", no regexp.
            if t is not None and r[2].lower() == b"s" and not r[4] and self._ok(t):
                keep.append((r[0], r[1], _RANK[t], t, r[5]))
        keep.sort()
        self.slots = [_Slot(k[3], k[4], "naptr") for k in keep]

    def _after_naptr(self):
        if not self.slots:
            # No (usable) NAPTR: SRV for every transport we support (§4.1).
            for t in ("tls", "tcp", "udp"):
                if self._ok(t):
                    self.slots.append(_Slot(t, _SRV_NAME[t] + self.host, "srv"))
        self._srv()

    def _srv(self):
        if not self.slots:
            return self._after_srv()
        self.after = self._after_srv
        for s in self.slots:
            self._ask(s.name, SRV, self._on_srv, s)

    def _on_srv(self, ans, slot):
        recs = ans.records
        if len(recs) == 1 and recs[0][3] == ".":
            slot.dead = True  # RFC 2782: decidedly not available at this domain
            return
        slot.records = srv_order([r for r in recs if r[3] != "."], self.loc.rng)
        for name, qtype, ip, ttl in ans.extra:  # glue: no need to ask for these
            if qtype == A or (qtype == AAAA and self.loc.ipv6):
                lst = self.addrs.setdefault(name.lower(), [])
                if ip not in lst:  # two SRV sets often carry the same glue
                    lst.append(ip)
                if ttl < self.ttl:
                    self.ttl = ttl

    def _after_srv(self):
        slots = [s for s in self.slots if s.records]
        if not slots:
            if [s for s in self.slots if s.dead]:
                return self._finish(Targets(), "SIP service not offered (SRV target '.')")
            # §4.2: no SRV -> the domain's addresses at the default port of the transport
            # chosen so far (the caller's, the best NAPTR's, else UDP / TLS for sips:).
            t = self.transport
            if not t:
                naptr = self.slots and self.slots[0].source == "naptr"
                t = self.slots[0].transport if naptr else ("tls" if self.secure else "udp")
            if not self._ok(t):
                return self._finish(Targets(), "no SRV and %s not usable" % t)
            self.transport = t
            return self._addresses()
        self.slots = slots
        self.after = self._assemble
        asked = {}
        for s in slots:
            for r in s.records:
                h = r[3].lower()
                if h not in self.addrs and h not in asked:
                    asked[h] = True
                    self._ask_addr(h)
        if not self.pending:
            self._assemble()

    def _ask_addr(self, host):
        self._ask(host, A, self._on_addr, host)
        if self.loc.ipv6:
            self._ask(host, AAAA, self._on_addr, host)

    def _on_addr(self, ans, host):
        lst = self.addrs.setdefault(host, [])
        if ans.qtype == A:  # A before AAAA whatever answered first
            lst[0:0] = ans.records
        else:
            lst.extend(ans.records)

    def _assemble(self):
        out = Targets()
        for s in self.slots:
            for pr, w, port, host in s.records:
                for ip in self.addrs.get(host.lower(), ()):
                    out.append(Target(s.transport, host, ip, port, pr, w, s.source,
                                      s.name if s.source == "naptr" else None))
        self._finish(out, "no address for any SRV target")

    def _addresses(self):
        self.after = self._assemble_a
        self._ask_addr(self.host)

    def _assemble_a(self):
        t = self.transport
        port = self.port or DEFAULT_PORT[t]
        out = Targets([Target(t, self.host, ip, port) for ip in self.addrs.get(self.host, ())])
        self._finish(out, "no address for %s" % self.host)


def locate(dns, target, on_done, kw):
    """``agent.Dns.locate``: this code loaded for a resolution (the locator built on the
    first), the unload timer off while resolutions run and armed again when the last one
    ends. ``on_done`` None (``Dns()``): only loaded (a DNS configuration the resolver
    refuses fails here), the unload armed."""
    from ..agent import DNS_IDLE_MS

    loc = dns._locator
    if loc is None:
        from .resolver import from_config

        loc = dns._locator = Locator(dns.sched, from_config(dns.sched, dns.cfg, dns.local_ip,
                                                            dns.log))
    if dns._idle is not None:
        dns._idle.cancel()
        dns._idle = None
    if on_done is None:
        dns._idle = dns.sched.call_later(DNS_IDLE_MS, _unload, dns)
        return loc
    dns._busy += 1

    def done(targets, err):
        dns._busy -= 1
        if not dns._busy:
            dns._idle = dns.sched.call_later(DNS_IDLE_MS, _unload, dns)
        on_done(targets, err)

    return loc.locate(target, done, **kw)


def _unload(dns):
    """The DNS code forgotten (its cache with it) once no resolution runs."""
    dns._idle = None
    if dns._busy:
        return
    dns._locator = None
    for name in ("locator", "resolver", "static", "tcp", "cache", "wire"):
        forget("sipua.dns." + name)
    forget("sipua.addr")  # the locator's and the outbound proxy's
