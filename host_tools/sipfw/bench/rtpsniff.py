"""Packets on loopback, taken by the kernel: an ``AF_PACKET`` socket on ``lo`` with
``SO_TIMESTAMPNS`` (root; no tshark needed). Each packet leaving a sender is stamped when the
kernel hands it to the loopback device, so send intervals carry neither the receiver's
scheduling nor this process's.

    with RtpSniffer() as sniff:          # a thread reads until close()
        ... a call ...
    board = sniff.stream(src_ip="127.0.6.11")
    send_stats(board, ptime_ms=20)       # interval p50/p99/max, loss, jitter, drift

``RtpSniffer`` keeps G.711 RTP only (version 2, payload type 0 or 8): RTCP (types 200-204)
and RFC 4733 events (a dynamic type) are not media frames. ``SipSniffer`` keeps SIP
messages over UDP or TCP (a start line ending ``SIP/2.0`` or beginning ``SIP/2.0 ``):
captured lab traffic, the live fuzz's seeds.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
from dataclasses import dataclass

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35  # Linux
PACKET_OUTGOING = 4
MEDIA_TYPES = (0, 8)


@dataclass
class Packet:
    t_ns: int  # kernel timestamp
    src: tuple[str, int]
    dst: tuple[str, int]
    pt: int
    seq: int
    ts: int
    ssrc: int
    marker: bool


Addr = tuple[str, int]


def payload_of(frame: bytes, proto: int = 17) -> tuple[Addr, Addr, bytes] | None:
    """(src, dst, payload) of an Ethernet-framed (as ``lo`` frames are) IPv4 UDP datagram
    (``proto`` 17) or TCP segment (6)."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != proto:
        return None
    sport, dport = struct.unpack_from("!HH", ip, ihl)
    start = ihl + (8 if proto == 17 else (ip[ihl + 12] >> 4) * 4)
    return ((socket.inet_ntoa(ip[12:16]), sport), (socket.inet_ntoa(ip[16:20]), dport),
            ip[start:])


def parse_frame(frame: bytes, t_ns: int) -> Packet | None:
    """A G.711 RTP packet, else None."""
    udp = payload_of(frame)
    if udp is None:
        return None
    src, dst, rtp = udp
    if len(rtp) < 12 or rtp[0] >> 6 != 2 or (rtp[1] & 0x7F) not in MEDIA_TYPES:
        return None
    seq, ts, ssrc = struct.unpack_from("!HII", rtp, 2)
    return Packet(t_ns, src, dst, rtp[1] & 0x7F, seq, ts, ssrc, bool(rtp[1] & 0x80))


@dataclass
class SipDatagram:
    t_ns: int
    src: tuple[str, int]
    dst: tuple[str, int]
    data: bytes


def sip_datagram(frame: bytes, t_ns: int) -> SipDatagram | None:
    """A SIP request or response in a UDP datagram or a TCP segment (its start line says so;
    on lo a message is one segment), else None."""
    got = payload_of(frame) or payload_of(frame, 6)
    if got is None:
        return None
    line = got[2].split(b"\r\n", 1)[0]
    if not (line.startswith(b"SIP/2.0 ") or line.endswith(b" SIP/2.0")):
        return None
    return SipDatagram(t_ns, got[0], got[1], got[2])


class LoopbackSniffer:
    """What ``parse(frame, t_ns)`` keeps of the packets sent on ``iface``, in ``packets``."""

    def __init__(self, iface: str = "lo", parse=parse_frame):
        self.parse = parse
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((iface, 0))
        self.sock.settimeout(0.2)
        self.packets: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        space = socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            try:
                frame, anc, _, addr = self.sock.recvmsg(65600, space)  # lo's MTU is 64 KB
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[2] != PACKET_OUTGOING:  # loopback shows each packet twice: keep the send
                continue
            t_ns = 0
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", data[:16])
                    t_ns = sec * 1_000_000_000 + nsec
            p = self.parse(frame, t_ns)
            if p is not None:
                self.packets.append(p)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RtpSniffer(LoopbackSniffer):
    def stream(self, src_ip: str | None = None, dst_ip: str | None = None) -> list[Packet]:
        """The packets of the one SSRC (the first seen) from src_ip / to dst_ip."""
        pk = [p for p in list(self.packets) if (src_ip is None or p.src[0] == src_ip)
              and (dst_ip is None or p.dst[0] == dst_ip)]
        return [p for p in pk if p.ssrc == pk[0].ssrc] if pk else []


class SipSniffer(LoopbackSniffer):
    def __init__(self, iface: str = "lo"):
        super().__init__(iface, sip_datagram)

    def messages(self, ip: str) -> list[bytes]:
        """Each distinct SIP datagram sent to or from ``ip``, in order."""
        out = dict.fromkeys(p.data for p in list(self.packets) if ip in (p.src[0], p.dst[0]))
        return list(out)


def percentile(values, p: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def send_stats(packets: list[Packet], ptime_ms: float = 20, rate: int = 8000) -> dict:
    """Intervals between consecutive packets (ms), sequence gaps, RFC 3550 interarrival
    jitter at the capture point (ms), and drift: the last packet's time against the first's
    plus (n - 1)·ptime, and packets counted against duration/ptime."""
    if len(packets) < 2:
        return {"packets": len(packets)}
    pairs = list(itertools.pairwise(packets))
    iv = [(b.t_ns - a.t_ns) / 1e6 for a, b in pairs]
    span_ms = (packets[-1].t_ns - packets[0].t_ns) / 1e6
    expected = 1 + sum((b.seq - a.seq) & 0xFFFF for a, b in pairs)  # sequence unwrapped
    jitter = 0.0
    for a, b in pairs:
        d = (b.t_ns - a.t_ns) / 1e9 * rate - ((b.ts - a.ts) & 0xFFFFFFFF)
        jitter += (abs(d) - jitter) / 16
    return {
        "packets": len(packets),
        "duration_s": round(span_ms / 1000, 3),
        "expected_by_duration": round(span_ms / ptime_ms) + 1,
        "drift_ms": round(span_ms - (expected - 1) * ptime_ms, 2),
        "interval_ms": {"p50": round(percentile(iv, 50), 3), "p99": round(percentile(iv, 99), 3),
                        "max": round(max(iv), 3), "min": round(min(iv), 3)},
        "seq_lost": expected - len(packets),
        "jitter_ms": round(jitter / rate * 1000, 3),
        "markers": sum(p.marker for p in packets),
    }
