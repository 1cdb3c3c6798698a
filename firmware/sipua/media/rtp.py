"""One call's audio: RTP (RFC 3550) G.711 both ways on a UDP port pair, RFC 4733 DTMF.

    s = Session(sched, audio_cfg, local_ip, log, call_id)  # binds RTP (even) + RTCP (+1)
    s.port                           # for our SDP
    s.start(pt, remote, direction)   # remote: sdp.Media of the far end; direction: ours
    s.update(pt, remote, direction)  # a re-INVITE: new address/port, hold
    s.dtmf("123#") / s.stats() / s.stop()

Pacing: no timer per packet. The scheduler calls ``tick(now)`` (``Scheduler.media``, this
module's ``_Clock``) when the earliest session is due; packet N leaves at start + N·ptime
(a late loop sends what it owes, at most ``_CATCH_UP`` packets at once, so there is no
drift). Each tick also plays one frame out of the jitter buffer into the sink.

Symmetric RTP (RFC 4961): we send from the port we receive on, to the address and port of
the far end's SDP, and the sockets are ``connect``ed to it: the kernel drops datagrams from
any other source (never seen here, so not counted) and ``readinto`` needs no heap. There is
no latching onto another source address (a far end behind a NAT it does not tell us about
is not heard): an unauthenticated packet must not redirect a call's audio. The far end's
SSRC is taken from its first packet; packets with another SSRC are dropped and counted
(``bad_ssrc``) unless the stream has been silent for ``_SSRC_IDLE_MS`` (a restarted source).

No allocation per packet: header, payload and frame buffers are made at ``start``;
timestamps are kept as two 16-bit halves and passed on relative to the first one, so no
32-bit value becomes a heap integer on a 32-bit board. MicroPython's ``readinto`` on a
datagram socket goes on reading until its buffer is full, so queued datagrams arrive run
together; the buffer holds two audio packets exactly and ``_walk`` splits what came by the
RTP headers (an audio packet is header + one frame, an event packet header + 4 bytes).
"""

from .. import log as logmod
from ..compat import const, readinto, urandom_u32
from ..sched import POLLIN

_CATCH_UP = const(5)  # packets sent at once by a late loop; older ones are skipped
_SSRC_IDLE_MS = const(1000)
_RTCP_MS = const(5000)
_EV_MS = const(100)  # DTMF tone length
_GAP_MS = const(60)  # between two digits
_DIGITS = "0123456789*#ABCD"
_NAMES = {0: "PCMU", 8: "PCMA"}

_sessions = []


class _Clock:
    """The scheduler's media hook: the earliest session's deadline, and its tick."""

    due = 0

    def tick(self, now):
        due = 0x3FFFFFFF
        for s in _sessions:
            if s.due <= now:
                try:
                    s.tick(now)
                except Exception as e:  # noqa: BLE001 - a broken stream must not stop the loop
                    s.log.exc("media", "error", e, call=s.call)
                    s.running = False
                    s.due = 0x3FFFFFFF
            if s.due < due:
                due = s.due
        self.due = due

    def rebase(self, base):
        for s in _sessions:
            s.t0 -= base
            s.due -= base
        self.due -= base


_clock = _Clock()


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


