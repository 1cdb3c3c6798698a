"""The media session (media/rtp.py, rtcp.py) against a far end on real loopback sockets
(127.0.5.0/24), in virtual time: RTP header fields, pacing without drift, SSRC and source
filtering, the receive path into the sink, RTCP reports both ways, RFC 4733 DTMF."""

import struct

from fwtest import ListLog, bind_udp, new_sched
from sipua.compat import urandom_u32
from sipua.sched import POLLIN
from sipua.sip import sdp

PHONE = "127.0.5.1"
FAR = "127.0.5.2"


def _cfg(source="silence", ptime=20):
    lo = 42000 + 2 * (urandom_u32() % 2000)  # parallel runs: a port range of their own
    return {"source": source, "sink": "null", "codecs": ("PCMU", "PCMA"), "ptime": ptime,
            "rtp_ports": (lo, lo + 40), "jitter_ms": 40}


class Far:
    """The far end: an RTP and an RTCP socket; records (sched ms, bytes) of what it gets."""

    def __init__(self, sched, ip=FAR):
        self.sched = sched
        for _ in range(20):
            self.sock, self.port = bind_udp(ip)
            if self.port % 2 == 0:
                try:
                    self.csock = _bind(ip, self.port + 1)
                    break
                except OSError:
                    pass
            self.sock.close()
        self.ip = ip
        self.got = []
        self.rtcp = []
        for s, out in ((self.sock, self.got), (self.csock, self.rtcp)):
            s.setblocking(False)
            sched.watch(s, POLLIN, lambda sock, ev, out=out: _drain(sched, sock, out))

    def media(self, pts=(0,), ptime=20, direction="sendrecv"):
        return sdp.parse(sdp.build(self.ip, self.port, pts, direction, session_id=1,
                                   ptime=ptime))

    def send(self, data, dst, port):
        import socket

        self.sock.sendto(data, socket.getaddrinfo(dst, port)[0][-1])

    def close(self):
        for s in (self.sock, self.csock):
            self.sched.unwatch(s)
            s.close()

    def audio(self):
        return [(t, d) for t, d in self.got if d[1] & 0x7F in (0, 8)]


def _bind(ip, port):
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(socket.getaddrinfo(ip, port)[0][-1])
    except OSError:
        s.close()
        raise
    return s


def _drain(sched, sock, out):
    while True:
        try:
            data = sock.recv(2048)
        except OSError:
            return
        if not data:
            return
        out.append((sched.now(), data))


