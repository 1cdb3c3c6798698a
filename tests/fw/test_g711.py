"""G.711 against a reference written here from G.191's description (every 16-bit sample),
against CPython's audioop where it exists (3.11: decode tables and A-law bit-exact, µ-law
exact up to its two's-complement handling of negative samples), round trips, the viper
loops against the plain ones, and no allocation per frame on MicroPython."""

import sys
from array import array

from fwtest import raises
from sipua.media import g711, g711p

N = 65536
MPY = sys.implementation.name == "micropython"


def ref_ulaw(x):
    mag = (-x - 1 if x < 0 else x) >> 2  # G.191: one's complement of a negative sample
    mag = min(mag + 33, 0x1FFF)
    seg = 1
    i = mag >> 6
    while i:
        seg += 1
        i >>= 1
    code = ((8 - seg) << 4) | (15 - ((mag >> seg) & 15))
    return code | 0x80 if x >= 0 else code


def ref_alaw(x):
    ix = (-x - 1 if x < 0 else x) >> 4
    if ix > 15:
        exp = 1
        while ix > 31:
            ix >>= 1
            exp += 1
        ix = ix - 16 + (exp << 4)
    if x >= 0:
        ix |= 0x80
    return ix ^ 0x55


def all_samples():
    return bytearray(array("h", range(-32768, 32768)))


def encode_all(pt):
    out = bytearray(N)
    assert g711.encode(pt, all_samples(), out, N) == N
    return out


def test_encode_matches_reference_for_every_sample():
    for pt, ref in ((0, ref_ulaw), (8, ref_alaw)):
        out = encode_all(pt)
        for i in range(N):
            if out[i] != ref(i - 32768):
                raise AssertionError("pt %d sample %d: %d != %d" % (pt, i - 32768, out[i],
                                                                    ref(i - 32768)))


def test_known_codes_and_silence():
    pcm = bytearray(array("h", [0, -1, 32767, -32768, 100, -100, 1000, -1000]))
    out = bytearray(8)
    g711.encode(0, pcm, out, 8)
    assert list(out) == [0xFF, 0x7F, 0x80, 0x00, 0xF2, 0x73, 0xCE, 0x4E]
    g711.encode(8, pcm, out, 8)
    assert list(out) == [0xD5, 0x55, 0xAA, 0x2A, 0xD3, 0x53, 0xFA, 0x7A]
    for pt in (0, 8):
        back = bytearray(2)
        g711.decode(pt, bytearray([g711.SILENCE[pt]]), back, 1)
        assert abs(array("h", back)[0]) <= 8  # silence decodes to (nearly) zero
        assert g711.table(pt) is g711.table(pt)  # built once


def test_decode_tables():
    u, a = g711.table(0), g711.table(8)
    assert len(u) == 256 and len(a) == 256
    assert (u[0], u[0x7F], u[0x80], u[0xFF]) == (-32124, 0, 32124, 0)
    assert (a[0x55], a[0xD5], a[0x2A], a[0xAA]) == (-8, 8, -32256, 32256)
    for c in range(128):  # sign symmetry
        assert u[c] == -u[c | 0x80] and a[c] == -a[c | 0x80]


def test_round_trip_properties():
    """Each reconstruction level encodes back to itself; decoded values rise with the
    input; the error stays within a quantisation step (1/16 of the level, at least 16)."""
    for pt in (0, 8):
        t = g711.table(pt)
        codes = bytearray(256)
        lv = bytearray(array("h", t))
        g711.encode(pt, lv, codes, 256)
        for c in range(256):
            assert t[codes[c]] == t[c], (pt, c)
        out = encode_all(pt)
        back = bytearray(2 * N)
        g711.decode(pt, out, back, N)
        dec = array("h", back)
        prev = -40000
        for i in range(0, N, 7):
            x, y = i - 32768, dec[i]
            assert y >= prev, (pt, x)
            prev = y
            ax = -x if x < 0 else x
            step = max(16, ax >> 4)  # both laws: 4 bits of mantissa a segment
            assert abs(x - y) <= step, (pt, x, y)


