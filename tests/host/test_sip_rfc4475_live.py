"""RFC 4475 against the SIP stack running on the real MicroPython unix port (subprocess).

Every torture message goes to the stack over UDP and over TCP; the answer must be what
tests/data/rfc4475/index.json says (or nothing, for responses), and the stack must still
answer OPTIONS after each one. UDP responses follow RFC 3261 §18.2.2 (received address,
Via port or 5060), so the sender sits on 127.0.2.11:5060 and also listens on the other
Via ports the vectors name.
"""

import os
import re
import select
import socket
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fw"))

from sip_proc import EchoServer, free_port  # noqa: E402
from sipfw_helpers import expectation_met, rfc4475, rfc4475_index  # noqa: E402

PHONE = "127.0.2.10"
TESTER = "127.0.2.11"
VIA_PORTS = (5060, 5050)


def options(n):
    return (b"OPTIONS sip:phone@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKlive%d\r\n"
            b"From: <sip:t@%s>;tag=1\r\nTo: <sip:phone@%s>\r\nCall-ID: live%d\r\n"
            b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % (
                PHONE.encode(), TESTER.encode(), n, TESTER.encode(), PHONE.encode(), n))


def codes_of(datas):
    return [int(d[8:11]) for d in datas if d.startswith(b"SIP/2.0 ")]


def finals(codes):
    return [c for c in codes if c != 100]


@pytest.fixture()
def server():
    port = free_port(PHONE)
    with EchoServer("micropython", PHONE, port) as srv:
        yield srv
        assert srv.alive(), srv.output()


def call_id(data):
    m = re.search(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", data, re.I)
    return m.group(1) if m else None


def is_answer_to(resp, cid):
    """Earlier INVITEs' 480s keep coming (Timer G: the tester never ACKs): skip those."""
    if cid is None:
        return call_id(resp) is None
    return call_id(resp) == cid


def udp_collect(socks, want_final, quiet_ms, cid):
    """Responses to ``cid`` on socks until a final one (then quiet_ms more) or quiet_ms."""
    got = []
    end = time.monotonic() + (2.0 if want_final else quiet_ms / 1000)
    while time.monotonic() < end:
        r, _, _ = select.select(socks, [], [], max(0, end - time.monotonic()))
        for s in r:
            data = s.recv(65535)
            if is_answer_to(data, cid):
                got.append(data)
            if want_final and finals(codes_of(got)):
                end = min(end, time.monotonic() + quiet_ms / 1000)
    return got


def test_rfc4475_over_udp_on_micropython(server):
    socks = []
    for p in VIA_PORTS:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((TESTER, p))
        socks.append(s)
    bad = []
    try:
        for i, entry in enumerate(rfc4475_index()):
            data = rfc4475(entry["name"])
            socks[0].sendto(data, (PHONE, server.port))
            got = udp_collect(socks, entry["expect"] not in ("drop",), 150, call_id(data))
            why = expectation_met(entry, finals(codes_of(got)))
            if why:
                bad.append((entry["name"], why))
            if entry["name"] == "dblreq" and finals(codes_of(got)) != [405]:
                bad.append(("dblreq", "the trailing INVITE must get no answer over UDP"))
            socks[0].sendto(options(i), (PHONE, server.port))
            got = udp_collect(socks, True, 0, call_id(options(i)))
            assert finals(codes_of(got)) == [200], (entry["name"], got, server.output())
    finally:
        for s in socks:
            s.close()
    assert not bad, bad
    assert server.alive()


def tcp_exchange(port, data, wait_final):
    """Send data on a new connection; return (responses, closed_by_peer)."""
    from sipua.sip.stream import NEED_MORE, frame

    c = socket.create_connection((PHONE, port), timeout=2)
    c.sendall(data)
    buf, out, closed = bytearray(), [], False
    end = time.monotonic() + (2.0 if wait_final else 0.4)
    while time.monotonic() < end:
        r, _, _ = select.select([c], [], [], max(0, end - time.monotonic()))
        if not r:
            break
        chunk = c.recv(65535)
        if not chunk:
            closed = True
            break
        buf.extend(chunk)
        while True:
            n = frame(buf, len(buf))
            if n == NEED_MORE:
                break
            out.append(bytes(buf[:n]))
            buf[:n] = b""
        if wait_final and len(finals(codes_of(out))) >= wait_final:
            end = min(end, time.monotonic() + 0.15)
    c.close()
    return out, closed


# Over a stream an unterminated header section is still arriving: no answer is right
# until the connection is closed (RFC 4475 §3.1.2.2 says the same of clerr).
STREAM_INCOMPLETE = ("baddn",)


def test_rfc4475_over_tcp_on_micropython(server):
    bad = []
    for i, entry in enumerate(rfc4475_index()):
        name = entry["name"]
        want = 0 if entry["expect"] == "drop" or name in STREAM_INCOMPLETE else \
            (2 if name == "dblreq" else 1)
        out, closed = tcp_exchange(server.port, rfc4475(name), want)
        codes = finals(codes_of(out))
        if name in STREAM_INCOMPLETE:
            why = None if not codes else "expected to wait for more, got %s" % codes
        elif name == "dblreq":  # over a stream the INVITE is a second request
            why = None if codes == [405, 480] else "got %s" % codes
        else:
            why = expectation_met(entry, codes)
        if name in ("ncl", "mcl01") and not closed:
            why = "unframeable stream must be closed"
        if why:
            bad.append((name, why))
        out, _ = tcp_exchange(server.port, options(1000 + i).replace(b"/UDP", b"/TCP"), 1)
        assert finals(codes_of(out)) == [200], (name, out, server.output())
    assert not bad, bad
    assert server.alive()
