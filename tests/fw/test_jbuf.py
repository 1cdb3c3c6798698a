"""The jitter buffer, driven by a virtual 20 ms playout clock: priming to the target,
reordering, duplicates, loss concealment (repeat once, then silence), late packets, the
sequence wrap, bursts, restarts, RFC 3550 jitter, the adapting target, and no allocation
per packet on MicroPython."""

import sys

from fwtest import raises
from sipua.media.jbuf import JitterBuffer

FB = 160  # 20 ms of G.711
MPY = sys.implementation.name == "micropython"


def frame(seq):
    return bytes([seq & 255, seq >> 8 & 255]) * (FB // 2)


def who(out):
    return out[0] | out[1] << 8


def run(jb, packets, ticks, t0=0):
    """packets: (arrival_ms, seq, ts) in arrival order; a pop every 20 ms from t0 after the
    packets due by then are put. Returns [(code, seq played or None)]."""
    out = bytearray(FB)
    res, k = [], 0
    for n in range(ticks):
        now = t0 + n * 20
        while k < len(packets) and packets[k][0] <= now:
            a, s, ts = packets[k]
            jb.put(s, ts, frame(s), a)
            k += 1
        c = jb.pop(out)
        res.append((c, who(out) if c != 2 else None))
    return res


def stream(first, count, delay=5, ts0=1000, start_ms=0):
    """A sender every 20 ms from start_ms, each packet ``delay`` ms late."""
    return [(start_ms + i * 20 + delay, (first + i) & 0xFFFF, (ts0 + 160 * i) & 0xFFFFFFFF)
            for i in range(count)]


def played(res):
    return [s for c, s in res if c == 0]


def test_in_order_primes_to_the_target_then_plays_everything():
    jb = JitterBuffer(FB, 20)
    assert jb.depth_ms == 40 and jb.n >= 8
    res = run(jb, stream(100, 50), 60)
    # packet n arrives at 20n + 5 ms: at 20 ms one frame waits (below the 40 ms target),
    # at 40 ms two: it plays
    assert res[:3] == [(2, None), (2, None), (0, 100)]
    assert played(res) == list(range(100, 150))
    assert (jb.received, jb.lost, jb.late, jb.dup, jb.dropped) == (50, 0, 0, 0, 0)
    assert jb.jitter == 0 and jb.jitter_ms() == 0
    codes = [c for c, _ in res]
    end = len(codes) - codes[::-1].index(0)  # ran dry: the last frame once, then silence
    assert res[end] == (1, 149) and set(codes[end + 1:]) == {2} and len(codes) - end == 8


def test_reorder_and_duplicates():
    pk = stream(0, 40)
    pk[10], pk[11] = (pk[11][0] - 1, pk[11][1], pk[11][2]), pk[10]  # 11 arrives before 10
    pk.insert(20, pk[19])  # 19 twice
    pk.insert(30, pk[5])  # 5 again, long after it played (its slot reused): late
    pk.insert(36, (pk[36][0], 31, pk[36][2]))  # 31 again just after it played: a dup
    jb = JitterBuffer(FB, 20)
    res = run(jb, pk, 45)
    assert played(res) == list(range(40))
    assert (jb.received, jb.dup, jb.late, jb.lost) == (43, 2, 1, 0)


def test_loss_repeats_the_last_frame_once_then_silence():
    pk = [p for p in stream(0, 40) if p[1] not in (10, 20, 21, 22)]
    jb = JitterBuffer(FB, 20)
    res = run(jb, pk, 45)
    codes = [c for c, _ in res]
    i = codes.index(1)
    assert res[i] == (1, 9) and res[i + 1] == (0, 11)  # one lost: 9 again, then on
    j = codes.index(1, i + 1)
    assert res[j] == (1, 19)  # three lost: 19 once, then silence until 23
    k = codes.index(0, j)
    assert res[k] == (0, 23) and set(codes[j + 1:k]) == {2} and k - j >= 3
    assert jb.lost == 4 and jb.late == 0
    assert played(res) == [s for s in range(40) if s not in (10, 20, 21, 22)]


def test_late_packet_counted_dropped_and_target_deeper():
    pk = stream(0, 30)
    pk[12] = (pk[12][0] + 200, pk[12][1], pk[12][2])  # 12 arrives 200 ms late
    pk.sort(key=lambda p: p[0])
    jb = JitterBuffer(FB, 20)
    res = run(jb, pk, 35)
    assert 12 not in played(res)
    assert jb.lost == 1 and jb.late == 1
    assert jb.depth_ms >= 60  # a late packet: one frame deeper at once


def test_sequence_wrap():
    jb = JitterBuffer(FB, 20)
    pk = stream(65530, 20, ts0=0xFFFFFF00)
    pk[7], pk[8] = pk[8], pk[7]  # reordered across the wrap (seq 1 before 0)
    res = run(jb, pk, 25)
    assert played(res) == [(65530 + i) & 0xFFFF for i in range(20)]
    assert jb.lost == 0 and jb.late == 0 and jb.jitter == 0


def test_burst_loss_beyond_the_slots():
    pk = [p for p in stream(0, 200) if not 50 <= p[1] < 130]
    jb = JitterBuffer(FB, 20)
    res = run(jb, pk, 210)
    assert played(res) == [s for s in range(200) if not 50 <= s < 130]
    assert jb.lost == 80 and jb.late == 0


def test_sender_restart_and_reset():
    jb = JitterBuffer(FB, 20)
    pk = stream(1000, 20) + stream(40000, 20, ts0=77, start_ms=400)
    res = run(jb, pk, 50)
    got = played(res)
    assert got[:20] == list(range(1000, 1020))
    # 40000 is held until 40001 confirms the new sequence; then it plays on
    assert got[20:] == list(range(40001, 40020))
    assert jb.late == 0 and jb.lost == 0
    # a lone stray far off is ignored
    jb2 = JitterBuffer(FB, 20)
    pk = stream(0, 30)
    pk.insert(15, (pk[15][0], 30000, 5))
    assert played(run(jb2, pk, 35)) == list(range(30))
    # reset() (a new SSRC): the new stream plays at once, from its first packet
    jb2.reset()
    assert played(run(jb2, stream(500, 10, start_ms=1000), 15, t0=1000)) == list(range(500, 510))


def test_rfc3550_jitter_against_floating_point():
    delays = [0, 7, 3, 25, 1, 0, 14, 9, 30, 2, 5, 18, 0, 11, 4] * 4
    jb = JitterBuffer(FB, 20)
    j, prev = 0.0, None
    out = bytearray(FB)
    for i, dl in enumerate(delays):
        arrival = 1000 + i * 20 + dl
        ts = 5000 + 160 * i
        jb.put(i, ts, frame(i), arrival)
        transit = arrival * 8 - ts
        if prev is not None:
            j += (abs(transit - prev) - j) / 16
        prev = transit
        jb.pop(out)
        assert abs(jb.jitter - j) <= 1.0, (i, jb.jitter, j)
    assert jb.jitter > 40 and abs(jb.jitter_ms() - j / 8) <= 0.5


def test_jitter_across_tick_and_timestamp_wraps():
    jb = JitterBuffer(FB, 20)
    t0 = (1 << 30) - 50  # ticks_ms wraps at 2^30
    for i in range(10):
        arrival = (t0 + i * 20) & ((1 << 30) - 1)
        jb.put(i, (0xFFFFFF00 + 160 * i) & 0xFFFFFFFF, frame(i), arrival)
    assert jb.jitter == 0


def test_target_adapts_to_jitter_within_bounds():
    # 8 s of packets delayed 0..100 ms (a fixed pattern), then 10 s of a steady network
    pat = [0, 60, 10, 95, 30, 5, 80, 45, 20, 100, 15, 70]
    pk = [(i * 20 + pat[i % len(pat)], i, 160 * i) for i in range(400)]
    pk += [(i * 20 + 3, i, 160 * i) for i in range(400, 900)]
    pk.sort(key=lambda p: p[0])
    jb = JitterBuffer(FB, 20)
    out = bytearray(FB)
    k, peak, late_at_8s = 0, 0, None
    for n in range(900):
        while k < len(pk) and pk[k][0] <= n * 20:
            a, s, ts = pk[k]
            jb.put(s, ts, frame(s), a)
            k += 1
        jb.pop(out)
        peak = max(peak, jb.depth_ms)
        assert 20 <= jb.depth_ms <= 120
        if n == 200:
            late_200 = jb.late
        if n == 399:
            late_at_8s = jb.late
            assert jb.depth_ms >= 100 and jb.jitter_ms() >= 15
    assert peak == 120
    assert late_at_8s - late_200 <= 2  # adapted: (almost) nothing late any more
    assert jb.depth_ms <= 40  # calm again: the target came down
    assert jb.jitter_ms() <= 2


def burst(count, backwards=False):
    """A steady stream where ``count`` packets from 20 on arrive at once, in order (the
    sort is by arrival, then sequence: MicroPython's sort is not stable) or backwards."""
    pk = stream(0, 300)
    pk = [p if not 20 <= p[1] < 20 + count else (pk[19][0], p[1], p[2]) for p in pk]
    pk = [(a - 20 * count if s >= 20 + count else a, s, ts) for a, s, ts in pk]
    pk.sort(key=lambda p: p[0] * 65536 + (65535 - p[1] if backwards and p[1] >= 20 else p[1]))
    return pk


def test_too_deep_drops_a_frame_now_and_then():
    # after priming, ten packets arrive at once on top of a steady stream: the buffer is
    # 10 frames deeper than its 40 ms target and sheds them (those beyond its 9 slots at
    # once, the oldest first)
    jb = JitterBuffer(FB, 20, min_ms=40)
    res = run(jb, burst(10), 300)
    assert jb.dropped >= 5 and jb.lost == 0
    got = played(res)
    assert got == sorted(got) and len(got) + jb.dropped >= 290
    # seven at once, the last first: all fit in the slots, none lost, played in order
    jb = JitterBuffer(FB, 20, min_ms=40)
    res = run(jb, burst(7, True), 300)
    assert jb.lost == 0 and jb.late == 0 and jb.dropped >= 3
    got = played(res)
    assert got == sorted(got) and len(got) + jb.dropped >= 290


def test_short_and_long_payloads():
    jb = JitterBuffer(4, 20, start_ms=20, fill=0xD5)
    out = bytearray(4)
    jb.put(0, 0, b"\x01\x02", 0)
    assert jb.pop(out) == 0 and out == b"\x01\x02\xd5\xd5"
    jb.put(1, 160, b"\x09\x08\x07\x06\x05", 20)
    assert jb.pop(out) == 0 and out == b"\x09\x08\x07\x06"


def test_bad_arguments():
    e = raises(ValueError, JitterBuffer, 160, 20, 20, 120, 200)
    assert "start_ms 200" in str(e)
    raises(ValueError, JitterBuffer, 0, 20)
    raises(ValueError, JitterBuffer, 160, 0)


def test_no_allocation_per_packet():
    if not MPY:
        return  # the budget is the board's
    import gc

    jb = JitterBuffer(FB, 20)
    out = bytearray(FB)
    pay = [bytearray(frame(i)) for i in range(4)]
    pat = [0, 3, 9, 1]

    def steps(a, b):
        for i in range(a, b):
            if i % 50 != 7:  # one packet a second lost: concealment runs too
                jb.put(i & 0xFFFF, (160 * i) & 0xFFFFFF, pay[i & 3], i * 20 + pat[i & 3])
            if i % 50 == 9:  # and one arrives twice
                jb.put(i & 0xFFFF, (160 * i) & 0xFFFFFF, pay[i & 3], i * 20 + 9)
            jb.pop(out)

    steps(65000, 65200)
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        steps(65200, 66200)  # across the sequence wrap
        used = gc.mem_alloc() - before
    finally:
        gc.enable()
    assert jb.dup == 24 and jb.lost == 24 and jb.late == 0
    assert used == 0, "%d bytes over 1000 packets" % used


def test_other_ptimes():
    for ptime, slots in ((10, 15), (20, 9), (30, 7), (60, 5)):
        fb = 8 * ptime
        jb = JitterBuffer(fb, ptime)
        assert jb.n == slots and jb.depth_ms == max(40, ptime)  # at least a frame
        out = bytearray(fb)
        got = []
        for n in range(40):
            now = n * ptime
            if n < 30:
                jb.put(n, n * fb, bytes([n]) * fb, now + 2)
            if jb.pop(out) == 0:
                got.append(out[0])
        assert got == list(range(30)), (ptime, got)
        assert jb.lost == 0 and jb.late == 0
