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
the far end's SDP, and the sockets are ``connect``ed to it, so ``readinto`` needs no heap and
sees the far end alone. Datagrams from any other source go to a second, unconnected socket
on the RTP port (SO_REUSEADDR; Linux and lwIP give a connected socket its peer's datagrams,
the other one the rest): drained unread and counted (``stray``); on a port without
SO_REUSEADDR they are dropped uncounted. There is no latching onto another source address
(a far end behind a NAT it does not tell us about is not heard): an unauthenticated packet
must not redirect a call's audio. The far end's
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
from ..compat import const, forget, readinto
from ..netio import drain

_CATCH_UP = const(5)  # packets sent at once by a late loop; older ones are skipped
_SSRC_IDLE_MS = const(1000)

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


class Session:
    """A call's stream; its rare steps (ports, start, update, stop) are ctl.py's."""

    # set by ctl.bind / ctl.start (annotations only: MicroPython stores nothing for them)
    port: int
    addr: tuple
    dir: str
    ptime: int
    n: int
    pt: int
    tx: bytearray
    txpay: memoryview
    rx: bytearray
    rxpay: memoryview
    pcm: bytearray
    play: memoryview
    table: object
    t0: int
    k: int
    ts_hi: int
    ts_lo: int
    seq: int
    mark: int
    sending: bool
    hearing: bool
    held: bool
    sent: int
    octets: int
    received: int
    bad_ssrc: int
    stray: int
    dropped: int
    max_seq: int
    base_seq: int
    last_rx: int
    digits: str
    rev: int
    rtcp_in: int
    rtcp_out: int

    def __init__(self, sched, cfg, ip, log=None, call=0):
        self.sched = sched
        # the stream's objects, made by start() (None here: the type checker's cue)
        self.jb = self.rtp = self.sx = self.source = self.sink = self.enc = self.dec = \
            self.ev = self.rdtmf = self.rssrc = self.rts = None
        self._ctl("bind", cfg, ip, log or logmod.log, call)

    def _ctl(self, name, *args):
        from . import ctl

        try:
            return getattr(ctl, name)(self, *args)
        finally:
            forget("sipua.media.ctl")

    def start(self, pt, remote, direction):
        self._ctl("start", pt, remote, direction)

    def update(self, pt, remote, direction):
        self._ctl("update", pt, remote, direction)

    def stop(self, reason="hangup"):
        self._ctl("stop", reason)

    def stats(self):
        """For ``status`` and the stop line (rtcp.py's: its numbers are the reports')."""
        return self._rtcp(None, 0)

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
        if ev is not None and ev[6](self, ev):  # a DTMF event's packet instead of audio
            return
        src = self.source
        if src is not None:  # None: silence, its code in the payload since _apply
            src.read(self.pcm)
            self.enc(self.pcm, self.txpay, self.n, self.pt)  # g711's loop (A-law: pt 8)
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
            self.rtp.send(memoryview(tx)[:length] if length != len(tx) else tx)
        except OSError:  # ICMP unreachable from a far end not yet listening: go on
            pass
        self.sent += 1
        self.octets += length - 12

    def dtmf(self, digits):
        """RFC 4733 events for ``digits`` (media/dtmf.py, loaded while they are sent)."""
        from .dtmf import send

        send(self, digits)

    # -- receiving --------------------------------------------------------------------------
    def _stray(self, sock, ev):
        self.stray += drain(sock)  # from another source: counted, never heard

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
            if ts != self.rev:  # a new event (its other packets repeat the timestamp)
                self.rev = ts
                from .dtmf import heard

                heard(self, rx[off + hl])
                forget("sipua.media.dtmf")
        elif pt != self.pt or size - hl != self.n:
            self.dropped += 1
        else:
            self.received += 1
            self.jb.put(seq, ts, memoryview(rx)[off + hl:off + size] if off or hl != 12 else
                        self.rxpay, now)

    def _playout(self):
        play = self.play
        if self.jb.pop(play) == 2:
            if self.sink is None:
                return  # the null sink: nothing to decode
            fill = self.jb.fill  # the law's silence
            for i in range(self.n):
                play[i] = fill
        if self.sink is not None:
            self.dec(play, self.pcm, self.n, self.table)
            self.sink.write(self.pcm)

    # -- RTCP --------------------------------------------------------------------------------
    def _rtcp(self, sock=None, ev=1):
        """rtcp.py, loaded for each use and forgotten (it runs every ~5 s): what came on the
        RTCP socket (called by the poller), our report (by its timer: no argument), the
        stats (ev 0)."""
        from . import rtcp

        try:
            return rtcp.run(self, sock, ev)
        finally:
            forget("sipua.media.rtcp")
