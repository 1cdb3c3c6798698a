"""The viper source of G.711's loops (see g711.py), compiled once per boot and forgotten:
e(samples: ptr16, codes: ptr8, n, a) encodes (a: nonzero for A-law, the same steps as
g711._e), f(codes, samples, n, table) decodes; both return 1 without touching anything
when the samples are at an odd address (a 16-bit load there faults on xtensa and
Cortex-M0+), else 0."""

V = b"""
@micropython.viper
def e(s: ptr16, d: ptr8, n: int, a: int) -> int:
    if int(s) & 1:
        return 1
    i = 0
    while i < n:
        x = int(s[i])
        c = 0x80
        if x & 0x8000:
            x ^= 0xFFFF
            c = 0
        if a:
            x >>= 4
            if x > 15:
                g = 16
                while x > 31:
                    x >>= 1
                    g += 16
                x += g - 16
            d[i] = (x | c) ^ 0x55
        else:
            x = (x >> 2) + 33
            if x > 0x1FFF:
                x = 0x1FFF
            g = 0
            y = x >> 6
            while y:
                y >>= 1
                g += 1
            d[i] = ((g << 4) | ((x >> (g + 1)) & 15)) ^ 0x7F | c
        i += 1
    return 0
@micropython.viper
def f(s: ptr8, d: ptr16, n: int, t: ptr16) -> int:
    if int(d) & 1:
        return 1
    i = 0
    while i < n:
        d[i] = t[s[i]]
        i += 1
    return 0
"""
