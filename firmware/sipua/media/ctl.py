"""A media session's rare steps, loaded for each and forgotten after it (``Session._ctl``):
the RTP/RTCP port pair, start, a re-INVITE's update, stop. What runs every packet (and
``stats``, which host tools poll) stays in ``rtp.py``."""

from ..compat import forget, urandom_u32
from ..sched import POLLIN
from .rtp import _clock, _sessions


def _name(pt):
    return "PCMA" if pt else "PCMU"  # 8 or 0: G.711 was negotiated


def _sock(ip, port):
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(socket.getaddrinfo(ip, port)[0][-1])
    except OSError:
        s.close()
        raise
    s.setblocking(False)
    return s


def bind(s, cfg, ip, log, call):
    """A new session (``Session()``): the RTP (even) and RTCP port pair, from
    audio.rtp_ports (OSError: none free); the rest of its state is made by ``start``."""
    s.cfg, s.ip, s.log, s.call = cfg, ip, log, call
    s.running = s.held = False  # held: we hold the call, nothing is sent
    s.due = 0x3FFFFFFF
    lo, hi = cfg["rtp_ports"]
    lo += lo & 1
    pairs = (hi - lo + 1) // 2
    for i in range(pairs):  # each call starts elsewhere in the range, then probes
        port = lo + 2 * ((call + i) % pairs)
        try:
            a = _sock(ip, port)
        except OSError:
            continue
        try:
            b = _sock(ip, port + 1)
        except OSError:
            a.close()
            continue
        s.port, s.rtp, s.rtcp = port, a, b
        return
    raise OSError("no free RTP port pair in %d..%d" % (lo, hi))


def start(s, pt, remote, direction):
    from .jbuf import JitterBuffer

    cfg = s.cfg
    s.ptime = p = remote.ptime if 10 <= remote.ptime <= 60 else cfg["ptime"]
    s.n = n = 8 * p  # samples (and G.711 bytes) per packet
    s.tx = bytearray(12 + n)
    s.txpay = memoryview(s.tx)[12:]
    s.rx = bytearray(24 + 2 * n)  # two packets exactly: see _walk
    mv = memoryview(s.rx)
    s.rxpay = mv[12:12 + n]
    s.play = mv[:n]  # rx is free between reads: the frame played out
    # "silence" and "null" need no object, and with both no codec, PCM frame or decode
    # table: the payload is the law's silence code, made once (_apply), and nothing is
    # decoded for nobody (rtp.py: source / sink None)
    s.pcm = s.table = None
    src, snk = cfg["source"], cfg["sink"]
    if src != "silence" or snk != "null":
        from ..hal.audio import open_sink, open_source

        s.sink = None if snk == "null" else open_sink(snk, n)
        s.source = None if src == "silence" else open_source(src, n, sink=s.sink)
        forget("sipua.hal.audio")  # the openers; the objects are plain's, tone's, wav's, i2s's
        _pcm(s)
    s.jb = JitterBuffer(n, p, start_ms=cfg["jitter_ms"])
    tx = s.tx
    tx[0] = 0x80
    r = urandom_u32()  # SSRC
    tx[8], tx[9], tx[10], tx[11] = r >> 24, r >> 16 & 255, r >> 8 & 255, r & 255
    r = urandom_u32()  # first timestamp and sequence number
    s.ts_hi, s.ts_lo = r >> 16, r & 0xFFFF
    s.seq = urandom_u32() & 0xFFFF
    s.mark = 1
    # counters: packets/octets sent, packets accepted, dropped (bad_ssrc, other, stray:
    # from another source)
    s.sent = s.octets = s.received = s.bad_ssrc = s.dropped = s.stray = 0
    s.rssrc = None  # the far end's SSRC, as (high 16 bits, low 16 bits)
    s.rts = None  # the far end's first timestamp, as halves
    s.max_seq = s.base_seq = -1  # extended highest sequence number received
    s.last_rx = 0
    s.digits = ""  # DTMF received
    s.ev = None  # DTMF going out: see media/dtmf.py
    s.rev = -1  # the timestamp of the far end's last DTMF event
    s.rtcp_in = s.rtcp_out = 0
    s.far = None  # what the far end's last report said about our stream
    s.sr = None  # (our ms, the middle 32 bits of the NTP time) of its last SR
    s.rep = None  # what the last report of ours covered: (expected, received)
    _apply(s, pt, remote, direction)
    s.t0 = s.sched.now()
    s.k = 0  # packets (ptimes) since t0
    s.due = s.t0
    s.running = True
    s.sched.watch(s.rtp, POLLIN, s._rx)
    s.sched.watch(s.rtcp, POLLIN, s._rtcp)
    _sessions.append(s)
    _clock.due = s.t0 if not _clock.due or s.t0 < _clock.due else _clock.due
    s.sched.media = _clock
    s._rtcp_timer = s.sched.call_later(2500, s._rtcp)  # RFC 3550 §6.2: half an interval
    s.log.info("media", "start", call=s.call, codec=_name(pt), ptime=p,
               local="%s:%d" % (s.ip, s.port), remote=_where(s), dir=direction)


