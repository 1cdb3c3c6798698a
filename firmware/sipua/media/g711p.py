"""G.711's plain loops (see g711.py), where the viper ones of g711v do not compile (a port
without a native emitter) and on CPython: ``encode(samples, codes, n, a)`` (a: nonzero for
A-law), ``decode(codes, samples, n, table)``. Apart from g711.py so that a session holding
them does not keep that module."""


def encode(s, d, n, a):
    for i in range(n):
        x = s[2 * i] | s[2 * i + 1] << 8
        c = 0x80
        if x & 0x8000:
            x ^= 0xFFFF  # one's complement: the magnitude G.711 quantises
            c = 0
        if a:  # A-law: 13-bit magnitude, segment = position of the leading one
            x >>= 4
            if x > 15:
                g = 16
                while x > 31:
                    x >>= 1
                    g += 16
                x += g - 16
            d[i] = (x | c) ^ 0x55
        else:  # µ-law: 14-bit magnitude plus the bias 33, clipped
            x = (x >> 2) + 33
            if x > 0x1FFF:
                x = 0x1FFF
            g = 0
            y = x >> 6
            while y:
                y >>= 1
                g += 1
            d[i] = ((g << 4) | ((x >> (g + 1)) & 15)) ^ 0x7F | c


def decode(s, d, n, t):
    for i in range(n):
        v = t[s[i]]
        d[2 * i] = v & 255
        d[2 * i + 1] = v >> 8 & 255
