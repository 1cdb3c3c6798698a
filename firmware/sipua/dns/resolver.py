"""Stub resolver on the scheduler: UDP to the configured servers, TCP when truncated.

``Resolver.query(name, qtype, cb)`` answers later with ``cb(answer, error)``: an ``Answer``
(records of ``qtype`` after following CNAMEs; empty for NXDOMAIN / NODATA) and ``None``, or
``None`` and a short reason (``"timeout"``, ``"servfail"``, ...) when no server gave one.

Every query gets its own UDP socket (a fresh source port) ``connect``ed to one server, and a
random ID. An answer counts only if it comes from that server's address and port, carries
the ID and repeats the question; anything else — a spoofed or stray datagram, a malformed
one — is dropped and the wait goes on. A server that times out, fails (SERVFAIL, REFUSED,
...) or refuses the port hands the query to the next; each round over the servers doubles
the wait. TC=1 re-asks the same server over TCP (``tcp.py``, imported only then). With no
heap for an answer the datagram is dropped (``netio.recv``), not left queued: a reader that
raised before reading kept its socket ready and the loop spinning on it.

Identical questions in flight share one query; at most ``max_inflight`` queries are out at
once (lwIP on an ESP32 has few sockets), the rest wait their turn.
"""

import socket

from .. import log as logmod
from ..addr import hostport, is_ip
from ..compat import const, urandom_u32
from ..netio import recv
from ..sched import POLLIN
from . import DnsError
from .cache import Cache, negative_ttl
from .wire import CNAME, decode, encode_query, question_end

# wire.py's and cache.py's values as private consts (inlined, no names at run time; checked
# against theirs by tests/host/test_dns_consts.py).
_HEADER_LEN = const(12)
_EDNS_PAYLOAD = const(1232)
_QUERY_BUF = const(300)  # header + longest name + question + OPT fits
_NOERROR = const(0)  # response codes (RFC 1035 §4.1.1)
_FORMERR = const(1)
_SERVFAIL = const(2)
_NXDOMAIN = const(3)
_EXPIRES = const(0)  # cache entry fields
_RCODE = const(1)
_RECORDS = const(2)
_EXTRA = const(3)

_RCODE_ERR = {_FORMERR: "formerr", _SERVFAIL: "servfail", 4: "notimp", 5: "refused"}
_ECONNREFUSED = const(111)  # errno on Linux and lwIP; MicroPython's errno module may lack names


class Answer:
    """What a query found. ``ttl`` (s) is the smallest TTL along the CNAME chain."""

    __slots__ = ("name", "qtype", "rcode", "records", "ttl", "extra", "source", "rtt_ms")

    def __init__(self, name, qtype, rcode, records, ttl, extra=(), source="dns", rtt_ms=0):
        self.name = name
        self.qtype = qtype
        self.rcode = rcode
        self.records = records
        self.ttl = ttl
        self.extra = extra  # A/AAAA records from the additional section: (name, type, ip, ttl)
        self.source = source  # "dns", "cache" or "static"
        self.rtt_ms = rtt_ms


def parse_server(text, default_port=53):
    """'10.0.0.1', '10.0.0.1:5353', '[::1]:53', '::1' -> (host, port). IP addresses only:
    a name server named by a name would need DNS to be found."""
    try:
        return hostport(str(text).strip(), default_port, is_ip)
    except ValueError as e:
        raise DnsError("DNS server must be an IP address[:port]: %s" % e) from None


def system_servers():
    """The board's DNS servers: the network interface's, else /etc/resolv.conf's (unix port,
    virtual board, host)."""
    out = []
    try:
        import network

        try:
            dns = network.ipconfig("dns")
        except Exception:  # noqa: BLE001 - a port without network.ipconfig: ask the interface
            dns = network.WLAN(network.STA_IF).ifconfig()[3]
        if dns and dns != "0.0.0.0":
            out.append((dns, 53))
    except Exception:  # noqa: BLE001 - no network module (unix port) or interface down
        pass
    if out:
        return out
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver" and is_ip(parts[1]):
                    out.append((parts[1].partition("%")[0], 53))
    except OSError:
        pass
    return out