def _pcm(s):
    from . import g711

    # the loops themselves (compiled ones belong to sipua.media, not to g711: the module
    # can go; the buffer is the session's, aligned and of the right size)
    s.enc, s.dec = g711._codec()
    s.pcm = bytearray(2 * s.n)
    forget("sipua.media.g711")


def listen(s, sink):
    """``sink`` in place of the session's (tests: a recorder), with what decoding needs."""
    from . import g711

    s.sink = sink
    if s.pcm is None:
        _pcm(s)
    s.table = g711.table(s.pt)


def _apply(s, pt, remote, direction):
    import socket

    s.pt = pt
    s.tx[1] = pt
    s.jb.fill = f = 0xD5 if pt else 0xFF  # the law's silence (g711.SILENCE)
    if s.source is None:
        for i in range(12, len(s.tx)):
            s.tx[i] = f
    if s.sink is not None:
        from . import g711

        s.table = g711.table(pt)  # the decode table of the law
        forget("sipua.media.g711")  # (where the loops are its own, they keep it)
    s.rdtmf = remote.dtmf_pt
    s.addr = (remote.ip, remote.port)
    s.dir = direction
    live = remote.port != 0 and remote.ip != "0.0.0.0"  # RFC 2543's hold: no address
    s.sending = direction in ("sendrecv", "sendonly") and live
    s.hearing = direction in ("sendrecv", "recvonly")
    if live:
        try:
            s.rtp.connect(socket.getaddrinfo(remote.ip, remote.port)[0][-1])
            s.rtcp.connect(socket.getaddrinfo(remote.ip, remote.port + 1)[0][-1])
        except OSError as e:
            s.log.warn("media", "connect_failed", call=s.call, err=str(e))
            s.sending = False
            return
        if s.sx is None:
            _stray(s, socket)


def _stray(s, socket):
    """Once the RTP socket is connected: a second one on its port, not connected, for the
    datagrams of any other source (rtp.py's docstring); none where SO_REUSEADDR is not."""
    x = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for y in (s.rtp, x):  # the RTP socket's bind is done: a probe still finds it taken
            y.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        x.bind(socket.getaddrinfo(s.ip, s.port)[0][-1])
    except (OSError, AttributeError):  # no SO_REUSEADDR on this port: not counted
        x.close()
        return
    x.setblocking(False)
    s.sx = x
    s.sched.watch(x, POLLIN, s._stray)


def update(s, pt, remote, direction):
    if not s.running:
        return start(s, pt, remote, direction)
    moved = s.addr != (remote.ip, remote.port)
    _apply(s, pt, remote, direction)
    if moved:  # a new stream may come from there: its SSRC and sequence start over
        s.rssrc = s.rts = None
        s.max_seq = s.base_seq = -1
        s.jb.reset()
    s.mark = 1
    s.log.info("media", "update", call=s.call, codec=_name(pt), remote=_where(s),
               dir=direction)


def stop(s, reason="hangup"):
    if s.running:
        s.running = False
        try:
            from .rtcp import bye

            s.rtcp.send(bye(s))
        except OSError:
            pass
        s._rtcp_timer.cancel()
        if s in _sessions:
            _sessions.remove(s)
        if not _sessions:
            s.sched.media = None
            _clock.due = 0
        for x in (s.source, s.sink):
            try:
                if x is not None:
                    x.close()
            except Exception:  # noqa: BLE001 - a sink that cannot close loses its tail
                pass
        st = s.stats()
        s.log.info("media", "stop", call=s.call, reason=reason, sent=st["sent"],
                   received=st["received"], lost=st["lost"], late=st["late"],
                   jitter_ms=st["jitter_ms"], stray=st["stray"])
    for x in (s.rtp, s.rtcp, s.sx):
        if x is not None:
            s.sched.unwatch(x)
            x.close()


def _where(s):
    return "%s:%d" % s.addr
