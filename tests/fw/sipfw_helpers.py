"""Shared helpers for the SIP firmware tests (both interpreters)."""

import json


def rfc4475_index():
    with open("tests/data/rfc4475/index.json") as f:
        return json.load(f)["messages"]


def rfc4475(name):
    with open("tests/data/rfc4475/%s.dat" % name, "rb") as f:
        return f.read()


def expectation_met(entry, codes):
    """codes: the final status codes the phone sent (100 Trying left out), in order.

    Returns None when the answer is what index.json says, else a description."""
    exp = entry["expect"]
    final = codes[-1] if codes else None
    if exp == "drop":
        return None if not codes else "expected no answer, got %s" % codes
    if exp == "any":
        return None if codes else "expected an answer"
    if exp == "accept":
        return None if final is not None and final not in (400, 505) else "got %s" % codes
    if final in exp:
        return None
    if entry["liberal_ok"] and final is not None and final not in (400, 505):
        return None
    return "expected %s, got %s" % (exp, codes)


def finals(datas):
    """Status codes of response bytes, 100 Trying left out."""
    out = []
    for d in datas:
        code = int(d[8:11])
        if code != 100:
            out.append(code)
    return out


class Peer:
    """A scripted SIP peer on a loopback address, driven by the test's scheduler.

    Records ``(sched ms, parsed message)`` for everything it receives; ``answer(m)`` returns
    a list of response bytes to send back (default: stay silent).
    """

    def __init__(self, sched, ip, kind="udp", port=None):
        import socket

        from sipua.sched import POLLIN
        from sipua.sip.transport import sockaddr

        self.sched = sched
        self.ip = ip
        self.kind = kind
        self.got = []
        self.answer = lambda m: None
        self.drop = lambda: False  # True: the datagram just received is lost
        self.pong = lambda: True  # answer an RFC 5626 CRLFCRLF ping on a stream with CRLF
        self.pings = []  # sched ms of each keep-alive received (CRLFCRLF, or CRLF on UDP)
        self.conns = []
        for _ in range(50):
            self.port = port or 20000 + _rand() % 30000
            s = socket.socket(socket.AF_INET,
                              socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(sockaddr(ip, self.port))
                break
            except OSError:
                s.close()
                if port:
                    raise
        if kind != "udp":
            s.listen(2)
        s.setblocking(False)
        self.sock = s
        sched.watch(s, POLLIN, self._on_udp if kind == "udp" else self._on_accept)

    def target(self):
        return (self.kind, self.ip, self.port)

    def _on_udp(self, sock, ev):
        from sipua.sip.msg import parse
        from sipua.sip.transport import peer_of

        data, addr = sock.recvfrom(9000)
        if self.drop():  # a lossy path to this peer
            return
        if not data.strip():  # a CRLF keep-alive (RFC 5626 §3.5.1): nothing to answer
            self.pings.append(self.sched.now())
            return
        m = parse(data)
        m.src = peer_of(addr)
        self.got.append((self.sched.now(), m))
        for r in self.answer(m) or ():
            sock.sendto(r, addr)

    def _on_accept(self, sock, ev):
        from sipua.sched import POLLIN

        c, _ = sock.accept()
        c.setblocking(False)
        self.conns.append([c, bytearray()])
        self.sched.watch(c, POLLIN, self._on_conn)

    def _on_conn(self, sock, ev):
        from sipua.sip.msg import parse
        from sipua.sip.stream import NEED_MORE, frame

        for entry in self.conns:
            if entry[0] is sock:
                break
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            self.sched.unwatch(sock)
            sock.close()
            self.conns.remove(entry)
            return
        buf = entry[1]
        buf.extend(data)
        while True:
            while buf[:2] == b"\r\n":  # keep-alives (RFC 5626 §4.4.1) are not messages
                if buf[:4] == b"\r\n\r\n":
                    self.pings.append(self.sched.now())
                    if self.pong():
                        sock.send(b"\r\n")
                    buf[:4] = b""
                else:
                    buf[:2] = b""
            if not buf:
                return
            n = frame(buf, len(buf))
            if n == NEED_MORE:
                return
            m = parse(bytes(buf[:n]), False)
            buf[:n] = b""
            m.src = (self.ip, 0)
            self.got.append((self.sched.now(), m))
            for r in self.answer(m) or ():
                sock.send(r)

    def close(self):
        for c, _ in self.conns:
            self.sched.unwatch(c)
            c.close()
        self.sched.unwatch(self.sock)
        self.sock.close()

    def times(self, method=None):
        return [t for t, m in self.got if method is None or m.method == method]


def _rand():
    from sipua.compat import urandom_u32

    return urandom_u32()


def reply(code, reason="X", to_tag="peer1", headers=None):
    """An answer function for Peer: one response to every request but ACK."""
    from sipua.sip.strans import response

    def answer(m):
        if m.method == "ACK":
            return None
        return [response(m, code, reason, to_tag, headers)]

    return answer
