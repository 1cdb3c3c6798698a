"""Sockets for SIP: one UDP listener, connected UDP flows, TCP/TLS connections.

A **flow** is what a client transaction sends on: one per target (transport, ip, port).

- UDP: a *connected* UDP socket per target, bound to the phone's own SIP port with
  SO_REUSEADDR, so Via, rport and the registrar's view of us stay the listening port while
  the kernel hands this socket the ICMP port unreachable of that target as ECONNREFUSED.
  The error thus names its flow, and the stack fails exactly the transactions on it at once
  instead of letting them wait for Timer B/F. (If the port cannot be shared the flow binds
  a port of its own; Via then names that port.) Packets arriving on a flow socket are
  dispatched like the listener's: a registrar's OPTIONS or INVITE may come that way.
- TCP: non-blocking connect, one connection per target reused by every transaction, stream
  framing with ``msg.frame`` (partial reads, several messages per read, CRLF keep-alives),
  closed after ``idle_ms`` without traffic unless pinned (a TCP registration lives as long as
  its connection, so the registration agent pins it).
- TLS: TCP plus the ``ssl`` module, imported only when a TLS target is used (``tls.py``).

Responses to incoming requests go back on the connection they came on (stream) or by the
RFC 3261 §18.2.2 / RFC 3581 rules (UDP): received address, rport or the Via port.
"""

import errno
import socket

from ..compat import const, drop, urandom_u32
from ..netio import recv
from ..sched import POLLERR, POLLHUP, POLLIN, POLLOUT
from . import SipError
from .msg import NEED_MORE, frame, parse

_CONNECTING = const(0)
_OPEN = const(1)
_CLOSED = const(2)
_HANDSHAKE = const(3)  # TLS: connected, handshake under way (tls.py)
_RECV = const(1024)  # bytes per TCP read
_PORT_TRIES = const(20)
_DEBUG = const(10)  # log.DEBUG


def sockaddr(ip, port):
    return socket.getaddrinfo(ip, port)[0][-1]


def peer_of(addr):
    """recvfrom's address as (ip, port): a tuple on lwIP ports and CPython, a raw
    ``struct sockaddr_in`` (bytes) on the unix port."""
    if isinstance(addr, tuple):
        return addr[0], addr[1]
    return "%d.%d.%d.%d" % (addr[4], addr[5], addr[6], addr[7]), addr[2] << 8 | addr[3]


class Flow:
    """One target's socket. ``send()`` raises OSError when the transport is known broken."""

    def __init__(self, tp, kind, ip, port, host=None, sock=None):
        self.tp = tp
        self.kind = kind
        self.peer = (ip, port)
        self.host = host
        self.sock = sock
        self.reliable = kind != "udp"
        if self.reliable and tp._rx is None:
            # One receive buffer for every stream flow, allocated with the first one (a
            # UDP-only phone never needs it; a TCP/TLS one opens its registrar's connection
            # first thing) and kept: 1 KB, as a longer message takes one more read (its
            # bytes gather in rbuf either way). recv(n) wants n bytes contiguous per read,
            # which a fragmented small heap no longer has (seen at 224 KB), and failing
            # before the read leaves the socket ready. readinto needs no heap. (Datagrams
            # are read with recv: readinto would run queued datagrams together on
            # MicroPython, see netio.)
            try:
                tp._rx = bytearray(_RECV)
            except MemoryError:
                raise OSError(errno.ENOMEM) from None  # this flow cannot be opened
        self.state = _CONNECTING
        self.out = []  # bytes queued until connected / writable
        self.rbuf = bytearray()
        self.last = 0  # scheduler ms of the last traffic
        self.heard = False  # set by every read: the keep-alive's pong (keepalive.py)
        self.local_port = tp.local_port
        self.pinned = False

    def __repr__(self):
        return "%s:%s:%d" % (self.kind, self.peer[0], self.peer[1])

    def send(self, data):
        if self.state == _CLOSED:
            raise OSError(errno.ECONNRESET)
        self.last = self.tp.sched.now()
        self.tp.trace_tx(data, self.kind, self.peer[0], self.peer[1])
        if self.kind == "udp":
            self.sock.send(data)
            return
        self.out.append(data)
        if self.state == _OPEN:
            self.tp._flush(self)


