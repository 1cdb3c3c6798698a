"""RTCP (RFC 3550 §6) for a media ``Session``: our report every ~5 s, BYE at the end, the
far end's reports read back; and the session's ``stats`` (the same numbers). Loaded for
each through ``Session._rtcp`` (``run``) and forgotten after it.

Ours is a compound packet: SR while we send (RR when we do not) with one report block about
the far end's stream once it has sent, then SDES with our CNAME. The NTP time in our SR is
the scheduler's clock (ms since boot): nothing needs wall time, and the round trip computed
from the far end's LSR/DLSR is in that same clock. Runs every few seconds, so it may
allocate.
"""

from struct import pack, unpack_from

from ..compat import readinto, urandom_u32

_MS = 5000  # the report interval (the first after half of it: ctl.py)


def run(s, sock, ev):
    if sock is not None:  # the poller: what came on the RTCP socket
        while True:
            try:
                n = readinto(sock, s.rx)  # in the RTP buffer: free now
            except OSError:
                return
            if not n:
                return
            s.rtcp_in += 1
            parse(s, n)
    if not ev:
        return stats(s)
    try:
        s.rtcp.send(report(s))
        s.rtcp_out += 1
    except OSError:
        pass
    # RFC 3550 §6.3.1: the interval randomised over [0.5, 1.5] of its value
    s._rtcp_timer = s.sched.call_later(_MS // 2 + urandom_u32() % _MS, s._rtcp)


def stats(s):
    """For ``status``: the stream's numbers (polled by host tools)."""
    jb = s.jb
    out = {"local": "%s:%d" % (s.ip, s.port)}  # type: dict
    if jb is None:
        return out
    expected = s.max_seq - s.base_seq + 1 if s.base_seq >= 0 else 0
    lost = expected - s.received
    out.update({"codec": "PCMA" if s.pt else "PCMU", "ptime": s.ptime,
                "remote": "%s:%d" % s.addr, "dir": s.dir, "sent": s.sent,
                "received": s.received, "lost": lost if lost > 0 else 0,
                "late": jb.late, "jitter_ms": jb.jitter_ms(), "bad_ssrc": s.bad_ssrc,
                "dropped": s.dropped, "stray": s.stray, "dtmf": s.digits,
                "rtcp": {"sent": s.rtcp_out, "received": s.rtcp_in, "far": s.far}})
    return out


def _ntp(ms):
    """(seconds, fraction) of a time in ms, and its middle 32 bits (LSR)."""
    sec, frac = ms // 1000, (ms % 1000) * 4294967296 // 1000
    return sec, frac, ((sec & 0xFFFF) << 16) | (frac >> 16)


def _block(s, now):
    """The report block about the far end's stream (b"" before it sent anything)."""
    if s.rssrc is None or s.base_seq < 0:
        return b""
    expected = s.max_seq - s.base_seq + 1
    lost = expected - s.received
    pe, pr = s.rep or (0, 0)
    s.rep = (expected, s.received)
    de, dl = expected - pe, lost - (pe - pr)
    fraction = (dl << 8) // de if de > 0 and dl > 0 else 0
    if lost < 0:
        lost = 0
    lsr = dlsr = 0
    if s.sr is not None:
        lsr = s.sr[1]
        dlsr = (now - s.sr[0]) * 65536 // 1000
    return pack(">HHBBHIIII", s.rssrc[0], s.rssrc[1], fraction if fraction < 256 else 255,
                lost >> 16 & 255, lost & 0xFFFF, s.max_seq & 0xFFFFFFFF, int(s.jb.jitter),
                lsr, dlsr)


def _head(s, now):
    block = _block(s, now)
    rc = 1 if block else 0
    ssrc = bytes(s.tx[8:12])
    if s.sending and s.sent:
        sec, frac, _ = _ntp(now)
        body = ssrc + pack(">IIHHII", sec, frac, s.ts_hi, s.ts_lo, s.sent, s.octets & 0xFFFFFFFF)
        pt = 200
    else:
        body = ssrc
        pt = 201
    body += block
    out = pack(">BBH", 0x80 | rc, pt, len(body) // 4) + body
    cname = ("sipfw@%s" % s.ip).encode()
    item = b"\x01" + bytes((len(cname),)) + cname + b"\x00"
    item += b"\x00" * (-len(item) % 4)
    return out + pack(">BBH", 0x81, 202, (4 + len(item)) // 4) + ssrc + item, ssrc


def report(s):
    return _head(s, s.sched.now())[0]


def bye(s):
    out, ssrc = _head(s, s.sched.now())
    return out + pack(">BBH", 0x81, 203, 1) + ssrc


def parse(s, n):
    """A compound RTCP packet of ``n`` bytes in ``s.rx``: SR times and report blocks
    about our stream (``s.far``), BYE logged."""
    buf = s.rx
    now = s.sched.now()
    off = 0
    ours = bytes(s.tx[8:12])
    while n - off >= 8:
        b0, pt, words = unpack_from(">BBH", buf, off)
        end = off + 4 + 4 * words
        if b0 & 0xC0 != 0x80 or end > n:
            return
        rc = b0 & 31
        if pt in (200, 201):
            p = off + (28 if pt == 200 else 8)
            if pt == 200:
                sec, frac = unpack_from(">II", buf, off + 8)
                s.sr = (now, ((sec & 0xFFFF) << 16) | (frac >> 16))
            for _ in range(rc):
                if p + 24 > end:
                    break
                if bytes(buf[p:p + 4]) == ours:
                    f, l1, l2, _, jitter, lsr, dlsr = unpack_from(">BBHIIII", buf, p + 4)
                    lost = l1 << 16 | l2
                    if lost & 0x800000:
                        lost -= 0x1000000
                    rtt = None
                    if lsr:
                        rtt = (_ntp(now)[2] - lsr - dlsr) * 1000 // 65536
                        if not 0 <= rtt < 60000:  # not our SR's time: no round trip
                            rtt = None
                    s.far = {"lost": lost, "fraction": f * 100 // 256,
                             "jitter_ms": jitter // 8, "rtt_ms": rtt}
                p += 24
        elif pt == 203:
            s.log.info("media", "rtcp_bye", call=s.call)
        off = end
