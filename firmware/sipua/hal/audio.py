"""Audio in and out behind one small interface (config ``audio.source`` / ``audio.sink``).

``open_source(spec, n, board=None, sink=None)``: "silence", "tone:HZ", "wav:PATH", "echo",
"i2s". ``open_sink(spec, n, board=None, source=None)``: "null", "wav:PATH", "echo", "i2s".
A source's ``read(pcm)`` fills ``pcm`` (exactly 2n bytes: n int16 little-endian samples,
8 kHz mono), a sink's ``write(pcm)`` takes it; both have ``close()``. No call allocates.
A bad spec raises ValueError naming it.

- ``tone:HZ``: a sine at -6 dBFS (peak 16384), a phase accumulator over a 256-entry table
  (or, when it repeats within 4 frames, those frames made once).
- ``echo``: the sink feeds the source: ``read`` gives the frame last written (silence
  before). Open either first and pass it to the other (``open_source("echo", n,
  sink=s)``): both are then the same object. An echo source without an echo sink is silent.
- ``wav:PATH`` (``hal/wav.py``): a 16-bit mono 8 kHz PCM WAV file as the source (looped)
  or the sink (valid even when the call ends abruptly); other formats refused, naming the
  file and the fault.
- ``i2s`` (``hal/i2s.py``): ``machine.I2S``, pins from the board config; on a port
  without it a ValueError naming ``audio.source`` / ``audio.sink``.

``wav`` and ``i2s`` are imported only when asked for: forget ``sipua.hal.audio``,
``sipua.hal.wav`` and ``sipua.hal.i2s`` when the call ends.
"""

from array import array

_RATE = 8000


class _Buf:
    """``silence`` and ``null``: reads zeros, ignores writes."""

    def __init__(self, n):
        self.b = bytearray(2 * n)

    def read(self, pcm):
        pcm[0:len(self.b)] = self.b

    def write(self, pcm):
        pass

    def close(self):
        pass


class _Echo(_Buf):
    def write(self, pcm):
        self.b[:] = pcm


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


class _Tone(_Buf):
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


def _check(spec, n, key):
    if not isinstance(spec, str):
        raise ValueError("audio.%s %r: not a string" % (key, spec))
    if not isinstance(n, int) or n <= 0:
        raise ValueError("audio.%s %s: frame_samples %r" % (key, spec, n))


def open_source(spec, frame_samples, board=None, sink=None):
    n = frame_samples
    _check(spec, n, "source")
    if spec == "silence":
        return _Buf(n)
    if spec == "echo":
        return sink if isinstance(sink, _Echo) else _Echo(n)
    if spec == "i2s":
        from .i2s import bus

        return bus(board, n, "source")
    if spec[:4] == "wav:" and len(spec) > 4:
        from .wav import WavIn

        return WavIn(spec[4:], n)
    if spec[:5] == "tone:":
        try:
            hz = int(spec[5:])
        except ValueError:
            hz = 0
        if not 0 < hz < _RATE // 2:
            raise ValueError("audio.source %s: HZ from 1 to 3999" % spec)
        return _Tone(hz, n)
    raise ValueError("audio.source %r: use i2s, wav:PATH, tone:HZ, silence or echo" % spec)


def open_sink(spec, frame_samples, board=None, source=None):
    n = frame_samples
    _check(spec, n, "sink")
    if spec == "null":
        return _Buf(0)
    if spec == "echo":
        return source if isinstance(source, _Echo) else _Echo(n)
    if spec == "i2s":
        from .i2s import bus

        return bus(board, n, "sink")
    if spec[:4] == "wav:" and len(spec) > 4:
        from .wav import WavOut

        return WavOut(spec[4:], n)
    raise ValueError("audio.sink %r: use i2s, wav:PATH, echo or null" % spec)
