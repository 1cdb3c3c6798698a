"""Reading a datagram when the heap may be short of one contiguous block.

``sock.recv(n)`` allocates its n-byte result before it reads. When that fails the datagram
stays queued, poll() says "readable" again at once, and the loop spins on a reader that
can never succeed (seen: 1233 bytes for a DNS answer at 224 KB of heap). ``readinto`` into
a preallocated buffer needs no heap, but on MicroPython it keeps reading until the buffer
is full, so several queued datagrams would run together: fine for a TCP stream (the SIP
transport reads streams that way), wrong for datagrams. So datagrams are read with recv:
when its n bytes (8 KB for SIP) are not there in one piece even after a collection, with
``small`` bytes (an Ethernet MTU: RFC 3261 §18.1.1 sends anything bigger over TCP), which
a fragmented heap still has; only when even that fails are the queued datagrams dropped
— read into a small scratch buffer, which needs nothing — and MemoryError raised. UDP may
lose a datagram anyway; the retransmission (SIP Timer A/E, the DNS retry) comes later.
"""

import gc

from .compat import const, readinto

_scratch = bytearray(64)  # each read into it consumes one datagram (truncated to 64 bytes)
_DRAIN_MAX = const(32)  # datagrams dropped per call at most: bounded work in one callback
SMALL = 1500  # the read size to fall back on: one MTU


def drain(sock):
    """Drop the datagrams queued on ``sock`` without allocating; how many were dropped."""
    n = 0
    while n < _DRAIN_MAX:
        try:
            if not readinto(sock, _scratch):
                break
        except OSError:
            break
        n += 1
    return n


def recv(sock, n, source=False, small=SMALL):
    """``sock.recv(n)`` (``recvfrom`` with ``source``); see above for MemoryError. A
    datagram longer than ``small`` read in the fallback comes back cut to ``small`` bytes
    (the parser then refuses it, as it would refuse one too long for n). Nothing here
    allocates before the drain: not even a tuple of sizes to loop over."""
    try:
        return _recv(sock, n, source)
    except MemoryError:
        gc.collect()
    try:
        return _recv(sock, n, source)
    except MemoryError:
        pass
    if small < n:
        try:
            return _recv(sock, small, source)
        except MemoryError:
            pass
    drain(sock)
    raise MemoryError("no heap for a datagram: dropped")


def _recv(sock, n, source):
    return sock.recvfrom(n) if source else sock.recv(n)