def from_config(sched, cfg, local_ip=None, log=None):
    """A Resolver from the validated config's ``dns`` object (``servers``, ``static``),
    sending from ``local_ip`` (the SIP stack's address). A server that is not an address is
    a DnsError naming its key (``validate`` refuses it first)."""
    servers = []
    for i, text in enumerate(cfg.get("servers") or ()):
        try:
            servers.append(parse_server(text))
        except DnsError as e:
            raise DnsError("dns.servers[%d]: %s" % (i, e)) from None
    static = None
    if cfg.get("static"):
        from .static import Static  # only phones with a static DNS cache load it

        static = Static(cfg["static"])
    res = Resolver(sched, servers, static, log=log)
    res.local_ip = local_ip
    return res


class _Ticket:
    """A caller's interest in a query; cancel() forgets the callback."""

    __slots__ = ("q", "cb")

    def __init__(self, q, cb):
        self.q = q
        self.cb = cb

    def cancel(self):
        q = self.q
        self.cb = None
        if q is not None:
            self.q = None
            q.drop(self)


class Resolver:
    # Limits in one visible place (tunable per instance).
    timeout_ms = 1000  # first wait for one server; doubles on each round over the servers
    tries = 2  # rounds over all servers
    max_cname = 8  # CNAME hops followed for one question
    max_inflight = 4  # sockets open at once
    tcp_max = 8192  # longest answer accepted over TCP
    rx_max = _EDNS_PAYLOAD  # longest UDP answer (what we advertise with EDNS)

    def __init__(self, sched, servers=None, static=None, cache=None, edns=True, log=None):
        self.sched = sched
        self.log = log or logmod.log  # as the SIP stack's: the agent's logger, else the global
        if servers:
            self.servers = [s if isinstance(s, tuple) else parse_server(s) for s in servers]
        else:
            self.servers = system_servers()
        self.cache = cache if cache is not None else Cache()
        self.static = static  # static.Static or None: answers when DNS has none
        self.edns = edns
        self.trace = None  # fn(server, proto, name, qtype, rtt_ms, outcome) for `--verbose`
        self._qbuf = bytearray(_QUERY_BUF)  # every query is built here, then sent
        self._pending = {}  # type: dict # (lower name, qtype) -> _Query
        self._waiting = []  # type: list
        self._active = 0
        self._addrs = {}  # (host, port) -> (family, sockaddr), looked up once
        # The address queries are sent from (sip.local_ip): on a phone with a voice VLAN or
        # two interfaces, DNS must leave by the same one as SIP. None: the kernel chooses.
        self.local_ip = None

    def query(self, name, qtype, cb):
        key = (name.lower(), qtype)
        now = self.sched.now()
        e = self.cache.get(key, now)
        t = _Ticket(None, cb)
        if e is not None:
            ttl = (e[_EXPIRES] - now) // 1000
            ans = Answer(name, qtype, e[_RCODE], e[_RECORDS], ttl, e[_EXTRA], "cache")
            if e[_RECORDS] or not self._static(t, name, qtype):
                self.sched.call_soon(_deliver, t, ans, None)
            return t
        q = self._pending.get(key)
        if q is None:
            q = _Query(self, name, qtype, key)
            self._pending[key] = q
            t.q = q
            q.tickets.append(t)
            if self._active < self.max_inflight:
                self._active += 1
                q.send()
            else:
                self._waiting.append(q)
            return t
        t.q = q
        q.tickets.append(t)
        return t

    def _static(self, t, name, qtype):
        """Deliver static records for (name, qtype) if there are any; True if it did."""
        st = self.static
        hit = st.lookup(name, qtype) if st is not None else None
        if hit is None:
            return False
        ans = Answer(name, qtype, _NOERROR, hit[1], hit[0], (), "static")
        self.sched.call_soon(_deliver, t, ans, None)
        return True

    def bind_source(self, sock, family):
        """Bind ``sock`` to ``local_ip`` when one is set and of the server's family."""
        ip = self.local_ip
        if ip and ip != "0.0.0.0" and ip != "::":
            fam, addr = self.sockaddr((ip, 0))
            if fam == family:
                sock.bind(addr)

    def sockaddr(self, server):
        a = self._addrs.get(server)
        if a is None:
            ai = socket.getaddrinfo(server[0], server[1], 0, socket.SOCK_DGRAM)[0]
            a = (ai[0], ai[-1])
            self._addrs[server] = a
        return a

    def _done(self, q):
        key = q.key
        if self._pending.get(key) is q:
            del self._pending[key]
        self._active -= 1
        while self._waiting and self._active < self.max_inflight:
            nxt = self._waiting.pop(0)
            if nxt.tickets:
                self._active += 1
                nxt.send()
            else:
                key = nxt.key
                if self._pending.get(key) is nxt:
                    del self._pending[key]

    def _trace(self, server, proto, name, qtype, rtt, outcome):
        if self.trace is not None:
            self.trace(server, proto, name, qtype, rtt, outcome)
        log = self.log
        if log.enabled(logmod.DEBUG, "dns"):  # first: the keyword dict alone is heap garbage
            log.debug("dns", "exchange", server=server[0], port=server[1], proto=proto, name=name,
                      qtype=qtype, ms=rtt, outcome=outcome)


