"""The plain sources and sinks of ``hal.audio``: ``silence`` and ``null`` (``Buf``), ``echo``."""


class Buf:
    """``silence`` and ``null``: reads zeros, ignores writes."""

    def __init__(self, n):
        self.b = bytearray(2 * n)

    def read(self, pcm):
        pcm[0:len(self.b)] = self.b

    def write(self, pcm):
        pass

    def close(self):
        pass


class Echo(Buf):
    def write(self, pcm):
        self.b[:] = pcm
