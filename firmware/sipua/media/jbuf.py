"""Jitter buffer (stand-in until the audiocore branch's lands)."""


class JitterBuffer:
    def __init__(self, frame_bytes, ptime_ms, min_ms=20, max_ms=120, start_ms=40):
        self.fb = frame_bytes
        self.ptime = ptime_ms
        self.slots = [bytearray(frame_bytes) for _ in range(max_ms // ptime_ms + 1)]
        self.seqs = [-1] * len(self.slots)
        self.depth = start_ms // ptime_ms
        self.next = -1
        self.received = self.lost = self.late = self.dup = self.jitter = 0
        self.depth_ms = start_ms
        self.last = None
        self.concealed = False
        self.waiting = True
        self._transit = None
        self._j16 = 0

    def put(self, seq, ts, payload, arrival_ms):
        transit = arrival_ms * 8 - ts
        if self._transit is not None:
            d = transit - self._transit
            if d < 0:
                d = -d
            self._j16 += d - ((self._j16 + 8) >> 4)
            self.jitter = self._j16 >> 4
        self._transit = transit
        if self.next >= 0 and (seq - self.next) & 0xFFFF >= 0x8000:
            self.late += 1
            return
        i = seq % len(self.slots)
        if self.seqs[i] == seq:
            self.dup += 1
            return
        self.received += 1
        self.seqs[i] = seq
        self.slots[i][:] = payload
        if self.next < 0:
            self.next = seq

    def pop(self, out):
        if self.next < 0:
            return 2
        if self.waiting:
            have = 0
            for s in self.seqs:
                if s >= 0:
                    have += 1
            if have < self.depth:
                return 2
            self.waiting = False
        i = self.next % len(self.slots)
        seq = self.next
        self.next = (self.next + 1) & 0xFFFF
        if self.seqs[i] == seq:
            self.seqs[i] = -1
            out[:] = self.slots[i]
            self.concealed = False
            return 0
        self.lost += 1
        if not self.concealed:
            self.concealed = True
            return 1
        return 2

    def jitter_ms(self):
        return self.jitter // 8
