"""A compact pure-Python MD5 (RFC 1321) for ports whose ``hashlib`` has none.

MicroPython builds ``hashlib.md5`` only with its TLS stack (esp32, Pico W, unix have it; a
plain Pico or a size-trimmed build does not), yet MD5 digest is what Kamailio and every
PBX challenge with. Only ``auth.py`` imports this, and only when ``hashlib.md5`` is
missing. Speed does not matter: a handful of hashes per registration.
"""

import struct

_S = (7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21)
_K = None


def _k():
    # floor(abs(sin(i + 1)) * 2**32), computed once on first use instead of a 64-entry table.
    global _K
    if _K is None:
        import math

        _K = [int(abs(math.sin(i + 1)) * 4294967296) & 0xFFFFFFFF for i in range(64)]
    return _K


def _rotl(x, c):
    return ((x << c) | (x >> (32 - c))) & 0xFFFFFFFF


class md5:
    def __init__(self, data=b""):
        self._h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
        self._buf = b""
        self._n = 0
        if data:
            self.update(data)

    def update(self, data):
        data = self._buf + bytes(data)
        self._n += len(data) - len(self._buf)
        i = 0
        while i + 64 <= len(data):
            self._block(data[i:i + 64])
            i += 64
        self._buf = data[i:]

    def _block(self, chunk):
        k = _k()
        w = struct.unpack("<16I", chunk)
        a, b, c, d = self._h
        for i in range(64):
            if i < 16:
                f = (b & c) | (~b & d)
                g = i
            elif i < 32:
                f = (d & b) | (~d & c)
                g = (5 * i + 1) & 15
            elif i < 48:
                f = b ^ c ^ d
                g = (3 * i + 5) & 15
            else:
                f = c ^ (b | (~d & 0xFFFFFFFF))
                g = (7 * i) & 15
            f = (f + a + k[i] + w[g]) & 0xFFFFFFFF
            a, d, c = d, c, b
            b = (b + _rotl(f, _S[(i >> 4) * 4 + (i & 3)])) & 0xFFFFFFFF
        h = self._h
        for j, v in enumerate((a, b, c, d)):
            h[j] = (h[j] + v) & 0xFFFFFFFF

    def digest(self):
        h = self._h[:]
        buf = self._buf
        n = self._n
        pad = b"\x80" + b"\x00" * ((55 - n) % 64) + struct.pack("<Q", (n * 8) & 0xFFFFFFFFFFFFFFFF)
        data = buf + pad
        for i in range(0, len(data), 64):
            self._block(data[i:i + 64])
        out = struct.pack("<4I", *self._h)
        self._h = h  # digest() leaves the object usable, as hashlib's does
        return out
