"""G.711 (stand-in until the audiocore branch's lands): PCMU (0) and PCMA (8), computed."""

SILENCE = {0: 0xFF, 8: 0xD5}


def _ulaw(s):
    sign = 0x80 if s < 0 else 0
    if s < 0:
        s = -s
    if s > 32635:
        s = 32635
    s += 0x84
    e = 7
    m = 0x4000
    while e and not s & m:
        e -= 1
        m >>= 1
    return ~(sign | e << 4 | (s >> (e + 3)) & 15) & 0xFF


def _alaw(s):
    s >>= 3
    if s >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        s = -s - 1
    seg = 0
    end = 0x1F
    while seg < 8 and s > end:
        seg += 1
        end = end << 1 | 1
    if seg >= 8:
        return 0x7F ^ mask
    a = seg << 4 | ((s >> 1) if seg < 2 else (s >> seg)) & 15
    return a ^ mask


def _unulaw(u):
    u = ~u & 0xFF
    t = (((u & 15) << 3) + 0x84) << ((u >> 4) & 7)
    return 0x84 - t if u & 0x80 else t - 0x84


def _unalaw(a):
    a ^= 0x55
    t = (a & 15) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def encode(pt, pcm, out, n):
    f = _ulaw if pt == 0 else _alaw
    for i in range(n):
        s = pcm[2 * i] | pcm[2 * i + 1] << 8
        if s & 0x8000:
            s -= 0x10000
        out[i] = f(s)


def decode(pt, data, pcm, n):
    f = _unulaw if pt == 0 else _unalaw
    for i in range(n):
        s = f(data[i]) & 0xFFFF
        pcm[2 * i] = s & 255
        pcm[2 * i + 1] = s >> 8
