"""An I/O callback that keeps failing on a ready socket must not spin the loop.

Seen on the unix port at 224 KB of heap: the DNS reader raised MemoryError before it read,
the socket stayed readable, poll() handed it back at once, and the log filled with the same
traceback thousands of times a second. The scheduler now takes such a socket out of the
poll set (a back-off, or the owner's ``on_error``) and the timers keep their pace.
"""

import socket

from fwtest import ListLog, bind_udp, new_sched
from sipua import sched as schedmod
from sipua import schedslow
from sipua.sched import POLLIN


def _ready_socket():
    """A UDP socket with one datagram waiting (it stays readable until read)."""
    rx, port = bind_udp("127.0.0.1")
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = socket.getaddrinfo("127.0.0.1", port)[0][-1]
    tx.sendto(b"x" * 100, addr)
    return rx, tx, addr


def _sched():
    out = ListLog()
    s, _ = new_sched(real_poll=True, real_wait_ms=5)
    s._log = out.logger
    return s, out


def test_failing_reader_backs_off_recovers_and_timers_still_run():
    s, out = _sched()
    rx, tx, addr = _ready_socket()
    calls = []
    got = []
    ticks = []

    def reader(sock, events):
        calls.append(s.now())
        if len(calls) < 8:
            raise MemoryError("no heap")  # fails before it reads: the socket stays ready
        got.append(sock.recv(200))

    def tick():
        ticks.append(1)
        s.call_later(100, tick)

    try:
        s.watch(rx, POLLIN, reader)
        s.call_later(100, tick)
        s.run(until_ms=20000)
        # Without containment this is one call per loop turn: tens of thousands.
        assert len(calls) == 8, len(calls)
        assert len(ticks) >= 190  # the timers kept their pace all along
        # One traceback for the run of failures, then one line per back-off.
        assert len(out.events("callback_error")) == 1
        backoffs = out.events("io_backoff")
        assert len(backoffs) == 7 - schedmod.IO_FAIL_LIMIT + 1
        waits = [int(e["ms"]) for e in backoffs]
        assert waits[0] == schedslow.IO_BACKOFF_MS and waits[1] == 2 * waits[0]
        assert max(waits) <= schedslow.IO_BACKOFF_MAX_MS
        assert backoffs[0]["err"] == "MemoryError" and backoffs[0]["fn"] == "reader"
        assert len(out.lines) < 20
        # Recovered: the 8th call read the datagram, and new data is served at once again.
        assert got == [b"x" * 100]
        tx.sendto(b"y", addr)
        assert s.run_until(lambda: len(got) == 2, 1000)
        assert got[1] == b"y" and len(calls) == 9
    finally:
        s.unwatch(rx)
        rx.close()
        tx.close()


def test_owner_is_told_once_and_the_socket_is_unwatched():
    s, out = _sched()
    rx, tx, addr = _ready_socket()
    calls = []
    told = []

    def reader(sock, events):
        calls.append(1)
        raise MemoryError("no heap")

    try:
        s.watch(rx, POLLIN, reader, lambda sock, err: told.append((sock, type(err))))
        s.run(until_ms=3000)
        assert len(calls) == schedmod.IO_FAIL_LIMIT
        assert told == [(rx, MemoryError)]
        assert len(out.events("io_error")) == 1 and len(out.events("callback_error")) == 1
        tx.sendto(b"more", addr)
        s.run(until_ms=s.now() + 500)
        assert len(calls) == schedmod.IO_FAIL_LIMIT  # out of the poll set for good
    finally:
        s.unwatch(rx)
        rx.close()
        tx.close()


def test_unwatch_while_backing_off_cancels_the_resume():
    s, out = _sched()
    rx, tx, _addr = _ready_socket()
    calls = []

    def reader(sock, events):
        calls.append(1)
        raise ValueError("bad")

    try:
        s.watch(rx, POLLIN, reader)
        assert s.run_until(lambda: out.events("io_backoff"), 1000)
        s.unwatch(rx)
        n = len(calls)
        s.run(until_ms=s.now() + 3000)
        assert len(calls) == n and not s._io
        # Watching it again starts afresh: the next failures are counted from zero.
        s.watch(rx, POLLIN, reader)
        assert s.run_until(lambda: len(out.events("io_backoff")) == 2, 1000)
        assert len(calls) == n + schedmod.IO_FAIL_LIMIT
    finally:
        s.unwatch(rx)
        rx.close()
        tx.close()


def test_a_good_read_resets_the_failure_count():
    s, out = _sched()
    rx, tx, addr = _ready_socket()
    calls = []

    def reader(sock, events):
        calls.append(1)
        if len(calls) % 2:  # every other call fails: never IO_FAIL_LIMIT in a row
            raise MemoryError("no heap")
        sock.recv(200)
        tx.sendto(b"again", addr)

    try:
        s.watch(rx, POLLIN, reader)
        assert s.run_until(lambda: len(calls) >= 20, 2000)
        assert not out.events("io_backoff")
    finally:
        s.unwatch(rx)
        rx.close()
        tx.close()


class _ShortOfHeap:
    """A poller whose answer list cannot be allocated ``n`` times (as poll() on a full heap)."""

    def __init__(self, inner, n):
        self.inner, self.n = inner, n

    def poll(self, ms):
        if self.n > 0:
            self.n -= 1
            raise MemoryError("memory allocation failed, allocating 16 bytes")
        return self.inner.poll(ms)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_loop_survives_memory_errors_in_its_own_bookkeeping():
    s, _ = new_sched()
    s._poller = _ShortOfHeap(s._poller, 3)
    ticks = []

    def tick():
        ticks.append(s.now())
        if len(ticks) < 5:
            s.call_later(100, tick)

    s.call_later(100, tick)
    s.run(until_ms=2000)
    assert len(ticks) == 5 and s._poller.n == 0
    assert s.run_until(lambda: True, 100)
