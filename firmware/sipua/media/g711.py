"""G.711 (ITU-T G.711, as its reference code in G.191 computes it): PCMU (µ-law, payload
type 0) and PCMA (A-law, payload type 8), 8 kHz.

``encode(pt, pcm, out, n)``: n int16 little-endian samples (2n bytes of ``pcm``, at an even
address: a bytearray, or a memoryview of one at an even offset) to n bytes of ``out``.
``decode(pt, data, pcm, n)``: the reverse. Neither allocates; buffers too small for n, or
(on MicroPython) samples at an odd address, raise ValueError.
Decoding is a lookup in a 256-entry int16 table per law (512 B, built on first use);
encoding computes the segment (no table). Negative samples are quantised on their one's
complement, as G.191 does (A-law: the same codes as CPython's old ``audioop``; µ-law:
``audioop`` used the two's complement and differs by one step on some negative samples).

On MicroPython both loops are ``@micropython.viper`` functions compiled at the first call
from the source in ``g711v`` (then forgotten; as source text the modules stay bytecode for
every ``mpy-cross`` architecture) and kept in ``sipua.media`` for the rest of the boot (an
ESP32 keeps native code in executable RAM until a soft reset: compiled once, not per
call); where that fails (no native emitter) and on CPython the plain loops of ``g711p`` run.
"""

from array import array

from ..compat import IS_MICROPYTHON, forget

SILENCE = {0: 0xFF, 8: 0xD5}  # the code of a zero sample per payload type

_T = {}  # payload type -> decode table, built on first use
_C = None  # (encode loop, decode loop), see _codec


def _codec():
    """(encode loop, decode loop): viper on MicroPython when the port compiles it."""
    global _C
    c = _C
    if c is None:
        from .. import media

        c = media._g711
        if c is None and IS_MICROPYTHON:
            from . import g711v

            g = {}
            try:
                exec(g711v.V, g)
                c = (g["e"], g["f"])
            except Exception:  # noqa: BLE001 - no native emitter on this port: plain loops
                c = False  # not tried again
            forget("sipua.media.g711v")
            media._g711 = c
        if not c:
            from . import g711p  # the plain loops (kept by a session: this module can go)

            c = (g711p.encode, g711p.decode)
        _C = c
    return c


def table(pt):
    """The decode table of a payload type: array('h') of 256 samples (G.191's expansion)."""
    t = _T.get(pt)
    if t is None:
        if pt != 0 and pt != 8:
            raise ValueError("g711: payload type %r is neither 0 (PCMU) nor 8 (PCMA)" % pt)
        t = array("h", bytes(512))
        for c in range(256):
            if pt:  # A-law
                x = (c ^ 0x55) & 0x7F
                g = x >> 4
                m = ((x & 15) + (16 if g else 0)) * 16 + 8
                if g > 1:
                    m <<= g - 1
            else:  # µ-law
                x = ~c & 0x7F
                g = x >> 4
                m = (128 << g) + (8 << g) * (x & 15) + (4 << g) - 132
            t[c] = m if c & 0x80 else -m
        _T[pt] = t
    return t


def _fit(pcm, b, n):
    if n < 0 or 2 * n > len(pcm) or n > len(b):
        raise ValueError("g711: %d samples, buffers of %d and %d bytes" % (n, len(pcm), len(b)))


def encode(pt, pcm, out, n):
    if pt != 0 and pt != 8:
        table(pt)  # raises, naming the payload type
    _fit(pcm, out, n)
    if _codec()[0](pcm, out, n, pt):
        raise ValueError("g711: samples at an odd address")
    return n


def decode(pt, data, pcm, n):
    t = table(pt)
    _fit(pcm, data, n)
    if _codec()[1](data, pcm, n, t):
        raise ValueError("g711: samples at an odd address")
    return n
