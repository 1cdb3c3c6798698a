"""Connected UDP flows (``transport.py``'s datagram half): reading one. A flow is one UDP
target's socket, bound to the SIP port, so the kernel's ICMP unreachable names its flow
(opened by ``tpextra.open_udp``). Loaded with the first UDP flow's first datagram and kept;
a TCP/TLS phone never loads it (its listener is transport.py's)."""

import errno

from ..netio import recv


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
