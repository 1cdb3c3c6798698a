"""TCP on the listening port: framing across reads, several messages per read, CRLF
keep-alives, idle close; UDP response addressing. Real loopback sockets, virtual time."""

import socket

from fwtest import new_sched
from sipfw_helpers import Peer, reply
from sipua.sip.msg import parse
from sipua.sip.stack import SipStack
from sipua.sip.strans import response_addr
from sipua.sip.stream import NEED_MORE, frame
from sipua.sip.transport import sockaddr

PHONE = "127.0.2.3"
TESTER = "127.0.2.4"


def options(n, transport=b"TCP"):
    return (b"OPTIONS sip:p@127.0.2.3 SIP/2.0\r\nVia: SIP/2.0/%s 127.0.2.4;branch=z9hG4bKt%d\r\n"
            b"From: <sip:t@127.0.2.4>;tag=1\r\nTo: <sip:p@127.0.2.3>\r\nCall-ID: tcp%d\r\n"
            b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % (transport, n, n))


def start():
    s, _ = new_sched(real_poll=True, real_wait_ms=3)
    from sipua.compat import urandom_u32

    for _ in range(20):
        port = 20000 + urandom_u32() % 30000
        st = SipStack(s, PHONE, port)
        try:
            st.start()
            return s, st, port
        except OSError:
            st.stop()
    raise OSError("no port")


def connect(s, port):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.connect(sockaddr(PHONE, port))
    c.setblocking(False)
    return c


def read_all(s, c, ms=300):
    """What the stack wrote, until it has been quiet for a few real milliseconds (Nagle
    may hold a small second write until the first is ACKed)."""
    import time

    buf = bytearray()
    s.run(until_ms=s.now() + ms)  # let the stack answer
    idle = 0
    while idle < 4:
        try:
            data = c.recv(4096)
        except OSError:
            idle += 1
            time.sleep(0.03)
            s.run_once(0)
            continue
        if not data:
            buf.extend(b"<EOF>")
            break
        buf.extend(data)
        idle = 0
    return bytes(buf)


def split(buf):
    out = []
    buf = bytearray(buf)
    while buf:
        n = frame(buf, len(buf))
        if n == NEED_MORE:
            break
        out.append(parse(bytes(buf[:n]), False))
        buf[:n] = b""
    return out


def test_tcp_partial_reads_several_messages_and_keepalives():
    s, st, port = start()
    c = connect(s, port)
    data = options(1) + b"\r\n\r\n" + options(2) + options(3)
    c.send(data[:30])
    s.run(until_ms=s.now() + 50)
    c.send(data[30:200])
    s.run(until_ms=s.now() + 50)
    c.send(data[200:])
    out = read_all(s, c)
    assert out.count(b"\r\n") and out.startswith(b"SIP/2.0 200 OK")
    # The double-CRLF ping got a single CRLF pong between the first and second answer.
    first_end = out.index(b"Content-Length: 0\r\n\r\n") + 21
    assert out[first_end:first_end + 2] == b"\r\n"
    msgs = split(out[:first_end] + out[first_end + 2:])
    assert [m.call_id for m in msgs] == ["tcp1", "tcp2", "tcp3"]
    assert all(m.status == 200 for m in msgs)
    c.close()
    st.stop()


def test_tcp_message_longer_than_the_read_buffer_arrives_whole():
    """One send of a request three times the size of the stream read buffer (1 KB), then a
    short one: both answered, in order (each read adds its chunk to the flow's bytes)."""
    s, st, port = start()
    c = connect(s, port)
    big = options(1).replace(b"Content-Length: 0\r\n",
                             b"Subject: " + b"x" * 3000 + b"\r\nContent-Length: 0\r\n")
    assert len(big) > 3 * 1024
    c.send(big + options(2))
    msgs = split(read_all(s, c))
    assert [(m.call_id, m.status) for m in msgs] == [("tcp1", 200), ("tcp2", 200)]
    c.close()
    st.stop()


def test_tcp_idle_connection_is_closed_and_busy_one_kept():
    s, st, port = start()
    c = connect(s, port)
    c.send(options(1))
    assert read_all(s, c).startswith(b"SIP/2.0 200")
    assert len(st.tp.flows) == 1
    s.run(until_ms=s.now() + st.tp.idle_ms + st.tp.idle_ms // 2)
    assert not st.tp.flows
    assert read_all(s, c, 10).endswith(b"<EOF>")
    c.close()
    # A pinned outgoing connection stays.
    peer = Peer(s, TESTER, "tcp")
    peer.answer = reply(200, "OK")
    done = []
    t = st.request(st.make_request("REGISTER", "sip:x", "sip:u@x"), peer.target(),
                   lambda o, m: done.append(o))
    s.run(until_ms=s.now() + 100)
    st.tp.pin(t.flow)
    s.run(until_ms=s.now() + 3 * st.tp.idle_ms)
    assert len(st.tp.flows) == 1 and done
    peer.close()
    st.stop()


def test_stream_receive_buffer_comes_with_the_first_stream_flow():
    s, st, port = start()
    peer = Peer(s, TESTER, "udp")
    peer.answer = reply(200, "OK")
    done = []
    st.request(st.make_request("REGISTER", "sip:x", "sip:u@x"), peer.target(),
               lambda o, m: done.append(o))
    s.run(until_ms=s.now() + 100)
    assert done and st.tp._rx is None  # a UDP-only phone keeps no stream buffer
    udp, = st.tp.flows.values()
    assert udp.out is None and udp.rbuf is None  # nor does a datagram flow
    # ... nor its attributes: the class's defaults stand in (a smaller attribute table)
    assert not set(udp.__dict__) & {"out", "rbuf", "heard", "pinned"}
    assert not udp.pinned and not udp.heard
    peer.close()
    c = connect(s, port)
    c.send(options(1))
    assert read_all(s, c).startswith(b"SIP/2.0 200")
    assert len(st.tp._rx) == 1024  # allocated with the accepted connection, then kept
    tcp, = [f for f in st.tp.flows.values() if f.kind == "tcp"]
    assert tcp.out == [] and tcp.rbuf == bytearray()
    st.tp._close(tcp, None)
    assert tcp.out is None and tcp.rbuf is None  # a closed flow's buffers go with it
    c.close()
    st.stop()


def test_unframeable_stream_is_answered_then_closed():
    s, st, port = start()
    c = connect(s, port)
    c.send(options(1).replace(b"Content-Length: 0", b"Content-Length: -1"))
    out = read_all(s, c)
    assert out.startswith(b"SIP/2.0 400 Bad Content-Length") and out.endswith(b"<EOF>")
    c.close()
    st.stop()


def test_udp_response_address_rules():
    m = parse(options(1, b"UDP"))
    m.src = ("127.0.2.9", 40000)
    assert response_addr(m) == ("127.0.2.9", 5060)  # received address, Via port
    m = parse(options(1, b"UDP").replace(b"branch", b"rport;branch"))
    m.src = ("127.0.2.9", 40000)
    assert response_addr(m) == ("127.0.2.9", 40000)  # rport: the source port
    m = parse(options(1, b"UDP").replace(b"127.0.2.4;", b"127.0.2.4:5070;"))
    m.src = ("127.0.2.9", 40000)
    assert response_addr(m) == ("127.0.2.9", 5070)
