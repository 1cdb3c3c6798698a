"""sipfw.bench.rtpsniff: frame parsing and the send statistics the audio bench reports."""

import socket
import struct

import pytest
from sipfw.bench.rtpsniff import Packet, parse_frame, percentile, send_stats, sip_datagram


def frame(pt=0, seq=1, ts=160, ssrc=7, marker=False, src=("127.0.6.1", 40000),
          dst=("127.0.0.1", 20000), payload=b"\xff" * 160, rtp=None):
    if rtp is None:
        rtp = struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq, ts, ssrc) + payload
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(rtp), 0) + rtp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    return b"\0" * 12 + b"\x08\x00" + ip + udp


def test_parse_keeps_g711_rtp_only():
    p = parse_frame(frame(pt=8, seq=9, ts=320, marker=True), 5)
    assert (p.pt, p.seq, p.ts, p.ssrc, p.marker, p.t_ns) == (8, 9, 320, 7, True, 5)
    assert p.src == ("127.0.6.1", 40000) and p.dst == ("127.0.0.1", 20000)
    assert parse_frame(frame(pt=101), 0) is None  # RFC 4733 event
    rtcp = bytearray(frame())
    rtcp[14 + 20 + 8 + 1] = 200  # a sender report
    assert parse_frame(bytes(rtcp), 0) is None
    assert parse_frame(frame()[:40], 0) is None


def test_sip_datagrams_are_kept_whole_and_nothing_else():
    req = b"OPTIONS sip:6903@127.0.6.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n\r\n"
    p = sip_datagram(frame(rtp=req), 3)
    assert (p.data, p.src, p.t_ns) == (req, ("127.0.6.1", 40000), 3)
    resp = b"SIP/2.0 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
    assert sip_datagram(frame(rtp=resp), 0).data == resp
    assert sip_datagram(frame(), 0) is None  # RTP
    assert sip_datagram(frame(rtp=b"\r\n\r\n"), 0) is None  # a keep-alive
    assert sip_datagram(frame(rtp=b"HTTP/1.1 200 OK\r\n\r\n"), 0) is None
    tcp = bytearray(frame(rtp=b"\0" * 12 + resp))  # 8 B of UDP header + 12: a 20 B TCP one
    tcp[14 + 9] = 6
    tcp[14 + 20 + 12] = 5 << 4
    assert sip_datagram(bytes(tcp), 0).data == resp


def stream(times_ms, seqs=None):
    seqs = seqs or list(range(65530, 65530 + len(times_ms)))
    return [Packet(int(t * 1e6), ("a", 1), ("b", 2), 0, s & 0xFFFF, 160 * i, 1, i == 0)
            for i, (t, s) in enumerate(zip(times_ms, seqs, strict=True))]


def test_even_pacing_has_no_drift_no_loss_no_jitter():
    st = send_stats(stream([20 * i for i in range(100)]))
    assert st["packets"] == 100 == st["expected_by_duration"]
    assert st["interval_ms"]["p50"] == st["interval_ms"]["max"] == 20
    assert st["drift_ms"] == 0 and st["seq_lost"] == 0 and st["jitter_ms"] == 0
    assert st["markers"] == 1


def test_a_late_packet_shows_in_max_and_jitter_a_gap_in_loss_and_slow_pacing_in_drift():
    times = [20 * i for i in range(100)]
    times[50] += 8
    st = send_stats(stream(times))
    assert st["interval_ms"]["max"] == 28 and st["interval_ms"]["p50"] == 20
    assert st["jitter_ms"] > 0 and st["drift_ms"] == 0
    seqs = list(range(100))
    del seqs[10]
    st = send_stats(stream([20 * i for i in range(99)], seqs))
    assert st["seq_lost"] == 1
    st = send_stats(stream([21 * i for i in range(100)]))
    assert st["drift_ms"] == pytest.approx(99)


def test_percentile():
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile(range(101), 99) == 99
