"""The transport's occasional steps (``Transports._x``): opening and closing the listening
sockets (start, the stack's stop, a config reload, a new address), opening a connected UDP
flow, closing the least recently used idle flow when the flow table is full, and the
stand-in for a flow that could not be opened. Loaded for the step and forgotten after it."""

import errno
import socket

from ..compat import const, urandom_u32
from ..sched import POLLIN
from .transport import sockaddr

_OPEN = const(1)  # transport.py's flow state
_PORT_TRIES = const(20)


def listen(tp, tcp=True):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(sockaddr(tp.local_ip, tp.local_port))
    s.setblocking(False)
    tp.udp = s
    tp.sched.watch(s, POLLIN, tp._on_udp)
    if tcp:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(sockaddr(tp.local_ip, tp.local_port))
        t.listen(4)
        t.setblocking(False)
        tp.tcp = t
        tp.sched.watch(t, POLLIN, tp._on_accept)


def stop(tp):
    """``SipStack.stop``: its client transactions abandoned, then ``close``."""
    for t in list(tp.stack.ctx.values()):
        t.abandon()
    close(tp)


def close(tp):
    for f in list(tp.flows.values()):
        tp._close(f, None)
    unlisten(tp)
    if tp._sweeper:
        tp._sweeper.cancel()
        tp._sweeper = None


def unlisten(tp):
    for s in (tp.udp, tp.tcp):
        if s is not None:
            tp.sched.unwatch(s)
            s.close()
    tp.udp = tp.tcp = None


def make_room(tp):
    """The flow table is full: close the idle flow used longest ago (ENOBUFS if none is)."""
    idle = [f for f in tp.flows.values() if not f.pinned and not tp.stack.flow_busy(f)]
    if not idle:
        raise OSError(errno.ENOBUFS)
    idle.sort(key=lambda f: f.last)
    tp._close(idle[0], None)


def open_udp(tp, f):
    """A connected UDP socket for flow ``f``, bound to the SIP port (SO_REUSEADDR) or, when
    that cannot be shared, to a port of its own (Via then names it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(sockaddr(tp.local_ip, tp.local_port))
    except OSError:
        s.close()
        s = None
        for _ in range(_PORT_TRIES):  # the SIP port cannot be shared: one of our own
            port = 20000 + urandom_u32() % 40000
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(sockaddr(tp.local_ip, port))
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
    tp.sched.watch(s, POLLIN, tp._on_flow)


class DeadFlow:
    """Stands in for a flow that could not be opened: the send fails, the transaction
    reports TRANSPORT_ERROR on the next turn like any other transport failure."""

    reliable = True
    local_port = 0

    def __init__(self, err):
        self.err = err

    def send(self, data):
        raise self.err
