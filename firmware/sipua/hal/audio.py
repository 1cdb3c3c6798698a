"""Audio in and out behind one small interface (config ``audio.source`` / ``audio.sink``).

``open_source(spec, n, board=None, sink=None)``: "silence", "tone:HZ", "wav:PATH", "echo",
"i2s". ``open_sink(spec, n, board=None, source=None)``: "null", "wav:PATH", "echo", "i2s".
A source's ``read(pcm)`` fills ``pcm`` (exactly 2n bytes: n int16 little-endian samples,
8 kHz mono), a sink's ``write(pcm)`` takes it; both have ``close()``. No call allocates.
A bad spec raises ValueError naming it.

- ``tone:HZ``: a sine at -6 dBFS (peak 16384), a phase accumulator over a 256-entry table.
- ``echo``: the sink feeds the source: ``read`` gives the frame last written (silence
  before). Open either first and pass it to the other (``open_source("echo", n,
  sink=s)``): both are then the same object. An echo source without an echo sink is silent.
- ``wav:PATH`` source: a 16-bit mono 8 kHz PCM WAV, looped (its last partial frame padded
  with silence); anything else is refused naming the file and what is wrong. Sink: writes
  such a file whose header is patched every second and at ``close``, so a call that ends
  abruptly leaves a valid WAV (at most the last second beyond its declared length).
- ``i2s``: ``machine.I2S``, the microphone on one bus (RX), the amplifier on the other
  (TX), 16-bit mono 8 kHz, pins from ``board`` (a board config, ``board_configs/*.json``,
  or its ``"audio"`` section) or else this port's defaults (the same as those files);
  each bus's internal buffer (``ibuf``) holds ``"frames"`` frames (default 4: 80 ms of
  20 ms frames, 1280 bytes), the port's DMA buffers feed it. No machine.I2S (the unix
  port): a ValueError naming ``audio.source`` / ``audio.sink``.
"""

import sys
from array import array

_RATE = 8000


def _pins(plat):
    """A port's I2S pins: board_configs/esp32.json and pico_w.json "audio"."""
    if plat == "esp32":
        return {"mic": {"id": 0, "sck": 32, "ws": 33, "sd": 35},
                "amp": {"id": 1, "sck": 26, "ws": 25, "sd": 22}, "frames": 4}
    if plat == "rp2":  # the rp2 port wants ws = sck + 1
        return {"mic": {"id": 0, "sck": 16, "ws": 17, "sd": 18},
                "amp": {"id": 1, "sck": 10, "ws": 11, "sd": 12}, "frames": 4}
    return None


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


class _Tone(_Buf):
    def __init__(self, hz, n):
        import math

        self.n = 2 * n
        t = self.t = array("h", bytes(512))
        for i in range(256):
            t[i] = round(16384 * math.sin(math.pi * i / 128))
        self.p = 0
        self.d = (hz << 24) // _RATE  # phase step: a turn is 2^24

    def read(self, pcm):
        t, p, d = self.t, self.p, self.d
        for i in range(0, self.n, 2):
            v = t[p >> 16]
            pcm[i] = v & 255
            pcm[i + 1] = v >> 8 & 255
            p = (p + d) & 0xFFFFFF
        self.p = p


def _le32(b, o, v):
    b[o] = v & 255
    b[o + 1] = v >> 8 & 255
    b[o + 2] = v >> 16 & 255
    b[o + 3] = v >> 24 & 255


def _u(b, o, k):
    return int.from_bytes(b[o:o + k], "little")


def _open(path, mode):
    try:
        return open(path, mode)
    except OSError as e:
        raise ValueError("wav:%s: cannot open (%s)" % (path, e)) from None


class _WavIn(_Buf):
    def __init__(self, path, n):
        f = self.f = _open(path, "rb")
        try:
            self.o, size = _riff(f, path)
            e = f.seek(0, 2)
            if size == 0 or size > e - self.o:  # unknown (0, 0xFFFFFFFF) or cut short
                size = e - self.o
            size &= ~1
            if size <= 0:
                raise ValueError("wav:%s: no samples" % path)
        except Exception:
            f.close()
            raise
        self.e = self.o + size  # the end of the samples
        self.k = k = 2 * n
        self.b = bytearray(k)  # the last partial frame, padded with silence
        self.t = memoryview(self.b)[:size % k]
        self.p = self.e

    def read(self, pcm):
        f = self.f
        if self.p >= self.e:
            f.seek(self.o)
            self.p = self.o
        if self.e - self.p >= self.k:
            f.readinto(pcm)
            self.p += self.k
        else:
            f.readinto(self.t)
            pcm[0:self.k] = self.b
            self.p = self.e

    def close(self):
        self.f.close()


