"""TCP and TLS flows (``transport.py``'s stream half): connect, write out, read and frame.
Loaded with the first stream flow (one we open, or one the registrar opens to us) and kept;
a UDP-only phone never loads it."""

import errno
import socket

from ..compat import const
from ..sched import POLLERR, POLLHUP, POLLIN, POLLOUT
from . import SipError
from .hdr import lookup
from .msg import LIMITS, parse
from .scan import is_digits
from .transport import sockaddr

_CONNECTING = const(0)  # transport.py's flow states
_OPEN = const(1)
_CLOSED = const(2)
_HANDSHAKE = const(3)  # TLS: connected, handshake under way (tls.py)
_H_CONTENT_LENGTH = const(8)  # hdr.py's id
# the parser's reasons (sip/reasons.py)
_R_MESSAGE_TOO_LARGE = const(10)
_R_BAD_CONTENT_LENGTH = const(11)

NEED_MORE = -1


def frame(buf, n, limits=LIMITS):
    """Stream framing (TCP/TLS): the length of the message at the start of ``buf[:n]``.

    Returns ``NEED_MORE`` when the headers or the body are not all there yet; raises
    ``SipError`` when the stream cannot be framed (bad or repeated Content-Length, headers
    longer than the limit): the connection must then be closed, since no later byte
    can be trusted to start a message. Leading CRLFs (keep-alives) are the caller's.
    """
    e = buf.find(b"\r\n\r\n", 0, n)
    if e < 0:
        if n > limits.max_msg:
            raise SipError(513, _R_MESSAGE_TOO_LARGE)
        return NEED_MORE
    cl = None
    p = buf.find(b"\r\n", 0, e + 2) + 2
    while p < e + 2:
        le = buf.find(b"\r\n", p)
        c = buf[p] | 32
        if c == 108 or c == 99:  # 'l' or 'c'
            colon = buf.find(b":", p, le)
            if colon > 0 and lookup(bytes(buf[p:colon]).strip().lower()) == _H_CONTENT_LENGTH:
                v = bytes(buf[colon + 1:le]).strip()
                if cl is not None or not is_digits(v) or len(v) > 9:
                    raise SipError(400, _R_BAD_CONTENT_LENGTH)
                cl = int(v)
        p = le + 2
    total = e + 4 + (cl or 0)
    if total > limits.max_msg:
        raise SipError(513, _R_MESSAGE_TOO_LARGE)
    return total if total <= n else NEED_MORE


def open_tcp(tp, f):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        if tp.local_ip != "0.0.0.0":
            # Leave from the address Via and Contact name (a host with several, or a
            # lab of boards on 127/8): the registrar's received= then matches.
            s.bind(sockaddr(tp.local_ip, 0))
        s.connect(sockaddr(f.peer[0], f.peer[1]))
    except OSError as e:
        if e.args[0] not in (errno.EINPROGRESS, errno.EAGAIN):
            s.close()
            raise
    f.sock = s
    tp.sched.watch(s, POLLOUT | POLLIN, tp._on_flow)


def event(tp, f, ev):
    """Poll events ``ev`` on stream flow ``f``: connected, TLS handshake, data, writable."""
    if f.state == _CONNECTING:
        if ev & (POLLERR | POLLHUP):
            tp._close(f, OSError(errno.ECONNREFUSED))
            return
        if ev & POLLOUT:
            f.state = _OPEN
            if f.kind == "tls":
                from . import tls  # loaded with the first TLS connection

                if not tls.start(tp, f):
                    return
    if f.state == _HANDSHAKE:
        from . import tls

        if not tls.step(tp, f):
            return
    if ev & POLLIN or (ev & (POLLERR | POLLHUP)):
        _read(tp, f)
    if f.state == _OPEN and f.out:
        flush(tp, f)


def flush(tp, f):
    """Write what ``f`` has queued, as far as the socket takes it."""
    try:
        while f.out:
            data = f.out[0]
            n = f.sock.send(data)
            if n is None:  # a TLS socket that would block (MicroPython)
                n = 0
            if n < len(data):
                f.out[0] = data[n:]
                tp.sched.watch(f.sock, POLLIN | POLLOUT, tp._on_flow)
                return
            f.out.pop(0)
    # MicroPython's TLS reports a bad certificate as ValueError
    except Exception as e:  # noqa: BLE001
        err = _broken(e)
        if err is None:
            tp.sched.watch(f.sock, POLLIN | POLLOUT, tp._on_flow)
            return
        tp._close(f, err)
        return
    tp.sched.watch(f.sock, POLLIN, tp._on_flow)


def _read(tp, f):
    rx = tp._rx
    sock = f.sock
    into = getattr(sock, "readinto", None) or sock.recv_into
    try:
        n = into(rx)
    except MemoryError:  # TLS decrypting with no heap left: shed, read next turn
        tp.stack.shed()
        return
    except Exception as e:  # noqa: BLE001 - see flush
        err = _broken(e)
        if err is not None:
            tp._close(f, err)
        return
    if n is None:  # MicroPython: nothing yet (or TLS handshake data only)
        return
    if not n:
        # The peer closed. Only an error for transactions still waiting on it.
        tp._close(f, OSError(errno.ECONNRESET) if tp.stack.flow_busy(f) else None)
        return
    f.last = tp.sched.now()
    f.heard = True
    buf = f.rbuf
    buf.extend(memoryview(rx)[:n])
    while f.state != _CLOSED and buf:
        # CRLF keep-alives (RFC 5626 §4.4.1): a double CRLF ping gets a CRLF pong.
        if buf[0] == 13:
            if len(buf) >= 4 and buf[:4] == b"\r\n\r\n":
                buf[:4] = b""
                f.send(b"\r\n")
                continue
            if len(buf) >= 2 and buf[:2] == b"\r\n":
                buf[:2] = b""
                continue
            if len(buf) < 2:
                return
        try:
            n = frame(buf, len(buf), tp.limits)
        except SipError as e:
            # Unframeable: answer what can be answered, then close (RFC 4475 3.1.2.3).
            answer = e
            try:
                parse(bytes(buf), True, tp.limits)
            except SipError as e2:
                if e2.msg is not None:
                    answer = e2
            from .strans import answer_error  # the server side answers it

            answer_error(tp.stack, answer, f, f.peer)
            tp._close(f, None)
            return
        if n == NEED_MORE:
            return
        msg = bytes(buf[:n])
        buf[:n] = b""
        if not buf:  # a bytearray keeps its largest size: a big message's would stay
            f.rbuf = buf = bytearray()
        tp.stack.receive(msg, f, f.peer, False)


def _broken(e):
    """None when ``e`` only says "try later" (EAGAIN, CPython's SSLWantRead/WriteError, an
    OSError whose errno is SSL's); else the OSError to close the connection with
    (MicroPython's TLS reports a bad certificate as ValueError)."""
    if isinstance(e, OSError):
        if (e.args and e.args[0] == errno.EAGAIN) or type(e).__name__.startswith("SSLWant"):
            return None
        return e
    return OSError(errno.ECONNABORTED, str(e))
