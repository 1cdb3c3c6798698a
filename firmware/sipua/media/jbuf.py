"""The receive side's adaptive jitter buffer: encoded payloads (one frame each) in
preallocated slots, played out once per ptime.

``put(seq, ts, payload, arrival_ms)`` for each RTP packet (``arrival_ms``: ``ticks_ms()``;
only the low 24 bits of ``ts`` are used, so a 32-bit port may pass them alone and keep the
int small). ``pop(out)`` once per ptime writes the next frame into ``out`` and returns 0 (a
real frame), 1 (the last frame repeated: a loss concealed) or 2 (nothing: the caller fills
silence for its law). After a loss the last frame is repeated once, then silence.

- *Slots*: max_ms / ptime + 3 of them (the deepest target, a frame of reorder, the
  last frame played: 9 × 160 B at 20 ms); a packet further ahead is a burst loss.
- *Playout*: frames go out in sequence order (mod 65536). At the start nothing plays
  until ``depth_ms`` of frames are waiting (the target). A frame missing at its turn is
  ``lost`` when the target's worth of later frames wait; with fewer, playout waits for it
  (concealed) until they do: that is how the delay grows to a raised target. A packet
  that arrives after its frame's turn is ``late`` (and dropped), one already held a ``dup``.
- *Target depth* ``depth_ms``, within [min_ms, max_ms], from ``start_ms``: ptime + 4 × the
  interarrival jitter, rounded up to whole frames. It rises at once (and by a frame at
  each late packet, or when the buffer runs dry), and falls by a frame after each ~2 s
  (100 packets) below it. When more than a frame beyond the target waits for ~0.5 s, one
  frame is dropped (``dropped``): the delay shrinks back.
- *Jitter* (RFC 3550 §6.4.1, in 8 kHz timestamp units as RTCP reports it): J += (|D| −
  J)/16 over consecutive packets, D the change in transit time (arrival_ms × 8 − ts),
  kept ×16 in integers as RFC 3550 A.8 does. ``jitter_ms()`` is it in milliseconds.
- *Jumps*: a packet up to 3000 ahead of the playout is a burst loss: the frames between
  are ``lost`` and playout starts again from it. One further off (or more than 100
  behind) is held as a possible restart of the sender's sequence: the next packet
  following it in sequence confirms the restart (RFC 3550 A.1), the buffer starts over.
  ``reset()`` does the same at once (a new SSRC).
"""

from ..compat import const

_DROPOUT = const(3000)  # RFC 3550 A.1's MAX_DROPOUT and MAX_MISORDER
_MISORDER = const(100)
_CALM = const(100)  # packets without underrun or late one before the target falls a frame
_OVER = const(25)  # pops above the target before one frame is dropped