def _riff(f, path):
    """The offset and size of the samples of a 16-bit mono 8 kHz PCM WAV file."""
    h = f.read(12)
    if len(h) < 12 or h[0:4] != b"RIFF" or h[8:12] != b"WAVE":
        raise ValueError("wav:%s: not a RIFF/WAVE file" % path)
    fmt = None
    while True:
        c = f.read(8)
        if len(c) < 8:
            raise ValueError("wav:%s: no %s chunk" % (path, "data" if fmt else "fmt"))
        size = _u(c, 4, 4)
        if c[0:4] == b"fmt ":
            fmt = f.read(size + (size & 1))
            if size < 16 or len(fmt) < 16:
                raise ValueError("wav:%s: fmt chunk of %d bytes" % (path, size))
            tag, ch, rate, bits = _u(fmt, 0, 2), _u(fmt, 2, 2), _u(fmt, 4, 4), _u(fmt, 14, 2)
            if tag == 0xFFFE and size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the subformat's tag
                tag = _u(fmt, 24, 2)
            if tag != 1 or ch != 1 or rate != _RATE or bits != 16:
                raise ValueError("wav:%s: format %d, %d channels, %d Hz, %d bits: need PCM "
                                 "(1), 1 channel, 8000 Hz, 16 bits" % (path, tag, ch, rate, bits))
        elif c[0:4] == b"data":
            if fmt is None:
                raise ValueError("wav:%s: data before the fmt chunk" % path)
            return f.tell(), size
        else:
            f.seek(size + (size & 1), 1)


class _WavOut(_Buf):
    def __init__(self, path, n):
        self.f = _open(path, "wb")
        h = self.b = bytearray(b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\0\0\0\0\0\0\0\0"
                               b"\x02\0\x10\0data\0\0\0\0")
        _le32(h, 24, _RATE)
        _le32(h, 28, 2 * _RATE)
        self.k = 2 * n
        self.s = 0  # bytes of samples written
        self.d = 2 * _RATE  # when (in bytes) the header is patched next
        self._patch()

    def _patch(self):
        f, h, s = self.f, self.b, self.s
        _le32(h, 4, s + 36)
        _le32(h, 40, s)
        f.seek(0)
        f.write(h)
        f.seek(44 + s)
        f.flush()

    def write(self, pcm):
        self.f.write(pcm)
        self.s += self.k
        if self.s >= self.d:
            self.d += 2 * _RATE
            self._patch()

    def close(self):
        if self.f is not None:
            self._patch()
            self.f.close()
            self.f = None


class _I2S(_Buf):
    def __init__(self, i):
        self.i = i

    def read(self, pcm):
        self.i.readinto(pcm)

    def write(self, pcm):
        self.i.write(pcm)

    def close(self):
        self.i.deinit()


def _i2s(board, n, key):
    out = key == "sink"
    try:
        from machine import I2S, Pin
    except ImportError:
        raise ValueError("audio.%s i2s: this port (%s) has no machine.I2S: use wav:PATH, tone:HZ,"
                         " silence, echo or null" % (key, sys.platform)) from None
    a = board.get("audio", board) if board else _pins(sys.platform)
    w = "amp" if out else "mic"
    try:
        p = a[w]
        b = I2S(p["id"], sck=Pin(p["sck"]), ws=Pin(p["ws"]), sd=Pin(p["sd"]),
                mode=I2S.TX if out else I2S.RX, bits=16, format=I2S.MONO, rate=_RATE,
                ibuf=2 * n * a.get("frames", 4))
    except (KeyError, TypeError):
        raise ValueError("audio.%s i2s: the board's \"audio\" needs \"%s\": {id, sck, ws, sd}"
                         % (key, w)) from None
    return _I2S(b)


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
        return _i2s(board, n, "source")
    if spec[:4] == "wav:" and len(spec) > 4:
        return _WavIn(spec[4:], n)
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
        return _i2s(board, n, "sink")
    if spec[:4] == "wav:" and len(spec) > 4:
        return _WavOut(spec[4:], n)
    raise ValueError("audio.sink %r: use i2s, wav:PATH, echo or null" % spec)
