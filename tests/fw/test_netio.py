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
    """A socket whose recv has no heap (as MicroPython's when no block is left)."""

    def __init__(self, sock):
        self.sock = sock
        self.tries = 0

    def recv(self, n):
        self.tries += 1
        raise MemoryError("memory allocation failed, allocating %d bytes" % n)

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
        raises(MemoryError, netio.recv, fake, 1233, True)
        assert fake.tries == 2  # once more after a collection
        assert not [e for e in p.poll(50) if e[1] & select.POLLIN]  # drained: not readable
    finally:
        rx.close()
        tx.close()


def test_drain_is_bounded_and_counts():
    rx, tx, p = _pair(40)
    try:
        assert netio.drain(rx) == 32  # bounded: the rest waits for the next turn
        assert netio.drain(rx) == 8
        assert netio.drain(rx) == 0
    finally:
        rx.close()
        tx.close()