class JitterBuffer:
    def __init__(self, frame_bytes, ptime_ms, min_ms=20, max_ms=120, start_ms=40, fill=0xFF):
        if frame_bytes <= 0 or ptime_ms <= 0 or not min_ms <= start_ms <= max_ms \
                or max_ms < ptime_ms:
            raise ValueError("jbuf: frame_bytes %r ptime_ms %r min_ms %r start_ms %r max_ms %r"
                             % (frame_bytes, ptime_ms, min_ms, start_ms, max_ms))
        self.fb = frame_bytes
        self.pt = ptime_ms
        self.lo = max(min_ms, ptime_ms)
        self.hi = max_ms
        # the deepest target, a frame of reorder, the last played; a frame's slot is counted
        # from the next one's (ns), so it stays in step across the sequence wrap
        self.n = n = max_ms // ptime_ms + 3
        self.fill = fill
        mv = memoryview(bytearray(n * frame_bytes))  # the slots' views keep it
        self.sl = [mv[i * frame_bytes:(i + 1) * frame_bytes] for i in range(n)]
        self.sq = [-1] * n  # the sequence number each slot holds
        self.received = self.lost = self.late = self.dup = self.dropped = 0
        self.jitter = 0  # RFC 3550 interarrival jitter, timestamp units
        self.j16 = 0
        self.depth_ms = max(self.lo, start_ms)
        self.calm = 0
        self.reset()

    def reset(self):
        """Forget the stream (a new SSRC); the counters and the target depth stay."""
        for i in range(self.n):
            self.sq[i] = -1
        self.nx = -1  # the next sequence number to play; -1: no packet yet
        self.ns = 0  # its slot
        self.top = -1  # the highest sequence number received
        self.last = -1  # the sequence number of the last frame played
        self.ls = 0  # its slot
        self.play = False  # False: filling up to the target before playing
        self.miss = 0  # frames concealed since the last real one
        self.over = 0
        self.tr = -1  # the last transit time
        self.bad = -1  # the sequence number that would confirm a restart

    def jitter_ms(self):
        return (self.jitter + 4) >> 3

    def _up(self):
        d = self.depth_ms + self.pt
        self.depth_ms = d if d < self.hi else self.hi
        self.calm = 0

    def put(self, seq, ts, payload, arrival_ms):
        self.received += 1
        seq &= 0xFFFF
        if self.nx < 0:
            self.nx = self.top = seq
        d = (seq - self.nx) & 0xFFFF
        if d >= 0x8000:
            d -= 0x10000
        if d >= _DROPOUT or d < -_MISORDER:
            if seq != self.bad:
                self.bad = (seq + 1) & 0xFFFF
                return
            self.reset()  # the sender started a new sequence: follow it
            self.nx = self.top = seq
            d = 0
        self.bad = -1
        # RFC 3550 §6.4.1 / A.8, mod 2^24: arrival in 8 kHz units (ticks_ms wraps at 2^30)
        t = (((arrival_ms & 0x1FFFFF) << 3) - ts) & 0xFFFFFF
        if self.tr >= 0:
            j = (t - self.tr) & 0xFFFFFF
            if j >= 0x800000:
                j = 0x1000000 - j
            self.j16 += j - ((self.j16 + 8) >> 4)
            self.jitter = j = self.j16 >> 4
            pt = self.pt
            w = pt + (j >> 1)  # ptime + 4 × jitter (j / 8 ms)
            w = (w + pt - 1) // pt * pt
            w = self.lo if w < self.lo else self.hi if w > self.hi else w
            if w > self.depth_ms:
                self.depth_ms = w
                self.calm = 0
            elif w < self.depth_ms:
                self.calm += 1
                if self.calm >= _CALM:
                    self.depth_ms -= pt
                    self.calm = 0
        self.tr = t
        if d < 0:
            if self.sq[(self.ns + d) % self.n] == seq:
                self.dup += 1  # a copy of a frame already played
            else:
                self.late += 1
                self._up()
            return
        n = self.n
        if d > n - 2:  # beyond the slots: the oldest go (a burst was lost, or came at once)
            self._skip(d - n + 2)
            self.play = False  # pop passes what is still missing, down to the target
            d = n - 2
        i = (self.ns + d) % n
        if self.sq[i] == seq:
            self.dup += 1
            return
        s = self.sl[i]
        k = len(payload)
        if k >= self.fb:  # a longer one is cut to ours (that slice allocates)
            s[:] = payload if k == self.fb else payload[:self.fb]
        else:  # a shorter one is padded with the fill code
            s[0:k] = payload
            f = self.fill
            for j in range(k, self.fb):
                s[j] = f
        self.sq[i] = seq
        if ((seq - self.top) & 0xFFFF) < 0x8000:
            self.top = seq

    def _skip(self, k):
        """Move the playout k frames on: missing ones are lost, held ones dropped."""
        n = self.n
        s = self.nx
        for j in range(k):
            if j < n and self.sq[(self.ns + j) % n] == (s + j) & 0xFFFF:
                self.dropped += 1
            else:
                self.lost += 1
        self.nx = (s + k) & 0xFFFF
        self.ns = (self.ns + k) % n

    def pop(self, out):
        s = self.nx
        if s < 0:
            return 2
        a = (self.top - s) & 0xFFFF
        have = 0 if a >= 0x8000 else a + 1  # frames from the next one to the newest
        tf = self.depth_ms // self.pt
        if not self.play:
            while have > tf and self.sq[self.ns] != s:  # lost while we waited
                self.lost += 1
                s = self.nx = (s + 1) & 0xFFFF
                self.ns = (self.ns + 1) % self.n
                have -= 1
            if have < tf:
                return self._conceal(out)
            self.play = True
            self.over = 0
        if have > tf + 1:
            self.over += 1
            if self.over >= _OVER:  # too deep for a while: one frame less of delay
                self.over = 0
                self._skip(1)
                s = self.nx
                have -= 1
        else:
            self.over = 0
        i = self.ns
        if self.sq[i] == s:
            out[0:self.fb] = self.sl[i]
            self.last = s
            self.ls = i
            self.miss = 0
            self.nx = (s + 1) & 0xFFFF
            self.ns = (i + 1) % self.n
            return 0
        if have < tf:  # fewer waiting than the target: wait (it may come) until they are
            self.play = False
            if have == 0:  # ran dry: a frame deeper too
                self._up()
        else:
            self.lost += 1
            self.nx = (s + 1) & 0xFFFF
            self.ns = (i + 1) % self.n
        return self._conceal(out)

    def _conceal(self, out):
        s = self.last
        if self.miss or s < 0 or self.sq[self.ls] != s:
            self.miss += 1
            return 2
        self.miss = 1
        out[0:self.fb] = self.sl[self.ls]
        return 1
