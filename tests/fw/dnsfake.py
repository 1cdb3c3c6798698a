"""A fake DNS server for firmware tests: real loopback UDP + TCP sockets on the test's scheduler.

Runs on CPython and MicroPython alike. Answers are encoded here (uncompressed names, built
with the firmware's own ``put_name``) from a small zone::

    zone = {"airties.test": [(NAPTR, 3600,
                              (2, 0, b"s", b"SIP+D2T", b"", "_sip._tcp.airties.test"))],
            "uc1.airties.test": [(A, 60, "127.0.1.26")]}

``soa`` (a (ttl, minimum) pair) adds an SOA to negative answers; ``hook(server, q, addr)``
may answer (or stay silent) itself and returns True when it did.
"""

import socket
import struct

from sipua.dns.wire import AAAA, CNAME, NAPTR, SOA, SRV, A, decode, put_name
from sipua.sched import POLLIN

HOST = "127.0.1.53"


def _ip4(text):
    return bytes([int(x) for x in text.split(".")])


def _ip6(text):
    head, _, tail = text.partition("::")
    h = [int(x, 16) for x in head.split(":") if x]
    t = [int(x, 16) for x in tail.split(":") if x]
    return struct.pack("!8H", *(h + [0] * (8 - len(h) - len(t)) + t))


def rdata(t, data):
    if t == A:
        return _ip4(data)
    if t == AAAA:
        return _ip6(data)
    buf = bytearray(600)
    if t == CNAME:
        return bytes(buf[: put_name(buf, 0, data)])
    if t == SRV:
        struct.pack_into("!HHH", buf, 0, data[0], data[1], data[2])
        return bytes(buf[: put_name(buf, 6, data[3])])
    if t == NAPTR:
        out = struct.pack("!HH", data[0], data[1])
        for s in data[2:5]:
            out += bytes([len(s)]) + s
        return out + bytes(buf[: put_name(buf, 0, data[5])])
    if t == SOA:
        n = put_name(buf, 0, data[0])
        n = put_name(buf, n, data[1])
        return bytes(buf[:n]) + struct.pack("!IIIII", *data[2:7])
    return data  # raw bytes for any other type


def rr(name, t, ttl, data, cls=1):
    buf = bytearray(300)
    n = put_name(buf, 0, name)
    rd = rdata(t, data)
    return bytes(buf[:n]) + struct.pack("!HHIH", t, cls, ttl, len(rd)) + rd


def response(qid, qname, qtype, answers=(), authority=(), additional=(), rcode=0, tc=False,
             aa=True):
    """A whole response packet; the sections are lists of (name, type, ttl, data)."""
    flags = 0x8000 | 0x0100 | 0x0080 | (0x0400 if aa else 0) | (0x0200 if tc else 0) | rcode
    buf = bytearray(300)
    n = put_name(buf, 0, qname)
    out = struct.pack("!HHHHHH", qid, flags, 1, len(answers), len(authority), len(additional))
    out += bytes(buf[:n]) + struct.pack("!HH", qtype, 1)
    for sec in (answers, authority, additional):
        for r in sec:
            out += rr(*r)
    return out


class FakeDns:
    def __init__(self, sched, zone=None, host=HOST, soa=None, tcp=True):
        self.sched = sched
        self.zone = {}
        for name, recs in (zone or {}).items():
            self.zone[name.lower()] = list(recs)
        self.host = host
        self.soa = soa
        self.queries = []  # (name, qtype, proto) in arrival order
        self.sources = []  # (proto, source ip) of each query / connection
        self.hook = None
        self.tc = False  # answer UDP with TC=1 and no records
        self.extra = {}  # (name, qtype) -> additional-section records
        self.rcode = None  # force this rcode on every answer
        self.udp, self.port = self._bind(tcp)
        sched.watch(self.udp, POLLIN, self._rx)

    def _bind(self, tcp):
        from fwtest import bind_udp

        for _ in range(20):
            udp, port = bind_udp(self.host)
            if not tcp:
                self.lsn = None
                return udp, port
            lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                lsn.bind(socket.getaddrinfo(self.host, port)[0][-1])
            except OSError:
                lsn.close()
                udp.close()
                continue
            lsn.listen(4)
            lsn.setblocking(False)
            self.lsn = lsn
            self.sched.watch(lsn, POLLIN, self._accept)
            return udp, port
        raise OSError("no free port pair")

    @property
    def server(self):
        return "%s:%d" % (self.host, self.port)

    def close(self):
        for s in (self.udp, self.lsn):
            if s is not None:
                self.sched.unwatch(s)
                s.close()

    def answer(self, q, proto):
        name, qtype = q.qname.lower(), q.qtype
        recs = self.zone.get(name)
        if self.rcode is not None:
            return response(q.id, q.qname, qtype, rcode=self.rcode)
        if proto == "udp" and self.tc:
            return response(q.id, q.qname, qtype, tc=True)
        ans, auth = [], []
        for _ in range(12):  # a CNAME loop in the zone must not hang the test
            if recs is None:
                break
            got = [(name, t, ttl, d) for t, ttl, d in recs if t == qtype]
            ans += got
            cn = [d for t, ttl, d in recs if t == CNAME]
            if got or not cn or qtype == CNAME:
                break
            ans.append((name, CNAME, next(x for x in recs if x[0] == CNAME)[1], cn[0]))
            name = cn[0].lower()
            recs = self.zone.get(name)
        rcode = 3 if recs is None and not ans else 0
        if not [x for x in ans if x[1] == qtype] and self.soa is not None:
            auth.append((q.qname, SOA, self.soa[0], ("ns.test", "hostmaster.test", 1, 3600, 600,
                                                      86400, self.soa[1])))
        extra = self.extra.get((q.qname.lower(), qtype), [])
        return response(q.id, q.qname, qtype, ans, auth, extra, rcode=rcode)

    def _rx(self, sock, events):
        from sipua.sip.transport import peer_of

        data, addr = sock.recvfrom(600)
        self.sources.append(("udp", peer_of(addr)[0]))
        q = decode(data)
        self.queries.append((q.qname, q.qtype, "udp"))
        if self.hook is not None and self.hook(self, q, addr):
            return
        sock.sendto(self.answer(q, "udp"), addr)

    def _accept(self, lsn, events):
        from sipua.sip.transport import peer_of

        conn, addr = lsn.accept()
        self.sources.append(("tcp", peer_of(addr)[0]))
        conn.setblocking(False)
        buf = bytearray()

        def readable(c, ev):
            chunk = c.recv(600)
            buf.extend(chunk)
            if (len(buf) >= 2 and len(buf) >= 2 + (buf[0] << 8 | buf[1])) or not chunk:
                self.sched.unwatch(c)
                if chunk:
                    q = decode(bytes(buf[2:]))
                    self.queries.append((q.qname, q.qtype, "tcp"))
                    out = self.answer(q, "tcp")
                    c.setblocking(True)
                    c.send(struct.pack("!H", len(out)) + out)
                c.close()

        self.sched.watch(conn, POLLIN, readable)