def test_memoryview_offsets_and_partial_frames():
    pcm = bytearray(array("h", [1000] * 4 + [-2000] * 4))
    buf = bytearray(20)
    mv = memoryview(buf)
    g711.encode(8, memoryview(pcm)[8:], mv[12:], 4)  # an RTP payload after its header
    assert list(buf[12:16]) == [ref_alaw(-2000)] * 4 and buf[16] == 0 and buf[11] == 0
    out = bytearray(10)
    g711.decode(8, mv[12:], memoryview(out)[2:], 4)
    assert out[:2] == b"\0\0" and array("h", out[2:])[0] == g711.table(8)[ref_alaw(-2000)]


def test_bad_payload_type():
    e = raises(ValueError, g711.encode, 3, bytearray(2), bytearray(1), 1)
    assert "payload type 3" in str(e)
    e = raises(ValueError, g711.decode, 18, bytearray(1), bytearray(2), 1)
    assert "payload type 18" in str(e)


def test_audioop_oracle():
    try:
        import audioop  # type: ignore  # CPython up to 3.12
    except ImportError:
        return  # MicroPython, CPython >= 3.13: the reference above is the oracle
    pcm = bytes(all_samples())
    assert encode_all(8) == audioop.lin2alaw(pcm, 2)
    codes = bytes(range(256))
    assert array("h", audioop.ulaw2lin(codes, 2)) == g711.table(0)
    assert array("h", audioop.alaw2lin(codes, 2)) == g711.table(8)
    u, theirs = encode_all(0), audioop.lin2ulaw(pcm, 2)
    assert u[32768:] == theirs[32768:]  # x >= 0: the same
    # x < -4: audioop quantises -x where G.191 quantises -x-1, one unit of 4 lower: the
    # same code as audioop gives for x + 4; -4..-1 are G.191's negative zero.
    assert u[:32764] == theirs[4:32768]
    assert u[32764:32768] == b"\x7f" * 4


def test_native_loops_match_plain_ones():
    enc, dec = g711._codec()
    if MPY:
        assert enc is not g711p.encode and dec is not g711p.decode, "no viper loops compiled"
    pcm = all_samples()
    for pt in (0, 8):
        a, b = bytearray(N), bytearray(N)
        enc(pcm, a, N, pt)
        g711p.encode(pcm, b, N, pt)
        assert a == b
        x, y = bytearray(2 * N), bytearray(2 * N)
        dec(a, x, N, g711.table(pt))
        g711p.decode(a, y, N, g711.table(pt))
        assert x == y


def test_no_allocation_per_frame():
    if not MPY:
        return  # CPython allocates ints; the budget is the board's
    import gc

    pcm, enc, back = bytearray(320), bytearray(160), bytearray(320)
    for i in range(320):
        pcm[i] = i * 37 & 255
    mv = memoryview(enc)
    for pt in (0, 8):
        g711.encode(pt, pcm, mv, 160)
        g711.decode(pt, mv, back, 160)
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        for i in range(500):
            pt = 0 if i & 1 else 8
            g711.encode(pt, pcm, mv, 160)
            g711.decode(pt, mv, back, 160)
        used = gc.mem_alloc() - before
    finally:
        gc.enable()
    assert used == 0, "%d bytes over 1000 frames" % used


def test_compiled_once_per_boot():
    from sipua import media
    from sipua.compat import forget

    c = g711._codec()
    viper = c[0] is not g711p.encode
    if viper:
        assert media._g711 is c
    else:  # plain loops: nothing kept after a call (False: the port cannot compile them)
        assert media._g711 is (False if MPY else None)
    assert "sipua.media.g711v" not in sys.modules  # the source is dropped once compiled
    forget("sipua.media.g711")  # as a call's end does (a no-op on CPython)
    from sipua.media import g711 as again

    assert (again is not g711) == MPY
    if viper or not MPY:
        assert again._codec() is c  # the package kept it: not compiled again


def test_buffer_checks():
    e = raises(ValueError, g711.encode, 0, bytearray(318), bytearray(160), 160)
    assert "160 samples" in str(e)
    raises(ValueError, g711.decode, 8, bytearray(159), bytearray(320), 160)
    raises(ValueError, g711.encode, 0, bytearray(320), bytearray(160), -1)
    if MPY:  # the native loops read 16-bit words: an odd address is refused, not a fault
        odd = memoryview(bytearray(322))[1:]
        e = raises(ValueError, g711.encode, 0, odd, bytearray(160), 160)
        assert "odd address" in str(e)
        raises(ValueError, g711.decode, 0, bytearray(160), odd, 160)
