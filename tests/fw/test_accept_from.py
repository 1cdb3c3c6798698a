"""``sip.accept_from``: with ``servers`` (the default) a request from anyone but the phone's
own servers is dropped without an answer — no 200 to a scanner's OPTIONS, no ring for a
stranger's INVITE — counted in ``status`` and logged once per source per minute, while the
registrar's own INVITE still rings; ``any`` answers everyone. Real loopback sockets (a fake
DNS server, a fake registrar, a stranger on another address), the real agent, virtual time.
"""

import socket

from dnsfake import FakeDns
from fwtest import ListLog, new_sched, raises
from sipfw_helpers import Peer
from sipua.agent import Agent
from sipua.config import ConfigError, validate
from sipua.dns.wire import SRV, A
from sipua.sip.transport import sockaddr
from test_reg import Registrar

PHONE = "127.0.4.3"
UC = "127.0.4.29"
DNS = "127.0.4.54"
STRANGER = "127.0.4.66"


def make(accept=None):
    s, _ = new_sched(real_poll=True, real_wait_ms=5)
    reg = Registrar(s, UC)
    dns = FakeDns(s, {"_sip._udp.guard.test": [(SRV, 60, (1, 0, reg.port, "uc.guard.test"))],
                      "uc.guard.test": [(A, 60, UC)]}, host=DNS)
    sip = {"local_ip": PHONE, "local_port": 20000 + reg.port % 20000}
    if accept:
        sip["accept_from"] = accept
    cfg = validate({
        "accounts": [{"user": "6903", "password": "6903", "server": "guard.test",
                      "transport": "udp", "expires": 600}],
        "dns": {"servers": [dns.server]}, "sip": sip})
    log = ListLog()
    a = Agent(s, cfg, log.logger)
    a.start()
    stranger = Peer(s, STRANGER)
    return s, a, reg, dns, stranger, log


def close(a, reg, dns, stranger):
    a.stop(False)
    dns.close()
    reg.stop()
    stranger.close()


def until(s, cond, ms=10000):
    s.run_until(cond, ms)
    assert cond()


def wait(s, ms):
    end = s.now() + ms
    s.run_until(lambda: s.now() >= end, ms + 1000)


def request(a, peer, method, n=1):
    ip, port = a.stack.local_ip, a.stack.local_port
    return ("%s sip:6903@%s:%d SIP/2.0\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKguard%d\r\n"
            "From: <sip:100@%s>;tag=s%d\r\nTo: <sip:6903@guard.test>\r\n"
            "Call-ID: guard-%d@%s\r\nCSeq: 1 %s\r\nContact: <sip:100@%s:%d>\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            % (method, ip, port, peer.ip, peer.port, n, peer.ip, n, n, peer.ip, method,
               peer.ip, peer.port)).encode()


def send(a, sock, data):
    sock.sendto(data, sockaddr(a.stack.local_ip, a.stack.local_port))


def test_a_stranger_gets_no_answer_and_no_ring_the_registrar_still_rings():
    s, a, reg, dns, stranger, log = make()
    try:
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        send(a, stranger.sock, request(a, stranger, "OPTIONS", 1))
        send(a, stranger.sock, request(a, stranger, "INVITE", 2))
        for n in range(3, 7):  # a scanner keeps knocking: one line a minute, every drop counted
            send(a, stranger.sock, request(a, stranger, "OPTIONS", n))
        # not even a malformed one is answered (a reachable registrar would get its 400)
        send(a, stranger.sock, request(a, stranger, "OPTIONS", 7).replace(b"Via:", b"Via"))
        wait(s, 5000)
        assert stranger.got == []  # not one answer: no 200, no 100 Trying, no 180
        assert a.calls is None or not a.calls.calls
        assert a.status()["strangers"] == 7
        lines = log.events("stranger_dropped")
        assert len(lines) == 1, lines
        assert lines[0]["src"] == "%s:%d" % (STRANGER, stranger.port)
        assert lines[0]["method"] == "OPTIONS" and lines[0]["level"] == "WARN"
        # A stranger's TCP connection is closed at once, counted, not logged again.
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.bind(sockaddr(STRANGER, 0))
        c.setblocking(False)
        try:
            c.connect(sockaddr(a.stack.local_ip, a.stack.local_port))
        except OSError:
            pass
        until(s, lambda: a.status()["strangers"] == 8, 2000)
        c.close()
        assert len(a.stack.tp.flows) <= 1  # only the registration's own flow
        # A minute later the same source is worth one more line.
        wait(s, 60000)
        send(a, stranger.sock, request(a, stranger, "INVITE", 9))
        until(s, lambda: len(log.events("stranger_dropped")) == 2)
        assert log.events("stranger_dropped")[1]["method"] == "INVITE"
        assert stranger.got == []
        # The registrar's own INVITE rings, and its OPTIONS is answered.
        send(a, reg.peer.sock, request(a, reg.peer, "INVITE", 10))
        until(s, lambda: any(m.status == 180 for _, m in reg.peer.got))
        assert a.status()["calls"][0]["state"] == "ringing"
        send(a, reg.peer.sock, request(a, reg.peer, "OPTIONS", 11))
        until(s, lambda: any(m.status == 200 and m.cseq_method == "OPTIONS"
                             for _, m in reg.peer.got))
        assert a.status()["strangers"] == 9
        assert log.events("callback_error") == []
    finally:
        close(a, reg, dns, stranger)


def test_accept_from_any_answers_the_stranger():
    s, a, reg, dns, stranger, log = make("any")
    try:
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        send(a, stranger.sock, request(a, stranger, "OPTIONS", 1))
        until(s, lambda: any(m.status == 200 for _, m in stranger.got))
        send(a, stranger.sock, request(a, stranger, "INVITE", 2))
        until(s, lambda: any(m.status == 180 for _, m in stranger.got))
        assert a.status()["calls"][0]["state"] == "ringing"
        assert a.status()["strangers"] == 0 and log.events("stranger_dropped") == []
    finally:
        close(a, reg, dns, stranger)


def test_before_any_server_is_known_every_request_is_a_strangers():
    s, a, reg, dns, stranger, _ = make()
    try:
        a.registrations[0].stop(False)  # nothing resolved: no server to trust yet
        a.registrations[0].servers.targets = []
        send(a, reg.peer.sock, request(a, reg.peer, "OPTIONS", 1))
        wait(s, 1000)
        assert [m for _, m in reg.peer.got if m.status] == []
        assert a.status()["strangers"] == 1
    finally:
        close(a, reg, dns, stranger)


def test_accept_from_is_checked_by_the_schema():
    e = raises(ConfigError, validate, {"sip": {"accept_from": "everyone"}})
    assert "sip.accept_from" in str(e) and "servers, any" in str(e), str(e)
    assert validate({})["sip"]["accept_from"] == "servers"
    assert validate({"sip": {"accept_from": "any"}})["sip"]["accept_from"] == "any"