def rtp(pt, seq, ts, ssrc, payload, marker=False):
    return struct.pack(">BBHII", 0x80, pt | (0x80 if marker else 0), seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def _setup(source="silence", ptime=20, pts=(0,), direction="sendrecv", far_ptime=None):
    from sipua.media.rtp import Session

    s, clock = new_sched(real_poll=True, real_wait_ms=0)
    log = ListLog()
    far = Far(s)
    ses = Session(s, _cfg(source, ptime), PHONE, log.logger, 7)
    ses.start(pts[0], far.media(pts, far_ptime or ptime), direction)
    return s, clock, log, far, ses


def _close(far, ses):
    ses.stop()
    far.close()


class Recorder:
    """A sink that keeps a copy of every frame written."""

    def __init__(self):
        self.frames = []

    def write(self, pcm):
        self.frames.append(bytes(pcm))

    def close(self):
        pass


def listen(ses):
    """A Recorder as the running session's sink (ctl.listen: with what decoding needs, which
    the null sink of _cfg did not)."""
    from sipua.media import ctl

    rec = Recorder()
    ctl.listen(ses, rec)
    return rec


class SendLog:
    """Stands in for the session's RTP socket on the send side: (ms, bytes) of each send."""

    def __init__(self, sched, sock):
        self.sched = sched
        self.sock = sock
        self.sent = []

    def send(self, data):
        self.sent.append((self.sched.now(), bytes(data)))
        return len(data)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def diffs(xs, mod):
    """The steps between neighbours, modulo ``mod`` (MicroPython has no zip(strict=))."""
    return [(xs[i + 1] - xs[i]) % mod for i in range(len(xs) - 1)]


def _hdr(d):
    b0, b1, seq, ts, ssrc = struct.unpack(">BBHII", d[:12])
    return b0, b1 >> 7, b1 & 0x7F, seq, ts, ssrc


def test_rtp_header_fields_and_silence_payload():
    s, _clock, log, far, ses = _setup()
    try:
        assert ses.port % 2 == 0
        s.run_until(lambda: len(far.got) >= 6, 2000)
        hs = [_hdr(d) for _, d in far.got[:6]]
        assert all(h[0] == 0x80 and h[2] == 0 for h in hs)  # V=2, no P/X/CC, PCMU
        assert [h[1] for h in hs] == [1, 0, 0, 0, 0, 0]  # marker on the first packet only
        assert len({h[5] for h in hs}) == 1  # one SSRC
        assert diffs([h[3] for h in hs], 65536) == [1] * 5
        assert diffs([h[4] for h in hs], 1 << 32) == [160] * 5
        assert all(len(d) == 172 and d[12:] == b"\xff" * 160 for _, d in far.got[:6])
        st = log.events("start")[0]
        assert st["codec"] == "PCMU" and st["ptime"] == "20"
        assert st["remote"] == "%s:%d" % (FAR, far.port) and st["local"] == "%s:%d" % (
            PHONE, ses.port)
    finally:
        _close(far, ses)


def test_two_sessions_have_different_ssrc_and_ports():
    from sipua.media.rtp import Session

    s, _clock = new_sched(real_poll=True, real_wait_ms=0)
    cfg = _cfg()
    a = Session(s, cfg, PHONE, ListLog().logger, 1)
    b = Session(s, cfg, PHONE, ListLog().logger, 1)  # the same call id: the next pair
    try:
        assert a.port != b.port and a.port % 2 == 0 and b.port % 2 == 0
    finally:
        a.stop()
        b.stop()


def test_pacing_has_no_drift_over_1000_packets():
    for ptime in (20, 30):
        s, clock, _log, far, ses = _setup(ptime=ptime)
        try:
            ses.rtp = SendLog(s, ses.rtp)
            t0 = ses.t0
            out = ses.rtp.sent
            s.run_until(lambda: len(out) >= 500, 60000)  # noqa: B023 - run at once
            clock.advance(3 * ptime + 7)  # the loop stalls for a moment: it catches up
            s.run_until(lambda: len(out) >= 1000, 60000)  # noqa: B023
            sent = out[:1000]
            for n, (t, _d) in enumerate(sent):
                assert t >= t0 + n * ptime, (n, t)  # never early
                assert t - (t0 + n * ptime) <= 3 * ptime + 7, (n, t)  # late only in the stall
            assert [t - t0 for t, _ in sent[-5:]] == [n * ptime for n in range(995, 1000)]
            ts = [_hdr(d)[4] for _, d in sent]
            assert diffs(ts, 1 << 32) == [8 * ptime] * 999
            assert all(len(d) == 12 + 8 * ptime for _, d in sent)
        finally:
            _close(far, ses)


def test_a_long_stall_skips_the_packets_whose_time_is_gone():
    s, clock, _log, far, ses = _setup()
    try:
        ses.rtp = SendLog(s, ses.rtp)
        s.run_until(lambda: len(ses.rtp.sent) >= 10, 2000)
        clock.advance(1000)  # 50 packets late: 5 sent at once, the rest skipped
        s.run_until(lambda: len(ses.rtp.sent) >= 20, 2000)
        at = [t for t, _ in ses.rtp.sent]
        ts = [_hdr(d)[4] for _, d in ses.rtp.sent]
        burst = [i for i in range(1, len(at)) if at[i] == at[i - 1]]
        assert len(burst) == 5 - 1  # five packets at the same moment
        gap = diffs(ts, 1 << 32)
        assert max(gap) > 160 and all(g % 160 == 0 for g in gap)  # a jump in time, not drift
        n = (s.now() - ses.t0) // 20 + 1
        assert (ts[-1] - ts[0]) & 0xFFFFFFFF == (n - 1) * 160
    finally:
        _close(far, ses)


def test_receive_path_decodes_into_the_sink_and_counts_loss():
    from sipua.media import g711

    s, _clock, _log, far, ses = _setup()
    rec = listen(ses)
    try:
        tone = bytearray(320)
        for i in range(160):
            v = (8000 if (i // 4) % 2 else -8000) & 0xFFFF
            tone[2 * i], tone[2 * i + 1] = v & 255, v >> 8
        payload = bytearray(160)
        g711.encode(0, tone, payload, 160)
        for k in range(30):
            if k == 12:
                continue  # lost
            far.send(rtp(0, 100 + k, 5000 + 160 * k, 0xABCD, bytes(payload)), PHONE, ses.port)
            s.run_until(lambda: False, 20)
        s.run_until(lambda: False, 200)
        st = ses.stats()
        assert st["received"] == 29 and st["lost"] == 1, st
        want = bytearray(320)
        g711.decode(0, payload, want, 160)
        assert sum(1 for f in rec.frames if f == bytes(want)) >= 27
    finally:
        _close(far, ses)


def test_packets_from_another_source_or_ssrc_are_dropped():
    s, _clock, _log, far, ses = _setup()
    stranger = Far(s, "127.0.5.3")
    try:
        pay = b"\x7f" * 160
        for k in range(5):
            far.send(rtp(0, k, 160 * k, 1111, pay), PHONE, ses.port)
            stranger.send(rtp(0, 50 + k, 160 * k, 2222, pay), PHONE, ses.port)
            s.run_until(lambda: False, 20)
        assert ses.stats()["received"] == 5  # the stranger's never reach the session
        for k in range(5, 8):  # the same source with another SSRC, while the first talks
            far.send(rtp(0, 90 + k, 160 * k, 3333, pay), PHONE, ses.port)
            far.send(rtp(0, k, 160 * k, 1111, pay), PHONE, ses.port)
            s.run_until(lambda: False, 20)
        st = ses.stats()
        assert st["bad_ssrc"] == 3 and st["received"] == 8, st
        s.run_until(lambda: False, 1500)  # the first source went quiet: a new one is taken
        far.send(rtp(0, 500, 0, 4444, pay), PHONE, ses.port)
        s.run_until(lambda: False, 20)
        assert ses.stats()["received"] == 9 and ses.rssrc == (0, 4444)
        far.send(b"\x00" * 40, PHONE, ses.port)  # not RTP
        s.run_until(lambda: False, 20)
        assert ses.stats()["dropped"] == 1
    finally:
        stranger.close()
        _close(far, ses)


def test_strangers_are_counted_and_never_heard():
    """Datagrams to our RTP port from any address or port but the far end's SDP one land on
    the unconnected second socket: counted as stray, never decoded, never latched onto,
    not even once the far end has gone quiet; the count is in status and the stop line."""
    from sipua.media import g711

    s, _clock, log, far, ses = _setup()
    rec = listen(ses)
    other_host = Far(s, "127.0.5.3")
    other_port = Far(s, FAR)  # the far end's address, another port
    try:
        ours, theirs = b"\x7f" * 160, b"\x00" * 160  # near silence; a loud one
        for k in range(6):
            far.send(rtp(0, k, 160 * k, 1111, ours), PHONE, ses.port)
            other_host.send(rtp(0, k, 160 * k, 1111, theirs), PHONE, ses.port)
            other_port.send(rtp(0, 50 + k, 160 * k, 2222, theirs), PHONE, ses.port)
            s.run_until(lambda: False, 20)
        s.run_until(lambda: False, 1500)  # the far end is quiet now: still no latching
        for k in range(3):
            other_host.send(rtp(0, 9 + k, 160 * (9 + k), 3333, theirs), PHONE, ses.port)
            s.run_until(lambda: False, 20)
        st = ses.stats()
        assert st["stray"] == 15 and st["received"] == 6 and st["bad_ssrc"] == 0, st
        assert ses.rssrc == (0, 1111)
        loud = bytearray(320)
        g711.decode(0, theirs, loud, 160)
        assert rec.frames and bytes(loud) not in rec.frames
        ses.stop()
        assert log.events("stop")[0]["stray"] == "15"
    finally:
        other_host.close()
        other_port.close()
        _close(far, ses)


def test_datagrams_read_together_are_split_by_their_headers():
    """MicroPython's readinto runs queued datagrams together: _walk splits them."""
    _s, _clock, _log, far, ses = _setup()
    try:
        pay = b"\x7f" * 160
        pkts = [rtp(0, 1, 0, 9, pay), rtp(101, 2, 160, 9, b"\x05\x0a\x00\xa0"),
                rtp(0, 3, 320, 9, pay)]
        joined = b"".join(pkts[:2])
        ses.rx[:len(joined)] = joined
        ses._walk(len(joined))
        ses.rx[:172] = pkts[2]
        ses._walk(172)
        assert ses.received == 2 and ses.digits == "5" and ses.dropped == 0
        ses.rx[:172 + 100] = pkts[0] + pkts[2][:100]  # the second was cut: dropped
        ses._walk(272)
        assert ses.dropped == 1
    finally:
        _close(far, ses)


def test_rtcp_report_contents_and_the_far_ends_report_read_back():
    s, _clock, _log, far, ses = _setup()
    try:
        for k in range(50):  # the far end sends too: our report has a block about it
            if k not in (10, 11):
                far.send(rtp(0, 7 + k, 160 * k, 0x5151, b"\xff" * 160), PHONE, ses.port)
            s.run_until(lambda: False, 20)
        s.run_until(lambda: len(far.rtcp) >= 1, 8000)
        data = far.rtcp[0][1]
        b0, pt, words, ssrc = struct.unpack(">BBHI", data[:8])
        assert pt == 200 and b0 == 0x81 and len(data) >= 4 * (words + 1)
        assert data[8:12] != b"" and ssrc == _hdr(far.got[0][1])[5]
        sec, frac, _rts, pkts, octets = struct.unpack(">IIIII", data[8:28])
        assert 0 < pkts <= ses.sent
        assert octets == 160 * pkts
        src, lost_word, ext, _jitter = struct.unpack(">IIII", data[28:44])
        assert src == 0x5151 and lost_word & 0xFFFFFF == 2 and ext == 7 + 49
        assert (lost_word >> 24) == 2 * 256 // 50  # fraction lost since the start
        sdes = data[4 * (words + 1):]
        assert sdes[1] == 202 and sdes[8] == 1 and b"sipfw@" in sdes
        # the far end's RR about our stream: 5% lost, 12 lost in all, jitter 160 (20 ms)
        lsr = ((sec & 0xFFFF) << 16) | (frac >> 16)
        rr = struct.pack(">BBHI", 0x81, 201, 7, 0x5151) + struct.pack(
            ">IBBHIIII", ssrc, 13, 0, 12, 1000, 160, lsr, 0)
        far.csock.sendto(rr, _addr(PHONE, ses.port + 1))
        s.run_until(lambda: ses.far is not None, 1000)
        f = ses.stats()["rtcp"]["far"]
        assert f["lost"] == 12 and f["fraction"] == 13 * 100 // 256 and f["jitter_ms"] == 20
        assert f["rtt_ms"] is not None and 0 <= f["rtt_ms"] < 10000
        ses.stop()
        s.run_until(lambda: any(d[-7] == 203 for _, d in far.rtcp[1:]), 1000)
        last = far.rtcp[-1][1]
        assert last[-8] == 0x81 and last[-7] == 203  # BYE at the end
    finally:
        _close(far, ses)


def _addr(ip, port):
    import socket

    return socket.getaddrinfo(ip, port)[0][-1]


def test_dtmf_events_out():
    s, _clock, _log, far, ses = _setup()
    try:
        s.run_until(lambda: len(far.got) >= 3, 1000)
        ses.dtmf("1#")
        s.run_until(lambda: ses.ev is None, 3000)
        s.run_until(lambda: False, 100)
        ev = [(t, d) for t, d in far.got if d[1] & 0x7F == 101]
        assert len(ev) == 14, len(ev)  # per digit: 4 updates + the end packet 3 times
        for digit, pkts in ((1, ev[:7]), (11, ev[7:])):
            hs = [_hdr(d) for _, d in pkts]
            assert [h[1] for h in hs] == [1, 0, 0, 0, 0, 0, 0]  # marker on the first
            assert len({h[4] for h in hs}) == 1  # one timestamp for the event
            assert all(d[12] == digit and len(d) == 16 for _, d in pkts)
            durs = [struct.unpack(">H", d[14:16])[0] for _, d in pkts]
            assert durs == [160, 320, 480, 640, 800, 800, 800], durs
            assert [d[13] >> 7 for _, d in pkts] == [0, 0, 0, 0, 1, 1, 1]
        seqs = [_hdr(d)[3] for _, d in far.got]
        assert diffs(seqs, 65536) == [1] * (len(seqs) - 1)
        # the event's timestamp is the audio clock at its start; audio goes on after it
        assert _hdr(ev[7][1])[4] > _hdr(ev[0][1])[4]
        assert far.audio()[-1][0] > ev[-1][0]
    finally:
        _close(far, ses)


def test_dtmf_events_in_are_logged_once_and_shown_in_status():
    s, _clock, log, far, ses = _setup()
    try:
        for k, (dur, end) in enumerate(((160, 0), (320, 0), (480, 0x80), (480, 0x80),
                                        (480, 0x80))):
            far.send(rtp(101, 20 + k, 8000, 77, bytes((5, end | 10, dur >> 8, dur & 255)),
                         marker=k == 0), PHONE, ses.port)
            s.run_until(lambda: False, 20)
        far.send(rtp(101, 30, 9600, 77, bytes((11, 0x8a, 3, 32))), PHONE, ses.port)
        s.run_until(lambda: False, 20)
        assert [e["digit"] for e in log.events("dtmf")] == ["5", "#"]
        assert ses.stats()["dtmf"] == "5#"
    finally:
        _close(far, ses)


def test_far_end_holding_us_stops_our_sending_and_update_moves_the_stream():
    s, _clock, log, far, ses = _setup()
    far2 = Far(s, "127.0.5.4")
    try:
        s.run_until(lambda: len(far.got) >= 3, 1000)
        ses.update(0, far.media(direction="sendonly"), "recvonly")  # they hold us
        n = len(far.audio())
        s.run_until(lambda: False, 200)
        assert len(far.audio()) == n  # nothing sent while held
        old = far.media()
        old.ip = "0.0.0.0"  # RFC 2543's way of holding: nothing is sent either
        ses.update(0, old, "sendrecv")
        s.run_until(lambda: False, 100)
        assert len(far.audio()) == n and ses.stats()["dir"] == "sendrecv"
        ses.update(0, far2.media(), "sendrecv")  # resumed, from a new address and port
        s.run_until(lambda: len(far2.got) >= 3, 1000)
        assert len(far.audio()) == n
        assert _hdr(far2.got[0][1])[1] == 1  # the first packet after the silence: marker
        up = log.events("update")
        assert up[-1]["remote"] == "127.0.5.4:%d" % far2.port and up[0]["dir"] == "recvonly"
    finally:
        far2.close()
        _close(far, ses)


def test_no_allocation_per_packet_at_steady_state():
    """Send, receive and play out with the heap locked (MicroPython): nothing allocates."""
    try:
        import micropython
    except ImportError:
        return  # CPython allocates everywhere; the board's interpreter is the one to ask
    _s, _clock, _log, far, ses = _setup()
    try:
        pkt = bytearray(rtp(0, 1, 0, 99, b"\xff" * 160))
        ses._rx(ses.rtp, POLLIN)
        for k in range(3):
            pkt[3] = k
            ses.rx[:172] = pkt
            ses._walk(172)
        now = ses.due
        micropython.heap_lock()
        try:
            for k in range(3, 50):
                pkt[3] = k
                pkt[7] = (k * 160) & 255
                pkt[6] = (k * 160) >> 8
                ses.rx[:172] = pkt
                ses._walk(172)
                ses.tick(now)
                now += 20
        finally:
            micropython.heap_unlock()
        assert ses.received == 50 and ses.sent >= 47
    finally:
        _close(far, ses)


def test_the_real_loop_allocates_nothing_per_packet():
    """The whole loop on the board's scheduler (real clock, select.poll; ipoll on
    MicroPython): RTP out, echoed back, read, played out. On MicroPython the heap must not
    grow from one packet to the next (RTCP, every ~5 s, is held off for the measure)."""
    import gc

    from sipua.compat import IS_MICROPYTHON, readinto
    from sipua.media.rtp import Session
    from sipua.sched import Scheduler

    s = Scheduler()
    far = Far(s)
    s.unwatch(far.sock)
    buf = bytearray(172)
    back = []

    def echo(sock, ev):  # allocation-free, so the far end does not count
        while readinto(sock, buf) == 172:
            buf[8] = 0x44
            if not back:
                back.append(_addr(PHONE, ses.port))
            sock.sendto(buf, back[0])

    s.watch(far.sock, POLLIN, echo)
    ses = Session(s, _cfg(), PHONE, ListLog().logger, 3)
    ses.start(0, far.media(), "sendrecv")
    ses._rtcp_timer.cancel()
    try:
        s.run_until(lambda: ses.received >= 5, 2000)
        sent, received = ses.sent, ses.received

        def done():
            return ses.sent >= sent + 25

        gc.collect()
        before = gc.mem_alloc() if IS_MICROPYTHON else 0
        s.run_until(done, 2000)
        grew = (gc.mem_alloc() if IS_MICROPYTHON else 0) - before
        assert ses.sent >= sent + 25 and ses.received >= received + 20
        assert grew == 0, "%d bytes for %d packets" % (grew, ses.sent - sent)
    finally:
        _close(far, ses)
