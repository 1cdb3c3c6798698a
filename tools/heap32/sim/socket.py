"""The simulated network, as the ``socket`` module the firmware imports (the 32-bit heap
harness runs the firmware on MicroPython's WebAssembly port, which has no sockets).

Only what the firmware uses: ``getaddrinfo`` of a literal address, UDP and TCP sockets
(bind, listen, non-blocking connect, send/sendto/write, recv/recvfrom/readinto, close) and
``Poller`` over them (``simdrive.Poller`` adds virtual time). Peers (``simpeers``) are
objects with ``datagram(data, peer_addr, phone_addr)`` and, for TCP, ``stream(conn, data)``
and ``closed(conn)``; they answer at once with ``deliver`` / ``conn.answer``: the answer
waits on the phone's socket until the scheduler polls it. A peer that answers nothing is
silent (the datagram is lost). The phone's UDP sockets are found by their bound address.
"""

import errno
from select import POLLERR, POLLHUP, POLLIN, POLLOUT

AF_INET = 2
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOL_SOCKET = 1
SO_REUSEADDR = 4

peers = {}  # (proto, ip, port) -> peer; proto "udp" or "tcp"
bound = {}  # ("udp", ip, port) -> [socket, ...] of the phone
_next_port = [40000]


def getaddrinfo(host, port, af=0, type=0, *rest):
    return [(AF_INET, type or SOCK_STREAM, 0, "", (host, port))]


def deliver(data, src, dst):
    """A peer's datagram to the phone's socket bound at ``dst``, from ``src``."""
    socks = bound.get(("udp",) + dst, ())
    for want in (src, None):  # a connected socket first, as the kernel does
        for s in socks:
            if s.peer == want:
                s.rx.append((data, src))
                return


class socket:
    def __init__(self, af=AF_INET, kind=SOCK_STREAM, *rest):
        self.kind = kind
        self.local = None
        self.peer = None
        self.rx = []  # datagrams (data, src), or stream bytes as one bytearray
        self.conn = None  # the peer of a TCP connection
        self.state = 0  # TCP: 0 new, 1 connecting, 2 open, 3 refused, 4 closed by the peer

    def setsockopt(self, *args):
        pass

    def setblocking(self, flag):
        pass

    def bind(self, addr):
        ip, port = addr
        if not port:
            port = _next_port[0]
            _next_port[0] += 1
        self.local = (ip, port)
        if self.kind == SOCK_DGRAM:
            bound.setdefault(("udp", ip, port), []).append(self)

    def listen(self, n=1):
        pass

    def accept(self):
        raise OSError(errno.EAGAIN)

    def connect(self, addr):
        if self.local is None:
            self.bind(("127.0.9.1", 0))
        self.peer = addr
        if self.kind == SOCK_DGRAM:
            return
        peer = peers.get(("tcp",) + addr)
        if peer is None:
            self.state = 3
        else:
            self.conn = peer
            self.rx = [bytearray()]
            self.state = 1
        raise OSError(errno.EINPROGRESS)

    def send(self, data):
        return self.sendto(data, self.peer)

    write = send

    def sendto(self, data, addr):
        data = bytes(data)
        if self.kind == SOCK_STREAM:
            if self.state != 2:
                raise OSError(errno.ENOTCONN)
            self.conn.stream(self, data)
            return len(data)
        peer = peers.get(("udp",) + addr)
        if peer is not None:
            peer.datagram(data, addr, self.local)
        return len(data)

    def answer(self, data):
        """A TCP peer's bytes to this (phone's) end of the connection."""
        self.rx[0].extend(data)

    def recvfrom(self, n):
        if not self.rx:
            raise OSError(errno.EAGAIN)
        data, src = self.rx.pop(0)
        return data[:n], src

    def recv(self, n):
        return self.recvfrom(n)[0]

    def readinto(self, buf):
        if self.kind == SOCK_DGRAM:
            if not self.rx:
                return None
            data = self.rx.pop(0)[0]
            n = min(len(data), len(buf))
            buf[:n] = data[:n]
            return n
        if self.state == 4 and not self.rx[0]:
            return 0
        pending = self.rx[0]
        if not pending:
            return None
        n = min(len(pending), len(buf))
        buf[:n] = pending[:n]
        pending[:n] = b""
        return n

    def close(self):
        if self.local is not None and self.kind == SOCK_DGRAM:
            key = ("udp",) + self.local
            bound[key].remove(self)
            if not bound[key]:
                del bound[key]  # the simulation keeps nothing per closed socket
        if self.conn is not None:
            self.conn.closed(self)
            self.conn = None
        self.state = 4
        self.rx = []

    def events(self):
        """What poll would say about this socket now."""
        if self.kind == SOCK_DGRAM:
            return POLLOUT | (POLLIN if self.rx else 0)
        if self.state == 3:
            return POLLERR | POLLHUP
        if self.state == 1:
            self.state = 2  # the handshake took no time: writable now
            return POLLOUT
        if self.state == 2:
            return POLLOUT | (POLLIN if self.rx[0] else 0)
        return 0


class Poller:
    """``select.poll`` over the simulated sockets; anything else (the console's stdin) is
    never ready. ``poll`` does not wait: the VirtualPoller around it moves the clock."""

    def __init__(self):
        self.objs = {}

    def register(self, obj, events):
        self.objs[obj] = events

    modify = register

    def unregister(self, obj):
        self.objs.pop(obj, None)

    def poll(self, timeout=-1):
        out = []
        for obj, want in self.objs.items():
            if isinstance(obj, socket):
                ev = obj.events() & (want | POLLERR | POLLHUP)
                if ev:
                    out.append((obj, ev))
        return out

    def pending(self):
        """How many of the phone's sockets have something to read (none when measured)."""
        n = 0
        for obj in self.objs:
            if isinstance(obj, socket) and obj.rx and obj.rx[0]:
                n += 1
        return n