def _deliver(t, ans, err):
    cb = t.cb
    if cb is not None:
        t.cb = None
        cb(ans, err)


class _Query:
    """One question, walked over the servers (and along a CNAME chain) until it has an answer."""

    def __init__(self, res, name, qtype, key):
        self.res = res
        self.orig = name
        self.name = name  # moves along the CNAME chain
        self.qtype = qtype
        self.key = key
        self.tickets = []
        self.attempt = 0  # index over rounds x servers
        self.hops = 0
        self.ttl = 0x7FFFFFFF
        self.edns = res.edns
        self.err = "timeout"
        self.sock = None
        self.timer = None
        self.tcp = None
        self.server = None
        self.t0 = 0
        self.qbytes = b""
        self.question = b""
        self.qid = 0

    def drop(self, t):
        if t in self.tickets:
            self.tickets.remove(t)
        if not self.tickets and (self.sock is not None or self.tcp is not None):
            self._close()
            self.res._done(self)

    # -- one exchange ----------------------------------------------------------------------
    def send(self):
        res = self.res
        n = len(res.servers)
        if n == 0:
            return self._finish(None, "no DNS servers")
        if self.attempt >= n * res.tries:
            return self._finish(None, self.err)
        self.server = res.servers[self.attempt % n]
        wait = res.timeout_ms << (self.attempt // n)
        self.qid = urandom_u32() & 0xFFFF
        buf = res._qbuf
        try:
            ln = encode_query(buf, self.qid, self.name, self.qtype, self.edns)
        except DnsError as e:
            return self._finish(None, "bad name: %s" % e)
        self.qbytes = bytes(memoryview(buf)[:ln])
        self.question = self.qbytes[_HEADER_LEN : question_end(buf)].lower()
        self.t0 = res.sched.now()
        try:
            family, addr = res.sockaddr(self.server)
            sock = socket.socket(family, socket.SOCK_DGRAM)
            self.sock = sock
            res.bind_source(sock, family)
            sock.setblocking(False)
            # connect(): the kernel (or lwIP) then drops datagrams from anyone else, and a
            # closed port on the server comes back as ECONNREFUSED instead of a timeout.
            sock.connect(addr)
            sock.send(self.qbytes)
        except OSError as e:
            self._close()
            return self._next("send: %s" % e)
        self.addr = addr
        res.sched.watch(sock, POLLIN, self._readable, self._io_error)
        self.timer = res.sched.call_later(wait, self._timeout)

    def _close(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        sock = self.sock
        if sock is not None:
            self.sock = None
            self.res.sched.unwatch(sock)
            sock.close()
        if self.tcp is not None:
            self.tcp.close()
            self.tcp = None

    def _next(self, why):
        """This server gave nothing usable: ask the next one."""
        self.err = why
        self.attempt += 1
        self.send()

    def _timeout(self):
        self.timer = None
        self.res._trace(self.server, "udp", self.name, self.qtype, self._rtt(), "timeout")
        self._close()
        self._next("timeout")

    def _rtt(self):
        return self.res.sched.now() - self.t0

    def _io_error(self, sock, err):
        """The scheduler gave up on this socket (the reader kept failing): next server."""
        self._close()
        self._next("%s" % type(err).__name__)

    def _readable(self, sock, events):
        try:
            data, src = recv(sock, self.res.rx_max + 1, True)
        except OSError as e:
            if e.args and e.args[0] == _ECONNREFUSED:
                self.res._trace(self.server, "udp", self.name, self.qtype, self._rtt(),
                                "refused port")
                self._close()
                self._next("port unreachable")
            return  # EAGAIN: a spurious wake-up
        if src != self.addr:
            return self._spoof("source", src)
        if not self._matches(data):
            return
        # TC: the answer did not fit. An answer longer than we asked for was cut
        # by recvfrom (a server ignoring our EDNS size): the same.
        if data[2] & 0x02 or len(data) > self.res.rx_max:
            self.res._trace(self.server, "udp", self.name, self.qtype, self._rtt(), "truncated")
            self._close()
            from . import tcp  # rarely needed: loaded only now

            self.t0 = self.res.sched.now()
            self.tcp = tcp.Exchange(self.res.sched, self.server, self.res.sockaddr(self.server),
                                    self.qbytes, self._tcp_done, self.res.timeout_ms * 2,
                                    self.res.tcp_max, self.res.bind_source)
            return
        self._answer(data, "udp")

    def _matches(self, data):
        """ID, response bit and question must match what we sent; else it is not our answer."""
        if len(data) < _HEADER_LEN or (data[0] << 8 | data[1]) != self.qid or not data[2] & 0x80:
            return self._spoof("id", None)
        q = self.question
        if bytes(data[_HEADER_LEN : _HEADER_LEN + len(q)]).lower() != q or data[4] or data[5] != 1:
            return self._spoof("question", None)
        return True

    def _spoof(self, what, src):
        # src None: it came from the server's own address (the socket is connected to it)
        self.res.log.warn("dns", "answer_dropped", why=what, name=self.name,
                          src=src or "%s:%d" % self.server)
        return False

    def _tcp_done(self, data, err):
        self.tcp = None
        if err is not None or not self._matches(data):
            self.res._trace(self.server, "tcp", self.name, self.qtype, self._rtt(), err or "bad")
            return self._next(err or "bad TCP answer")
        self._answer(data, "tcp")

    def _answer(self, data, proto):
        try:
            msg = decode(data)
        except DnsError as e:
            # Dropped like a spoof: a forged or broken datagram must not end the wait.
            self.res.log.warn("dns", "malformed_answer", name=self.name, err=e)
            return
        res = self.res
        rtt = self._rtt()
        rc = msg.rcode
        res._trace(self.server, proto, self.name, self.qtype, rtt,
                   "rcode=%d answers=%d" % (rc, len(msg.answers)))
        if proto == "udp":
            self._close()
        if rc == _FORMERR and self.edns:
            self.edns = False  # an old server that rejects EDNS (RFC 6891 §7): ask plainly
            return self.send()
        if rc != _NOERROR and rc != _NXDOMAIN:
            return self._next(_RCODE_ERR.get(rc, "rcode %d" % rc))
        self._result(msg, rtt)

    # -- the answer ------------------------------------------------------------------------
    def _result(self, msg, rtt):
        qtype = self.qtype
        name = self.name.lower()
        ttl = self.ttl
        recs = []
        for _ in range(self.res.max_cname + 1):
            target = None
            for rr in msg.answers:
                if rr[0].lower() != name:
                    continue
                if rr[1] == qtype:
                    recs.append(rr[4])
                    if rr[3] < ttl:
                        ttl = rr[3]
                elif rr[1] == CNAME and target is None:
                    target = rr
            if recs or target is None:
                break
            self.hops += 1
            if self.hops > self.res.max_cname:
                return self._finish(None, "CNAME chain too long")
            if target[3] < ttl:
                ttl = target[3]
            name = target[4].lower()
        self.ttl = ttl
        if (not recs and name != self.name.lower() and msg.rcode == _NOERROR
                and negative_ttl(msg) is None):
            # The chain leads out of this answer: ask for its end (RFC 1034 §5.3.3).
            self.name = name
            self.attempt = 0
            return self.send()
        extra = []
        for rr in msg.additional:
            if rr[1] == 1 or rr[1] == 28:
                extra.append((rr[0], rr[1], rr[4], rr[3]))
        if recs:
            for x in extra:
                if x[3] < ttl:
                    ttl = x[3]
        else:
            neg = negative_ttl(msg)
            ttl = neg if neg is not None and neg < ttl else (0 if neg is None else ttl)
        ans = Answer(self.orig, qtype, msg.rcode, recs, ttl, extra, "dns", rtt)
        self.res.cache.put(self.key, self.res.sched.now(), ttl, msg.rcode, recs, extra)
        self._finish(ans, None)

    def _finish(self, ans, err):
        self._close()
        res = self.res
        tickets = self.tickets
        self.tickets = []
        for t in tickets:
            t.q = None
            if ans is not None and ans.records:
                res.sched.call_soon(_deliver, t, ans, None)
            elif not res._static(t, self.orig, self.qtype):
                res.sched.call_soon(_deliver, t, ans, err)
        res._done(self)
