"""Audio sources and sinks (stand-in until the audiocore branch's lands)."""


class _Null:
    def __init__(self, n):
        self.n = n
        self.last = bytearray(2 * n)

    def read(self, pcm):
        for i in range(2 * self.n):
            pcm[i] = 0

    def write(self, pcm):
        pass

    def close(self):
        pass


class _Echo(_Null):
    def read(self, pcm):
        pcm[:] = self.last

    def write(self, pcm):
        self.last[:] = pcm


class _Tone(_Null):
    def __init__(self, n, hz):
        import math

        super().__init__(n)
        period = 8000
        self.table = [int(12000 * math.sin(2 * math.pi * hz * i / 8000)) for i in range(period)]
        self.i = 0

    def read(self, pcm):
        t = self.table
        for k in range(self.n):
            s = t[self.i] & 0xFFFF
            pcm[2 * k] = s & 255
            pcm[2 * k + 1] = s >> 8
            self.i = (self.i + 1) % 8000


def open_sink(spec, frame_samples, board=None):
    if spec == "echo":
        return _Echo(frame_samples)
    if spec == "null":
        return _Null(frame_samples)
    raise ValueError("audio.sink: %r is not available here" % spec)


def open_source(spec, frame_samples, board=None, sink=None):
    if spec == "echo" and isinstance(sink, _Echo):
        return sink
    if spec == "silence":
        return _Null(frame_samples)
    if spec.startswith("tone:"):
        return _Tone(frame_samples, int(spec[5:]))
    raise ValueError("audio.source: %r is not available here" % spec)
