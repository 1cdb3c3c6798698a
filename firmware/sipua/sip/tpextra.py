"""The transport's occasional steps (``Transports._x``): opening and closing the listening
sockets (start, the stack's stop, a config reload, a new address), closing the least recently used
idle flow when the flow table is full, and the stand-in for a flow that could not be opened.
Loaded for the step and forgotten after it."""

import errno
import socket

from ..sched import POLLIN
from .transport import sockaddr


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


class DeadFlow:
    """Stands in for a flow that could not be opened: the send fails, the transaction
    reports TRANSPORT_ERROR on the next turn like any other transport failure."""

    reliable = True
    local_port = 0

    def __init__(self, err):
        self.err = err

    def send(self, data):
        raise self.err
