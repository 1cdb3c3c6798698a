"""Connected UDP flows (``transport.py``'s datagram half): one per UDP target, bound to the
SIP port, so the kernel's ICMP unreachable names its flow. Loaded with the first UDP flow
and kept; a TCP/TLS phone never loads it (its listener is transport.py's)."""

import errno
import socket

from ..compat import const, urandom_u32
from ..netio import recv
from ..sched import POLLIN
from .transport import sockaddr

_OPEN = const(1)  # transport.py's flow state
_PORT_TRIES = const(20)


def open_udp(tp, f):
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


def read(tp, f):
    """A few datagrams from ``f``'s socket per turn, then timers run."""
    sock = f.sock
    for _ in range(8):
        try:
            data = recv(sock, tp.limits.max_msg + 1)  # no heap: dropped, not left
        except OSError as e:
            if e.args[0] == errno.EAGAIN:
                return
            # ICMP port/host unreachable of this target: fail its transactions now.
            tp._close(f, e)
            return
        f.last = tp.sched.now()
        tp.stack.receive(data, f, f.peer, True)
