"""DNS over TCP (RFC 1035 §4.2.2, RFC 7766): one query, one answer, then close.

Only needed when a UDP answer comes back truncated (TC=1), so the resolver imports this
module at that moment and a board that never sees a large answer never loads it.
"""

import errno
import socket
import struct

from ..sched import POLLIN, POLLOUT

_IN_PROGRESS = (errno.EINPROGRESS, errno.EAGAIN, 119)  # 119: EINPROGRESS in lwIP's numbering


class Exchange:
    """Connect, send the length-prefixed query, read one length-prefixed answer.

    ``cb(data, None)`` with the answer's bytes, or ``cb(None, reason)``; called once.
    """

    def __init__(self, sched, server, sockaddr, query, cb, timeout_ms, max_len, bind=None):
        self.sched = sched
        self.cb = cb
        self.max_len = max_len
        self.out = struct.pack("!H", len(query)) + query
        self.sent = 0
        self.buf = bytearray()
        self.sock = socket.socket(sockaddr[0], socket.SOCK_STREAM)
        self.timer = sched.call_later(timeout_ms, self._fail, "tcp timeout")
        try:
            if bind is not None:
                bind(self.sock, sockaddr[0])  # the resolver's source address, if it has one
            self.sock.setblocking(False)
            self.sock.connect(sockaddr[1])
        except OSError as e:
            if not e.args or e.args[0] not in _IN_PROGRESS:
                sched.call_soon(self._fail, "tcp connect: %s" % e)
                return
        sched.watch(self.sock, POLLOUT, self._writable, self._io_error)

    def close(self):
        self.cb = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.sock is not None:
            self.sched.unwatch(self.sock)
            self.sock.close()
            self.sock = None  # type: ignore

    def _end(self, data, err):
        cb = self.cb
        self.close()
        if cb is not None:
            cb(data, err)

    def _fail(self, why):
        self._end(None, why)

    def _io_error(self, sock, err):
        """The scheduler gave up on the socket (a callback kept raising): this exchange failed."""
        self._fail("tcp: %s" % type(err).__name__)

    def _writable(self, sock, events):
        try:
            n = sock.send(self.out[self.sent :])
        except OSError as e:
            if e.args and e.args[0] in _IN_PROGRESS:
                return
            return self._fail("tcp send: %s" % e)
        self.sent += n or 0
        if self.sent >= len(self.out):
            self.sched.watch(sock, POLLIN, self._readable, self._io_error)

    def _readable(self, sock, events):
        try:
            chunk = sock.recv(1024)
        except OSError as e:
            if e.args and e.args[0] in _IN_PROGRESS:
                return
            return self._fail("tcp recv: %s" % e)
        if not chunk:
            return self._fail("tcp closed early")
        buf = self.buf
        buf.extend(chunk)
        if len(buf) < 2:
            return
        need = (buf[0] << 8 | buf[1]) + 2
        if need > self.max_len + 2:
            return self._fail("tcp answer too long")
        if len(buf) >= need:
            self._end(bytes(buf[2:need]), None)
