"""netio.recv: a datagram socket is never left readable for want of heap."""

import select
import socket

from fwtest import bind_udp, raises
from sipua import netio


def _pair(n):
    rx, port = bind_udp("127.0.0.1")
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = socket.getaddrinfo("127.0.0.1", port)[0][-1]
    for i in range(n):
        tx.sendto(b"%d" % i * 100, addr)
    p = select.poll()
    p.register(rx, select.POLLIN)
    assert p.poll(1000)
    return rx, tx, p


class _NoHeap:
    """A socket whose recv has no heap for blocks above ``fits`` bytes (a fragmented heap)."""

    def __init__(self, sock, fits=0):
        self.sock = sock
        self.fits = fits
        self.tries = []

    def recv(self, n):
        self.tries.append(n)
        if n > self.fits:
            raise MemoryError("memory allocation failed, allocating %d bytes" % n)
        return self.sock.recvfrom(n)

    recvfrom = recv

    def readinto(self, buf):  # MicroPython's spelling
        return self.sock.readinto(buf)

    def recv_into(self, buf):  # CPython's
        try:
            return self.sock.recv_into(buf)
        except BlockingIOError:
            return None


def test_datagrams_one_at_a_time():
    rx, tx, p = _pair(3)
    try:
        got = []
        for _ in range(3):
            for _ in range(50):
                if p.poll(20):
                    break
            got.append(netio.recv(rx, 2000))
        assert got == [b"0" * 100, b"1" * 100, b"2" * 100]  # boundaries kept, not run together
        assert netio.recv(_From(b"x"), 10, True) == (b"x", ("127.0.0.9", 53))
    finally:
        rx.close()
        tx.close()


class _From:
    def __init__(self, data):
        self.data = data

    def recvfrom(self, n):
        return self.data, ("127.0.0.9", 53)


def test_no_heap_drops_the_queued_datagrams_instead_of_leaving_them():
    rx, tx, p = _pair(3)
    try:
        fake = _NoHeap(rx)
        raises(MemoryError, netio.recv, fake, 8193, True)
        assert fake.tries == [8193, 8193, netio.SMALL]  # again after a collection, then 1 MTU
        assert not [e for e in p.poll(50) if e[1] & select.POLLIN]  # drained: not readable
    finally:
        rx.close()
        tx.close()


def test_fragmented_heap_still_reads_an_mtu_sized_datagram():
    rx, tx, p = _pair(2)
    try:
        fake = _NoHeap(rx, fits=2000)
        data, _src = netio.recv(fake, 8193, True)
        assert data == b"0" * 100 and fake.tries == [8193, 8193, netio.SMALL]
        assert [e for e in p.poll(50) if e[1] & select.POLLIN]  # the next one still waits
    finally:
        rx.close()
        tx.close()


def test_drain_is_bounded_and_counts():
    rx, tx, _p = _pair(40)
    try:
        assert netio.drain(rx) == 32  # bounded: the rest waits for the next turn
        assert netio.drain(rx) == 8
        assert netio.drain(rx) == 0
    finally:
        rx.close()
        tx.close()


def test_with_the_heap_locked_the_datagram_is_still_drained():
    # MicroPython: heap_lock makes every allocation fail, as a heap with no free block
    # does. netio.recv must still take the datagram off the socket (and raise).
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:  # CPython: recv simply succeeds; the socket ends drained as well
        heap_lock = heap_unlock = lambda: None
    rx, tx, p = _pair(2)
    try:
        heap_lock()
        try:
            netio.recv(rx, 8193, True)
            netio.recv(rx, 8193, True)
        except MemoryError:
            pass
        finally:
            heap_unlock()
        assert not [e for e in p.poll(50) if e[1] & select.POLLIN]
    finally:
        rx.close()
        tx.close()
