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
  framing with ``stream.frame`` (partial reads, several messages per read, CRLF keep-alives),
  closed after ``idle_ms`` without traffic unless pinned (a TCP registration lives as long as
  its connection, so the registration agent pins it).
- TLS: TCP plus the ``ssl`` module, imported only when a TLS target is used (``tls.py``).
- The stream half (connect, write out, read and frame) is ``stream.py``, loaded with the
  first TCP/TLS flow: a UDP-only phone never loads it. Reading a connected UDP flow is
  ``dgram.py``'s; opening one is an occasional step (``tpextra.py``). Closing a flow stays
  here: it must work on a heap too short to load a module.

Responses to incoming requests go back on the connection they came on (stream) or by the
RFC 3261 §18.2.2 / RFC 3581 rules (UDP): received address, rport or the Via port.
"""

import errno
import socket

from ..compat import const, drop, forget
from ..netio import recv

_CONNECTING = const(0)
_OPEN = const(1)
_CLOSED = const(2)  # 3: TLS handshake under way (stream.py, tls.py)
_RECV = const(1024)  # bytes per TCP read
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

    # A stream's (TCP/TLS) alone, set on it (a datagram flow sends and reads whole messages;
    # class defaults keep its attribute table small): bytes queued until connected /
    # writable, bytes read not yet framed, a read since the keep-alive's ping (keepalive.py;
    # set by every read), held open by a registration (``Transports.pin``).
    out = None
    rbuf = None
    heard = False
    pinned = False

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
        if self.reliable:
            self.out = []
            self.rbuf = bytearray()
        self.last = 0  # scheduler ms of the last traffic
        self.local_port = tp.local_port

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
            from .stream import flush

            flush(self.tp, self)


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

    # -- start, stop, a full flow table: tpextra.py ------------------------------------------
    def _x(self, name, *args):
        """A rare step (``listen``, ``close``, ``unlisten``, ``make_room``, ``open_udp``):
        its code is in tpextra.py, loaded for the step and forgotten after it."""
        from . import tpextra

        forget("sipua.sip.tpextra")
        return getattr(tpextra, name)(self, *args)

    def listen(self, tcp=True):
        self._x("listen", tcp)

    def close(self):
        self._x("close")

    def unlisten(self):
        """Close the listening sockets (the port is free again); the flows stay."""
        self._x("unlisten")

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
        if len(self.flows) >= self.max_flows:
            self._x("make_room")
        f = Flow(self, kind, ip, port, host)
        if kind == "udp":
            self._x("open_udp", f)  # connected UDP: tpextra.py, loaded for it
        elif kind == "tcp" or kind == "tls":
            from .stream import open_tcp

            open_tcp(self, f)
        else:
            raise OSError(errno.EINVAL)
        f.last = self.sched.now()
        self.flows[key] = f
        self._by_sock[f.sock] = f
        self._arm_sweeper()
        return f

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
        f.out = f.rbuf = None  # its buffers go with it
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
            from .dgram import read

            read(self, f)
            return
        from .stream import event  # TCP/TLS: loaded with the first stream flow

        event(self, f, ev)

    # -- responses ---------------------------------------------------------------------------
    def send_response(self, data, req):
        """A response to ``req`` (the server side's code: ``strans.send_response``)."""
        from .strans import send_response

        send_response(self, data, req)

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