class Session:
    def __init__(self, sched, cfg, ip, log=None, call=0):
        self.sched = sched
        self.cfg = cfg
        self.log = log or logmod.log
        self.call = call
        self.ip = ip
        self.running = False
        self.due = 0x3FFFFFFF
        self.jb = None  # the jitter buffer, and the rest of the stream's state: start()
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
            self.port, self.rtp, self.rtcp = port, a, b
            return
        raise OSError("no free RTP port pair in %d..%d" % (lo, hi))

    # -- life cycle ----------------------------------------------------------------------
    def start(self, pt, remote, direction):
        from ..hal.audio import open_sink, open_source
        from .jbuf import JitterBuffer

        cfg = self.cfg
        self.ptime = p = remote.ptime if 10 <= remote.ptime <= 60 else cfg["ptime"]
        self.n = n = 8 * p  # samples (and G.711 bytes) per packet
        from . import g711

        self.enc, self.dec, self.silence = g711.encode, g711.decode, g711.SILENCE
        self.tx = bytearray(12 + n)
        self.txmv = memoryview(self.tx)
        self.txpay = self.txmv[12:]
        self.rx = bytearray(24 + 2 * n)  # two packets exactly: see _walk
        self.rxmv = memoryview(self.rx)
        self.rxpay = self.rxmv[12:12 + n]
        self.pcm = bytearray(2 * n)
        self.play = bytearray(n)
        self.crx = bytearray(256)  # RTCP in
        self.sink = open_sink(cfg["sink"], n)
        self.source = open_source(cfg["source"], n, sink=self.sink)
        self.jb = JitterBuffer(n, p, start_ms=cfg["jitter_ms"], fill=g711.SILENCE[pt])
        tx = self.tx
        tx[0] = 0x80
        r = urandom_u32()  # SSRC
        tx[8], tx[9], tx[10], tx[11] = r >> 24, r >> 16 & 255, r >> 8 & 255, r & 255
        r = urandom_u32()  # first timestamp and sequence number
        self.ts_hi, self.ts_lo = r >> 16, r & 0xFFFF
        self.seq = urandom_u32() & 0xFFFF
        self.mark = 1
        # counters: packets/octets sent, packets accepted, dropped (bad_ssrc, other)
        self.sent = self.octets = self.received = self.bad_ssrc = self.dropped = 0
        self.rssrc = None  # the far end's SSRC, as (high 16 bits, low 16 bits)
        self.rts = None  # the far end's first timestamp, as halves
        self.max_seq = self.base_seq = -1  # extended highest sequence number received
        self.last_rx = 0
        self.digits = ""  # DTMF received
        self.ev = None  # DTMF out: [digits left, event, ts halves, sent ms, end packets]
        self.rev = -1  # the timestamp of the far end's last DTMF event
        self.rtcp_in = self.rtcp_out = 0
        self.far = None  # what the far end's last report said about our stream
        self.sr = None  # (our ms, the middle 32 bits of the NTP time) of its last SR
        self.rep = None  # what the last report of ours covered: (expected, received)
        self.held = False
        self._apply(pt, remote, direction)
        self.t0 = self.sched.now()
        self.k = 0  # packets (ptimes) since t0
        self.due = self.t0
        self.running = True
        self.sched.watch(self.rtp, POLLIN, self._rx)
        self.sched.watch(self.rtcp, POLLIN, self._rtcp_rx)
        _sessions.append(self)
        _clock.due = self.t0 if not _clock.due or self.t0 < _clock.due else _clock.due
        self.sched.media = _clock
        self._rtcp_timer = self.sched.call_later(_RTCP_MS // 2, self._report)
        self.log.info("media", "start", call=self.call, codec=_NAMES.get(pt), ptime=p,
                      local="%s:%d" % (self.ip, self.port), remote=self.remote(),
                      dir=direction)

    def _apply(self, pt, remote, direction):
        import socket

        self.pt = pt
        self.tx[1] = pt
        self.jb.fill = self.silence[pt]
        self.rdtmf = remote.dtmf_pt
        self.addr = (remote.ip, remote.port)
        self.dir = direction
        self.sending = direction in ("sendrecv", "sendonly") and remote.port != 0
        self.hearing = direction in ("sendrecv", "recvonly")
        if remote.port:
            try:
                self.rtp.connect(socket.getaddrinfo(remote.ip, remote.port)[0][-1])
                self.rtcp.connect(socket.getaddrinfo(remote.ip, remote.port + 1)[0][-1])
            except OSError as e:
                self.log.warn("media", "connect_failed", call=self.call, err=str(e))
                self.sending = False

    def update(self, pt, remote, direction):
        if not self.running:
            return self.start(pt, remote, direction)
        moved = self.addr != (remote.ip, remote.port)
        self._apply(pt, remote, direction)
        if moved:  # a new stream may come from there: its SSRC and sequence start over
            self.rssrc = self.rts = None
            self.max_seq = self.base_seq = -1
        self.mark = 1
        self.log.info("media", "update", call=self.call, codec=_NAMES.get(pt),
                      remote=self.remote(), dir=direction)

    def stop(self, reason="hangup"):
        if self.running:
            self.running = False
            try:
                from .rtcp import bye

                self.rtcp.send(bye(self))
            except OSError:
                pass
            self._rtcp_timer.cancel()
            if self in _sessions:
                _sessions.remove(self)
            if not _sessions:
                self.sched.media = None
                _clock.due = 0
            for x in (self.source, self.sink):
                try:
                    x.close()
                except Exception:  # noqa: BLE001 - a sink that cannot close loses its tail
                    pass
            st = self.stats()
            self.log.info("media", "stop", call=self.call, reason=reason, sent=st["sent"],
                          received=st["received"], lost=st["lost"], late=st["late"],
                          jitter_ms=st["jitter_ms"])
        for s in (self.rtp, self.rtcp):
            self.sched.unwatch(s)
            s.close()

    def remote(self):
        return "%s:%d" % self.addr

    # -- sending: one packet per ptime ----------------------------------------------------
    def tick(self, now):
        k = (now - self.t0) // self.ptime + 1  # packets owed by now, counting this one
        if k - self.k > _CATCH_UP:
            self._advance(k - self.k - _CATCH_UP)  # skipped: their time is gone
        while self.k < k:
            self._packet()
            self._advance(1)
            if self.hearing:
                self._playout()
        self.due = self.t0 + self.k * self.ptime

    def _advance(self, packets):
        self.k += packets
        lo = self.ts_lo + packets * self.n
        self.ts_hi = (self.ts_hi + (lo >> 16)) & 0xFFFF
        self.ts_lo = lo & 0xFFFF

    def _packet(self):
        if not self.sending or self.held:
            self.mark = 1  # the first packet after a silence carries the marker
            return
        ev = self.ev
        if ev is not None and self._event(ev):
            return
        self.source.read(self.pcm)
        self.enc(self.pt, self.pcm, self.txpay, self.n)
        self._send(12 + self.n, self.pt, self.ts_hi, self.ts_lo)

    def _send(self, length, pt, hi, lo):
        tx = self.tx
        tx[1] = pt | (0x80 if self.mark else 0)
        self.mark = 0
        seq = self.seq
        tx[2], tx[3] = seq >> 8, seq & 255
        tx[4], tx[5] = hi >> 8, hi & 255  # pairs: a longer tuple would be built on the heap
        tx[6], tx[7] = lo >> 8, lo & 255
        self.seq = (seq + 1) & 0xFFFF
        try:
            self.rtp.send(self.txmv[:length] if length != len(tx) else tx)
        except OSError:  # ICMP unreachable from a far end not yet listening: go on
            pass
        self.sent += 1
        self.octets += length - 12

    # -- DTMF out (RFC 4733) ---------------------------------------------------------------
    def dtmf(self, digits):
        for d in digits:
            if d not in _DIGITS:
                raise ValueError("not a DTMF digit: %r" % d)
        if self.rdtmf is None:
            raise ValueError("the far end takes no telephone-event")
        if self.ev is None:
            self.ev = [digits, -1, 0, 0, 0, 0]
        else:
            self.ev[0] += digits

    def _event(self, ev):
        """One packet of the current event (or the pause between two): True when it took
        this ptime's place of an audio packet. ev: [digits left, event or -1, ts hi, ts lo,
        ms sent, end packets sent]."""
        if ev[1] < 0:  # between events: pause, then the next digit
            if ev[4] > 0:
                ev[4] -= self.ptime
                return False
            if not ev[0]:
                self.ev = None
                return False
            ev[1], ev[0] = _DIGITS.index(ev[0][0]), ev[0][1:]
            ev[2], ev[3], ev[4], ev[5] = self.ts_hi, self.ts_lo, 0, 0
            self.mark = 1  # the first packet of an event
        ev[4] += self.ptime
        done = ev[4] >= _EV_MS
        dur = (ev[4] if ev[4] < _EV_MS else _EV_MS) * 8  # samples since the event began
        tx = self.tx
        tx[12] = ev[1]
        tx[13] = (0x80 if done else 0) | 10  # E bit, volume -10 dBm0
        tx[14], tx[15] = dur >> 8, dur & 255
        self._send(16, self.rdtmf, ev[2], ev[3])
        if done:
            ev[5] += 1
            if ev[5] >= 3:  # the end packet three times (§2.5.1.4), then a pause
                ev[1], ev[4] = -1, _GAP_MS
        return True

    # -- receiving --------------------------------------------------------------------------
    def _rx(self, sock, ev):
        while True:
            try:
                n = readinto(sock, self.rx)
            except OSError:
                return
            if not n:
                return
            self._walk(n)
            if n < len(self.rx):
                return

    def _walk(self, n):
        rx = self.rx
        off = 0
        while n - off >= 12:
            b = rx[off]
            hl = 12 + 4 * (b & 15)
            if b & 0x10 and n - off >= hl + 4:  # a header extension
                hl += 4 + 4 * (rx[off + hl + 2] << 8 | rx[off + hl + 3])
            pt = rx[off + 1] & 0x7F
            left = n - off
            size = hl + (4 if pt == self.rdtmf else self.n)
            if b & 0xC0 != 0x80 or left < size:
                self.dropped += 1  # not RTP, or cut short (a datagram that did not fit)
                return
            if left > size and rx[off + size] & 0xC0 != 0x80:
                size = left  # one datagram longer than a frame: not ours to split
            self._packet_in(off, hl, size, pt)
            off += size

    def _packet_in(self, off, hl, size, pt):
        rx = self.rx
        now = self.sched.now()
        s_hi = rx[off + 8] << 8 | rx[off + 9]
        s_lo = rx[off + 10] << 8 | rx[off + 11]
        r = self.rssrc
        if r is None or r[0] != s_hi or r[1] != s_lo:
            if r is not None and now - self.last_rx < _SSRC_IDLE_MS:
                self.bad_ssrc += 1
                return
            if r is not None:
                self.jb.reset()  # a new source: its sequence numbers start anywhere
            self.rssrc = (s_hi, s_lo)
            self.rts = (rx[off + 4] << 8 | rx[off + 5], rx[off + 6] << 8 | rx[off + 7])
            self.max_seq = self.base_seq = -1
        self.last_rx = now
        seq = rx[off + 2] << 8 | rx[off + 3]
        t0 = self.rts
        ts = ((((rx[off + 4] << 8 | rx[off + 5]) - t0[0]) & 0x3FFF) << 16) + (
            rx[off + 6] << 8 | rx[off + 7]) - t0[1]
        ts &= 0x3FFFFFFF
        m = self.max_seq
        if m < 0:
            self.max_seq = self.base_seq = seq
        else:
            d = (seq - m) & 0xFFFF
            if d < 0x8000:
                self.max_seq = m + d
        if pt == self.rdtmf:
            self._event_in(rx[off + hl], rx[off + hl + 1], ts)
        elif pt != self.pt or size - hl != self.n:
            self.dropped += 1
        else:
            self.received += 1
            self.jb.put(seq, ts, self.rxmv[off + hl:off + size] if off or hl != 12 else
                        self.rxpay, now)

    def _event_in(self, event, flags, ts):
        if ts == self.rev or event > 15:
            return  # a packet of the event already logged (or one we do not know)
        self.rev = ts
        d = _DIGITS[event]
        self.digits = (self.digits + d)[-32:]
        self.log.info("media", "dtmf", call=self.call, digit=d)

    def _playout(self):
        play = self.play
        if self.jb.pop(play) == 2:
            fill = self.silence[self.pt]
            for i in range(self.n):
                play[i] = fill
        self.dec(self.pt, play, self.pcm, self.n)
        self.sink.write(self.pcm)

    # -- RTCP --------------------------------------------------------------------------------
    def _report(self):
        from .rtcp import report

        try:
            self.rtcp.send(report(self))
            self.rtcp_out += 1
        except OSError:
            pass
        # RFC 3550 §6.3.1: the interval randomised over [0.5, 1.5] of its value
        self._rtcp_timer = self.sched.call_later(
            _RTCP_MS // 2 + urandom_u32() % _RTCP_MS, self._report)

    def _rtcp_rx(self, sock, ev):
        from .rtcp import parse

        while True:
            try:
                n = readinto(sock, self.crx)
            except OSError:
                return
            if not n:
                return
            self.rtcp_in += 1
            parse(self, n)

    # -- status ------------------------------------------------------------------------------
    def stats(self):
        jb = self.jb
        out = {"local": "%s:%d" % (self.ip, self.port)}  # type: dict
        if jb is None:
            return out
        out.update({"codec": _NAMES.get(self.pt), "ptime": self.ptime,
                    "remote": self.remote(), "dir": self.dir})
        expected = self.max_seq - self.base_seq + 1 if self.base_seq >= 0 else 0
        lost = expected - self.received
        out.update({"sent": self.sent, "received": self.received,
                    "lost": lost if lost > 0 else 0, "late": jb.late,
                    "jitter_ms": jb.jitter_ms(), "bad_ssrc": self.bad_ssrc,
                    "dropped": self.dropped, "dtmf": self.digits,
                    "rtcp": {"sent": self.rtcp_out, "received": self.rtcp_in,
                             "far": self.far}})
        return out
