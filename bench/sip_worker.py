# SIP parse/serialize figures, run by bench_sip.py under MicroPython and CPython.
# Prints one JSON line. Not a test: timing lives here, not in tests/.
import gc
import json
import sys

try:
    from time import ticks_diff, ticks_us
except ImportError:
    import time

    def ticks_us():
        return int(time.perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b

MICRO = sys.implementation.name == "micropython"

REGISTER = (
    b"REGISTER sip:airties.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 192.168.1.20:5060;rport;branch=z9hG4bK1829aa4f2c31d8e0\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "6903" <sip:6903@airties.com>;tag=5b6d1e2a\r\n'
    b"To: <sip:6903@airties.com>\r\n"
    b"Call-ID: 0a2c3e4f5d6b7a89@sipfw\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"Contact: <sip:6903@192.168.1.20:5060;transport=tcp>\r\n"
    b'Authorization: Digest username="6903", realm="airties.com", nonce="Z2VuZXJhdGVk'
    b'bm9uY2U=", uri="sip:airties.com", response="0123456789abcdef0123456789abcdef", '
    b'algorithm=MD5, qop=auth, nc=00000001, cnonce="deadbeef"\r\n'
    b"Expires: 3600\r\n"
    b"User-Agent: sipfw\r\n"
    b"Content-Length: 0\r\n\r\n"
)
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)
INVITE = (
    b"INVITE sip:6904@airties.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.20:5060;rport;branch=z9hG4bK77aa0c1d9e2f3a4b\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "6903" <sip:6903@airties.com>;tag=9f8e7d6c\r\n'
    b"To: <sip:6904@airties.com>\r\n"
    b"Call-ID: 1b2c3d4e5f60718293@sipfw\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:6903@192.168.1.20:5060>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
    b"Supported: replaces, timer\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n\r\n" % len(SDP)
) + SDP
OK200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.20:5060;rport=5060;branch=z9hG4bK77aa0c1d9e2f3a4b;"
    b"received=192.168.1.20\r\n"
    b"Record-Route: <sip:10.0.0.1;lr>\r\n"
    b'From: "6903" <sip:6903@airties.com>;tag=9f8e7d6c\r\n'
    b"To: <sip:6904@airties.com>;tag=as5e2a1f0b\r\n"
    b"Call-ID: 1b2c3d4e5f60718293@sipfw\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:6904@10.0.0.7:5060>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n\r\n" % len(SDP)
) + SDP


def mem_free():
    return gc.mem_free() if MICRO else 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    gc.collect()
    m0 = mem_free()
    from sipua.sip.msg import parse

    gc.collect()
    m1 = mem_free()
    from sipua.sip import stack, uas  # noqa: F401

    gc.collect()
    m2 = mem_free()
    out = {"interp": sys.implementation.name, "n": n,
           "import_msg_bytes": m0 - m1, "import_stack_uas_bytes": m1 - m2}
    for name, data in (("register", REGISTER), ("invite", INVITE), ("ok200", OK200)):
        parse(data).to_bytes()  # warm up
        t0 = ticks_us()
        for _ in range(n):
            parse(data)
        t1 = ticks_us()
        for _ in range(n):
            parse(data).to_bytes()
        t2 = ticks_us()
        out[name + "_parse_per_s"] = int(n * 1000000 / max(1, ticks_diff(t1, t0)))
        out[name + "_parse_serialize_per_s"] = int(n * 1000000 / max(1, ticks_diff(t2, t1)))
        if MICRO:
            # Allocated while parsing (garbage included: what the GC must reclaim per
            # message) and retained by the parsed message while a layer holds it.
            gc.collect()
            a = mem_free()
            m = parse(data)
            b = mem_free()
            gc.collect()
            c = mem_free()
            out[name + "_heap_bytes"] = a - b
            out[name + "_retained_bytes"] = a - c
            # The fields every layer reads (tags, branch, CSeq) are kept at parse time;
            # this is what reading a Contact and a header by name adds.
            gc.collect()
            a = mem_free()
            m.contacts()
            m.header("User-Agent")
            b = mem_free()
            out[name + "_access_heap_bytes"] = a - b
            del m
    print(json.dumps(out))


if __name__ == "__main__":  # also imported, for its messages, by fuzz_sip
    main()