class Transports:
    def __init__(self, stack, sched, local_ip="0.0.0.0", local_port=5060, ca_file=None,
                 limits=None, log=None, idle_ms=120000, max_flows=6):
        self.stack = stack
        self.sched = sched
        self.local_ip = local_ip
        self.local_port = local_port
        self.ca_file = ca_file
        self.limits = limits
        self.log = log
        self.idle_ms = idle_ms
        self.max_flows = max_flows  # lwIP on an ESP32 has ~10 sockets in all
        self.udp = None
        self.tcp = None
        self.flows = {}  # (kind, ip, port) -> Flow
        self._by_sock = {}
        self._sweeper = None
        self._tls_ctx = None
        self._rx = None  # every stream flow's receive buffer: see Flow

    # -- listening ---------------------------------------------------------------------------
    def listen(self, tcp=True):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(sockaddr(self.local_ip, self.local_port))
        s.setblocking(False)
        self.udp = s
        self.sched.watch(s, POLLIN, self._on_udp)
        if tcp:
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind(sockaddr(self.local_ip, self.local_port))
            t.listen(4)
            t.setblocking(False)
            self.tcp = t
            self.sched.watch(t, POLLIN, self._on_accept)

    def close(self):
        for f in list(self.flows.values()):
            self._close(f, None)
        self.unlisten()
        if self._sweeper:
            self._sweeper.cancel()
            self._sweeper = None

    def unlisten(self):
        """Close the listening sockets (the port is free again); the flows stay."""
        for s in (self.udp, self.tcp):
            if s is not None:
                self.sched.unwatch(s)
                s.close()
        self.udp = self.tcp = None

    def via_host(self, flow):
        if self.local_ip != "0.0.0.0":
            return self.local_ip
        try:  # CPython only; a board must set sip.local_ip (hal knows its address)
            return flow.sock.getsockname()[0]  # type: ignore
        except (AttributeError, OSError):
            return "0.0.0.0"

    # -- flows -------------------------------------------------------------------------------
    def flow(self, kind, ip, port, host=None):
        """The flow to a target, opened on first use. Raises OSError if it cannot be."""
        key = (kind, ip, port)
        f = self.flows.get(key)
        if f is not None and f.state != _CLOSED:
            return f
        self._make_room()
        f = Flow(self, kind, ip, port, host)
        if kind == "udp":
            self._open_udp(f)
        elif kind == "tcp" or kind == "tls":
            self._open_tcp(f)
        else:
            raise OSError(errno.EINVAL)
        f.last = self.sched.now()
        self.flows[key] = f
        self._by_sock[f.sock] = f
        self._arm_sweeper()
        return f

    def _open_udp(self, f):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(sockaddr(self.local_ip, self.local_port))
        except OSError:
            s.close()
            s = None
            for _ in range(_PORT_TRIES):  # the SIP port cannot be shared: one of our own
                port = 20000 + urandom_u32() % 40000
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.bind(sockaddr(self.local_ip, port))
                    f.local_port = port
                    break
                except OSError:
                    s.close()
                    s = None
            if s is None:
                raise OSError(errno.EADDRINUSE) from None
        s.setblocking(False)
        try:
            s.connect(sockaddr(f.peer[0], f.peer[1]))
        except OSError:
            s.close()
            raise
        f.sock = s
        f.state = _OPEN
        self.sched.watch(s, POLLIN, self._on_flow)

    def _open_tcp(self, f):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            if self.local_ip != "0.0.0.0":
                # Leave from the address Via and Contact name (a host with several, or a
                # lab of boards on 127/8): the registrar's received= then matches.
                s.bind(sockaddr(self.local_ip, 0))
            s.connect(sockaddr(f.peer[0], f.peer[1]))
        except OSError as e:
            if e.args[0] not in (errno.EINPROGRESS, errno.EAGAIN):
                s.close()
                raise
        f.sock = s
        self.sched.watch(s, POLLOUT | POLLIN, self._on_flow)

    def _make_room(self):
        if len(self.flows) < self.max_flows:
            return
        idle = [f for f in self.flows.values() if not f.pinned and not self.stack.flow_busy(f)]
        if not idle:
            raise OSError(errno.ENOBUFS)
        idle.sort(key=lambda f: f.last)
        self._close(idle[0], None)

    def _arm_sweeper(self):
        if self._sweeper is None and self.flows:
            self._sweeper = self.sched.call_later(self.idle_ms // 4 + 1, self._sweep)

    def _sweep(self):
        self._sweeper = None
        now = self.sched.now()
        for f in list(self.flows.values()):
            if not f.pinned and now - f.last >= self.idle_ms and not self.stack.flow_busy(f):
                self._log("debug", "idle_close", flow=f)
                self._close(f, None)
        self._arm_sweeper()

    def pin(self, flow, on=True):
        flow.pinned = on

    def _close(self, f, err):
        if f.state == _CLOSED:
            return
        f.state = _CLOSED
        self.sched.unwatch(f.sock)
        if f.sock in self._by_sock:
            drop(self._by_sock, f.sock)  # not pop: the slot would keep the flow alive
        try:
            f.sock.close()
        except OSError:
            pass
        key = (f.kind, f.peer[0], f.peer[1])
        if self.flows.get(key) is f:
            drop(self.flows, key)
        f.out = []
        f.rbuf = bytearray()
        if err is not None:
            self._log("info", "flow_error", flow=f, err=err)
            if f.kind == "tls":
                from . import tls

                tls.refused(self, f, err)
        self.stack.flow_closed(f, err)

    # -- I/O ---------------------------------------------------------------------------------
    def _on_udp(self, sock, ev):
        for _ in range(8):  # a few datagrams per turn, then let timers run
            try:
                data, addr = recv(sock, self.limits.max_msg + 1, True)  # no heap: dropped
            except OSError:
                return
            except MemoryError:
                # No contiguous block for the read: answered transactions (which only
                # absorb retransmissions) go first, then the read is tried again.
                if not self.stack.shed():
                    return
                continue
            self.stack.receive(data, None, peer_of(addr), True)

    def _on_accept(self, sock, ev):
        from .uas import accept  # the server side, loaded with the first connection

        accept(self, sock)

    def _on_flow(self, sock, ev):
        f = self._by_sock.get(sock)
        if f is None:
            return
        if f.kind == "udp":
            for _ in range(8):
                try:
                    data = recv(sock, self.limits.max_msg + 1)  # no heap: dropped, not left
                except OSError as e:
                    if e.args[0] == errno.EAGAIN:
                        return
                    # ICMP port/host unreachable of this target: fail its transactions now.
                    self._close(f, e)
                    return
                f.last = self.sched.now()
                self.stack.receive(data, f, f.peer, True)
            return
        if f.state == _CONNECTING:
            if ev & (POLLERR | POLLHUP):
                self._close(f, OSError(errno.ECONNREFUSED))
                return
            if ev & POLLOUT:
                f.state = _OPEN
                if f.kind == "tls":
                    from . import tls  # loaded with the first TLS connection

                    if not tls.start(self, f):
                        return
        if f.state == _HANDSHAKE:
            from . import tls

            if not tls.step(self, f):
                return
        if ev & POLLIN or (ev & (POLLERR | POLLHUP)):
            self._stream_read(f)
        if f.state == _OPEN and f.out:
            self._flush(f)

    def _flush(self, f):
        try:
            while f.out:
                data = f.out[0]
                n = f.sock.send(data)
                if n is None:  # a TLS socket that would block (MicroPython)
                    n = 0
                if n < len(data):
                    f.out[0] = data[n:]
                    self.sched.watch(f.sock, POLLIN | POLLOUT, self._on_flow)
                    return
                f.out.pop(0)
        # MicroPython's TLS reports a bad certificate as ValueError
        except Exception as e:  # noqa: BLE001
            err = _broken(e)
            if err is None:
                self.sched.watch(f.sock, POLLIN | POLLOUT, self._on_flow)
                return
            self._close(f, err)
            return
        self.sched.watch(f.sock, POLLIN, self._on_flow)

    def _stream_read(self, f):
        rx = self._rx
        sock = f.sock
        into = getattr(sock, "readinto", None) or sock.recv_into
        try:
            n = into(rx)
        except MemoryError:  # TLS decrypting with no heap left: shed, read next turn
            self.stack.shed()
            return
        except Exception as e:  # noqa: BLE001 - see _flush
            err = _broken(e)
            if err is not None:
                self._close(f, err)
            return
        if n is None:  # MicroPython: nothing yet (or TLS handshake data only)
            return
        if not n:
            # The peer closed. Only an error for transactions still waiting on it.
            self._close(f, OSError(errno.ECONNRESET) if self.stack.flow_busy(f) else None)
            return
        f.last = self.sched.now()
        f.heard = True
        buf = f.rbuf
        buf.extend(memoryview(rx)[:n])
        while f.state != _CLOSED and buf:
            # CRLF keep-alives (RFC 5626 §4.4.1): a double CRLF ping gets a CRLF pong.
            if buf[0] == 13:
                if len(buf) >= 4 and buf[:4] == b"\r\n\r\n":
                    buf[:4] = b""
                    f.send(b"\r\n")
                    continue
                if len(buf) >= 2 and buf[:2] == b"\r\n":
                    buf[:2] = b""
                    continue
                if len(buf) < 2:
                    return
            try:
                n = frame(buf, len(buf), self.limits)
            except SipError as e:
                # Unframeable: answer what can be answered, then close (RFC 4475 3.1.2.3).
                answer = e
                try:
                    parse(bytes(buf), True, self.limits)
                except SipError as e2:
                    if e2.msg is not None:
                        answer = e2
                self.stack.answer_error(answer, f, f.peer)
                self._close(f, None)
                return
            if n == NEED_MORE:
                return
            msg = bytes(buf[:n])
            buf[:n] = b""
            if not buf:  # a bytearray keeps its largest size: a big message's would stay
                f.rbuf = buf = bytearray()
            self.stack.receive(msg, f, f.peer, False)

    # -- responses ---------------------------------------------------------------------------
    def send_response(self, data, req):
        f = req.flow
        if f is not None and f.reliable:
            try:
                f.send(data)
            except OSError as e:
                self._log("info", "response_lost", flow=f, err=e)
            return
        if self.udp is None:
            return
        ip, port = response_addr(req)
        self.trace_tx(data, "udp", ip, port)
        try:
            self.udp.sendto(data, sockaddr(ip, port))
        except OSError as e:
            self._log("info", "response_lost", ip=ip, port=port, err=e)

    # -- the message ladder ------------------------------------------------------------------
    # One DEBUG line per SIP message sent or received (ladder.py, loaded only when the sip
    # area is at debug): when it is not, this costs one dict lookup.
    def trace_tx(self, data, kind, ip, port):
        if self.log.enabled(_DEBUG, "sip") and len(data) >= 12:
            from .ladder import trace_tx

            trace_tx(self.log, data, kind, ip, port)

    def trace_rx(self, m, kind, src):
        if self.log.enabled(_DEBUG, "sip"):
            from .ladder import trace_rx

            trace_rx(self.log, m, kind, src)

    def _log(self, level, event, **kv):
        getattr(self.log, level)("sip", event, **kv)


def _broken(e):
    """None when ``e`` only says "try later" (EAGAIN, CPython's SSLWantRead/WriteError, an
    OSError whose errno is SSL's); else the OSError to close the connection with
    (MicroPython's TLS reports a bad certificate as ValueError)."""
    if isinstance(e, OSError):
        if (e.args and e.args[0] == errno.EAGAIN) or type(e).__name__.startswith("SSLWant"):
            return None
        return e
    return OSError(errno.ECONNABORTED, str(e))


def response_addr(req):
    """Where a UDP response goes (RFC 3261 §18.2.2 with RFC 3581 rport): the source
    address, and the source port if the Via asked for rport, else the Via's port."""
    ip, port = req.src
    v = req.via
    if v is None or "rport" in v.params:
        return ip, port
    return ip, v.port or 5060
