"""``tone:HZ`` (``hal/audio.py``'s source, imported only when asked for): a sine at -6 dBFS."""

from array import array

from .audio import _RATE


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


class Tone:
    """A phase accumulator (a turn is 2^24) over a 256-entry sine table. A tone that
    repeats within 4 frames (1000 Hz: every 20 ms frame alike; 440 Hz: not) is made once
    and copied from then on (the table dropped)."""

    def __init__(self, hz, n):
        import math

        self.n = 2 * n
        t = self.t = array("h", bytes(512))
        for i in range(256):
            t[i] = round(16384 * math.sin(math.pi * i / 128))
        self.p = 0
        self.d = (hz << 24) // _RATE
        self.f = None
        k = _RATE // _gcd(_RATE, hz)  # the period in samples
        k //= _gcd(k, n)  # in frames
        if k <= 4:
            m = memoryview(bytearray(2 * n * k))
            f = [m[2 * n * i:2 * n * (i + 1)] for i in range(k)]
            for x in f:
                self.read(x)
            self.f, self.t, self.i = f, None, 0

    def read(self, pcm):
        f = self.f
        if f is not None:
            pcm[0:self.n] = f[self.i]
            self.i = (self.i + 1) % len(f)
            return
        t, p, d = self.t, self.p, self.d
        for i in range(0, self.n, 2):
            v = t[p >> 16]
            pcm[i] = v & 255
            pcm[i + 1] = v >> 8 & 255
            p = (p + d) & 0xFFFFFF
        self.p = p

    def close(self):
        pass
