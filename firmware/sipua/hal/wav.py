"""WAV files for ``hal.audio`` (``wav:PATH``), loaded only for them: 16-bit mono 8 kHz PCM.

``WavIn(path, n)``: a source, looped; the RIFF chunks are walked (``fmt `` checked, others
skipped, odd sizes padded; WAVE_FORMAT_EXTENSIBLE with the PCM subformat is PCM); any
other format is refused naming the file and what is wrong. The last partial frame is
padded with silence, so every read is one ``readinto`` and nothing is allocated.
``WavOut(path, n)``: a sink whose header (RIFF and data sizes) is patched every second and
at ``close``: a call that ends abruptly leaves a valid file, at most its last second
beyond the declared length.
"""

_RATE = 8000
_SEC = 2 * _RATE  # bytes a second


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


class WavIn:
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


class WavOut:
    def __init__(self, path, n):
        self.f = _open(path, "wb")
        h = self.b = bytearray(b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\0\0\0\0\0\0\0\0"
                               b"\x02\0\x10\0data\0\0\0\0")
        _le32(h, 24, _RATE)
        _le32(h, 28, _SEC)
        self.k = 2 * n
        self.s = 0  # bytes of samples written
        self.d = _SEC  # when (in bytes) the header is patched next
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
            self.d += _SEC
            self._patch()

    def close(self):
        if self.f is not None:
            self._patch()
            self.f.close()
            self.f = None
