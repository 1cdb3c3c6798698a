"""Helpers for firmware tests that run on both CPython (pytest) and MicroPython.

pytest is not available on the board's interpreter, so firmware tests are plain ``test_*``
functions using ``assert`` and these few helpers.
"""


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exception it raised; fail if it raised nothing or another."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc_type.__name__))


def new_sched(start_ticks=0, real_poll=False, real_wait_ms=20):
    """A scheduler in virtual time; with real_poll, real sockets can be watched too."""
    import select

    from sipua.sched import Scheduler
    from sipua.vtime import VirtualClock, VirtualPoller

    clock = VirtualClock(start_ticks)
    poller = VirtualPoller(clock, select.poll() if real_poll else None, real_wait_ms)
    return Scheduler(clock=clock, poller=poller), clock


class ListLog:
    """A Logger whose lines land in a list, for assertions on log output."""

    def __init__(self, level=10):
        from sipua.log import Logger

        self.lines = []
        self.logger = Logger(write=self.lines.append, clock=lambda: 0, level=level)

    def events(self, event=None):
        from sipua.log import parse_line

        out = [parse_line(x) for x in self.lines]
        return [x for x in out if x and (event is None or x["event"] == event)]


def bind_udp(host, proto=None):
    """A UDP (or given type) socket bound to a free port on host; returns (sock, port).

    MicroPython sockets have no getsockname(), so pick ports ourselves.
    """
    import socket

    from sipua.compat import urandom_u32

    kind = socket.SOCK_DGRAM if proto is None else proto
    for _ in range(50):
        port = 20000 + urandom_u32() % 30000
        sock = socket.socket(socket.AF_INET, kind)
        try:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(socket.getaddrinfo(host, port)[0][-1])
            return sock, port
        except OSError:
            sock.close()
    raise OSError("no free port on %s" % host)


def start_stack(sched, ip, log, tries=20, **kw):
    """A SipStack listening on a free port of ``ip`` (ports picked at random: no getsockname)."""
    from sipua.compat import urandom_u32
    from sipua.sip.stack import SipStack

    for _ in range(tries):
        st = SipStack(sched, ip, 20000 + urandom_u32() % 30000, log=log, **kw)
        try:
            st.start()
            return st
        except OSError:
            st.stop()
    raise OSError("no free SIP port on %s" % ip)


def make_tmpdir(prefix):
    """A fresh folder under /tmp (MicroPython has no tempfile); remove with remove_tmpdir."""
    import os

    from sipua.compat import urandom_u32

    path = "/tmp/%s-%d" % (prefix, urandom_u32() % 1000000)
    os.mkdir(path)
    return path


def remove_tmpdir(path):
    import os

    for name in os.listdir(path):
        os.remove(path + "/" + name)
    os.rmdir(path)
