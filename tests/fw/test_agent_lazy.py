"""Load only what runs: the agent imports the DNS code for a resolution and the call code
for a call, and unloads both when idle (a board's .mpy modules live in its RAM). Real
loopback sockets (a fake DNS server, a fake registrar that calls the phone), the real
agent, virtual time; on MicroPython the modules must also leave ``sys.modules``."""

import sys

from dnsfake import FakeDns
from fwtest import ListLog, new_sched
from sipua import agent as agentmod
from sipua.agent import Agent
from sipua.compat import IS_MICROPYTHON, forget
from sipua.config import validate
from sipua.dns.wire import SRV, A
from test_reg import Registrar

PHONE = "127.0.4.2"
UC = "127.0.4.28"
DNS = "127.0.4.53"


def loaded(name):
    return name in sys.modules


def make(real_wait_ms=5):
    s, _ = new_sched(real_poll=True, real_wait_ms=real_wait_ms)
    reg = Registrar(s, UC)
    dns = FakeDns(s, {"_sip._udp.lazy.test": [(SRV, 60, (1, 0, reg.port, "uc.lazy.test"))],
                      "uc.lazy.test": [(A, 60, UC)]}, host=DNS)
    cfg = validate({
        "accounts": [{"user": "6903", "password": "6903", "server": "lazy.test",
                      "transport": "udp", "expires": 600}],
        "dns": {"servers": [dns.server]},
        "sip": {"local_ip": PHONE, "local_port": 20000 + reg.port % 20000}})
    log = ListLog()
    a = Agent(s, cfg, log.logger)
    a.start()
    return s, a, reg, dns, log


class running:
    """``with running() as (sched, agent, registrar, dns, log)``: torn down whatever happens;
    ``real_wait_ms``: see vtime.VirtualPoller (a call's media wakes the phone every 20 ms)."""

    def __init__(self, real_wait_ms=5):
        self.wait = real_wait_ms

    def __enter__(self):
        self.parts = make(self.wait)
        return self.parts

    def __exit__(self, *exc):
        _, a, reg, dns, _ = self.parts
        a.stop(False)
        dns.close()
        reg.stop()


def until(s, cond, ms=10000):
    s.run_until(cond, ms)
    assert cond()


def wait(s, ms):
    end = s.now() + ms
    s.run_until(lambda: s.now() >= end, ms + 1000)


def test_dns_is_unloaded_after_the_resolution_and_loaded_again_for_the_next():
    with running() as (s, a, _reg, dns, log):
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        assert len(dns.queries) >= 1
        wait(s, agentmod.DNS_IDLE_MS + 100)
        assert a.locator._locator is None
        if IS_MICROPYTHON:
            assert not loaded("sipua.dns.locator") and not loaded("sipua.dns.resolver")
        got = []
        a.locator.locate("lazy.test", lambda ts, err: got.append((ts, err)), transport="udp")
        until(s, lambda: got)
        ts, err = got[0]
        assert err is None and [t.ip for t in ts] == [UC], got
        assert a.locator._locator is not None  # loaded again, until idle once more
        wait(s, agentmod.DNS_IDLE_MS + 100)
        assert a.locator._locator is None
        assert log.events("callback_error") == []


def _invite(a, reg):
    """The registrar calls the phone, as a PBX routes a call to a registered Contact."""
    ip, port = a.stack.local_ip, a.stack.local_port
    return ("INVITE sip:6903@%s:%d SIP/2.0\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKlazy1\r\n"
            "From: <sip:6904@lazy.test>;tag=far1\r\nTo: <sip:6903@lazy.test>\r\n"
            "Call-ID: lazy-1@%s\r\nCSeq: 1 INVITE\r\nContact: <sip:6904@%s:%d>\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            % (ip, port, UC, reg.port, UC, UC, reg.port)).encode(), (ip, port)


def test_a_registered_udp_phone_keeps_no_register_steps_nor_stream_code():
    """One REGISTER's steps (making it, its 401, its 200) are register.py's, loaded for each
    step and forgotten; a UDP-only phone never loads the stream half (its framing
    included), and a new flow's opening (tpextra.py) goes with it. A refresh still runs
    the whole walk: 401, digest, 200."""
    with running() as (s, a, reg, _dns, _log):
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        granted = [e for e in reg.log if e[4] == 200]
        r.register_now()
        until(s, lambda: len([e for e in reg.log if e[4] == 200]) > len(granted))
        assert r.state == "registered" and r.granted == 600
        assert [e[3] for e in reg.log[-2:]] == [False, True]  # challenged, then answered
        if IS_MICROPYTHON:
            for name in ("sipua.sip.register", "sipua.sip.stream", "sipua.sip.tpextra",
                         "sipua.sip.digest", "sipua.sip.regextra"):
                assert not loaded(name), name


def test_an_incoming_invite_loads_the_call_code_and_rings():
    from sipua.sip.transport import sockaddr

    with running() as (s, a, reg, _dns, log):
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        assert a.calls is None
        data, (ip, port) = _invite(a, reg)
        reg.peer.sock.sendto(data, sockaddr(ip, port))
        until(s, lambda: any(m.status == 180 for _, m in reg.peer.got))
        assert a.status()["calls"][0]["state"] == "ringing"
        a.console_commands()["hangup"][0]([])
        until(s, lambda: any(m.status == 486 for _, m in reg.peer.got))
        wait(s, agentmod.CALLS_IDLE_MS + 100)
        assert a.calls is None
        assert log.events("callback_error") == []


def _options(a, reg, n):
    ip, port = a.stack.local_ip, a.stack.local_port
    return ("OPTIONS sip:6903@%s:%d SIP/2.0\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKping%d\r\n"
            "From: <sip:ping@lazy.test>;tag=ping\r\nTo: <sip:6903@lazy.test>\r\n"
            "Call-ID: ping-%d@%s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n" % (ip, port, UC, reg.port, n, n, UC)).encode(), (ip, port)


def test_the_server_side_is_unloaded_when_no_request_came_for_a_while():
    """A registrar's OPTIONS ping loads strans/uas; SERVER_IDLE_MS after the last request
    (and the last server transaction) they go again, and the next ping loads them anew."""
    from sipua.sip import strans
    from sipua.sip.transport import sockaddr

    with running() as (s, a, reg, _dns, log):
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        # an earlier test's requests and calls loaded these (one interpreter for the module)
        forget("sipua.sip.uas", "sipua.sip.strans", "sipua.sip.call", "sipua.sip.dialog",
               "sipua.sip.sdp", "sipua.sip.uri")

        def ping(n):
            data, (ip, port) = _options(a, reg, n)
            reg.peer.sock.sendto(data, sockaddr(ip, port))
            until(s, lambda: any(m.status == 200 and m.call_id.startswith("ping-%d@" % n)
                                 for _, m in reg.peer.got))

        ping(1)
        assert loaded("sipua.sip.uas") and loaded("sipua.sip.strans")
        wait(s, strans.SERVER_IDLE_MS // 2)
        ping(2)  # a request meanwhile: the idle time starts again
        wait(s, strans.SERVER_IDLE_MS // 2 + 100)
        assert loaded("sipua.sip.uas")  # only half the idle time since the second ping
        wait(s, strans.SERVER_IDLE_MS // 2 + 100)
        if IS_MICROPYTHON:
            # (only uas is checked: the test registrar parses and answers with the
            # firmware's msg/strans, which load strans and uri in this interpreter too)
            assert not loaded("sipua.sip.uas")
        ping(3)  # answered by the server side loaded again
        assert loaded("sipua.sip.uas")
        assert log.events("callback_error") == [] and log.events("receive_error") == []


def test_the_server_side_stays_while_a_server_transaction_lives():
    """An incoming INVITE's transaction outlives the idle time: nothing is unloaded under
    it (the ringing call holds it), and the call still ends cleanly; once the transaction
    has ended, the server side goes too."""
    from sipua.sip import strans
    from sipua.sip.transport import sockaddr

    with running() as (s, a, reg, _dns, log):
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        data, (ip, port) = _invite(a, reg)
        reg.peer.sock.sendto(data, sockaddr(ip, port))
        until(s, lambda: any(m.status == 180 for _, m in reg.peer.got))
        wait(s, strans.SERVER_IDLE_MS + 1000)  # ringing all along: its transaction lives
        assert a.stack.stx and loaded("sipua.sip.uas") and loaded("sipua.sip.strans")
        a.console_commands()["hangup"][0]([])
        until(s, lambda: any(m.status == 486 for _, m in reg.peer.got))
        until(s, lambda: not a.stack.stx and not a.stack._accepted, 40000)
        wait(s, agentmod.CALLS_IDLE_MS + 2 * strans.SERVER_IDLE_MS)
        assert a.calls is None
        if IS_MICROPYTHON:
            assert not loaded("sipua.sip.uas")
        assert log.events("callback_error") == [] and log.events("receive_error") == []


def test_the_server_side_goes_during_a_call():
    """A request during a call (the registrar's ping, answered without a transaction): the
    server side goes SERVER_IDLE_MS after it, the call going on; the call ends cleanly."""
    from sipua.sip import strans
    from sipua.sip.transport import sockaddr

    with running() as (s, a, reg, _dns, log):
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        assert a.console_commands()["call"][0](["6904"])["call"] == 1
        data, (ip, port) = _options(a, reg, 7)
        reg.peer.sock.sendto(data, sockaddr(ip, port))
        until(s, lambda: any(m.status == 200 and m.call_id.startswith("ping-7@")
                             for _, m in reg.peer.got))
        assert loaded("sipua.sip.uas")
        wait(s, strans.SERVER_IDLE_MS + 1000)
        assert a.calls is not None and a.calls.calls
        if IS_MICROPYTHON:
            assert not loaded("sipua.sip.uas")
        a.console_commands()["hangup"][0]([])
        until(s, lambda: not a.calls.calls, 40000)
        wait(s, agentmod.CALLS_IDLE_MS + 2 * strans.SERVER_IDLE_MS)
        assert a.calls is None
        if IS_MICROPYTHON:
            assert not loaded("sipua.sip.uas")
        assert log.events("callback_error") == [] and log.events("receive_error") == []


def test_call_code_is_loaded_with_a_call_and_unloaded_after_the_last_one():
    with running() as (s, a, _reg, _dns, log):
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        assert a.calls is None
        if IS_MICROPYTHON:
            assert not loaded("sipua.sip.call") and not loaded("sipua.sip.sdp")
        status = a.console_commands()["call"][0](["6904"])
        assert status["call"] == 1
        assert a.calls is not None and loaded("sipua.sip.call")
        wait(s, 1000)
        a.console_commands()["hangup"][0]([])
        until(s, lambda: not a.calls.calls, 40000)
        wait(s, agentmod.CALLS_IDLE_MS + 100)
        assert a.calls is None
        if IS_MICROPYTHON:
            assert not loaded("sipua.sip.call") and not loaded("sipua.sip.dialog")
        assert a.status()["calls"] == []
        status = a.console_commands()["call"][0](["6904"])
        assert status["call"] == 2  # ids go on across the unload
        assert log.events("callback_error") == []


def test_answer_and_hangup_without_a_call_are_refused_without_loading_calls():
    with running() as (_, a, _reg, _dns, log):
        from sipua.console import ConsoleError

        for cmd in ("answer", "hangup"):
            try:
                a.console_commands()[cmd][0]([])
                raise AssertionError(cmd + " did not refuse")
            except ConsoleError:
                pass
        assert a.calls is None
        assert log.events("callback_error") == []


# -- a call from the far end outlives the server side ---------------------------------------
def _far(a, reg, method, cseq, body=b"", tag=None, branch=None):
    """A request of the far end's call ``lazy-2`` as the registrar forwards it to the phone
    (a branch of its own per method and CSeq unless given: a CANCEL's and the ACK of a
    non-2xx are the INVITE's, ``"INVITE1"``); ``tag``: the phone's To tag."""
    ip, port = a.stack.local_ip, a.stack.local_port
    head = ("%s sip:6903@%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bKfar%s\r\n"
            "From: <sip:6904@lazy.test>;tag=far2\r\nTo: <sip:6903@lazy.test>%s\r\n"
            "Call-ID: lazy-2@%s\r\nCSeq: %d %s\r\nContact: <sip:6904@%s:%d>\r\n"
            "Max-Forwards: 70\r\n" % (method, ip, port, UC, reg.port,
                                      branch or "%s%d" % (method, cseq),
                                      ";tag=" + tag if tag else "", UC, cseq, method, UC,
                                      reg.port))
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body


def _send(a, reg, data):
    from sipua.sip.transport import sockaddr

    reg.peer.sock.sendto(data, sockaddr(a.stack.local_ip, a.stack.local_port))


def _answers(reg, cseq, status=None, method=None):
    """The phone's responses to the far end's request ``cseq`` (100 Trying left out)."""
    return [m for _, m in reg.peer.got if m.status and m.status != 100
            and m.call_id.startswith("lazy-2@") and m.cseq == cseq
            and (status is None or m.status == status)
            and (method is None or m.cseq_method == method)]


def _call_code_gone(s, a, log):
    """The call code goes CALLS_IDLE_MS after the last call; nothing raised meanwhile."""
    wait(s, agentmod.CALLS_IDLE_MS + 100)
    assert a.calls is None
    assert log.events("callback_error") == [] and log.events("receive_error") == []


def _reachable(root, cls):
    """How many objects of ``cls`` can be reached from ``root``: attributes, containers
    and (CPython only: MicroPython cannot look inside them) bound methods and closures.
    The scheduler's timers are reached through the agent, so a callback of a transaction
    counts too."""
    seen = set()
    todo = [root]
    n = 0
    while todo:
        x = todo.pop()
        if id(x) in seen or isinstance(x, (str, bytes, bytearray, int, float, type)):
            continue
        seen.add(id(x))
        if type(x) is cls:
            n += 1
        if isinstance(x, dict):
            todo.extend(x.values())
        elif isinstance(x, (list, tuple, set)):
            todo.extend(x)
        elif type(x).__name__ != "module":
            todo.extend((getattr(x, "__dict__", None) or {}).values())
            todo.extend(getattr(x, k, None) for k in getattr(type(x), "__slots__", ()))
            todo.append(getattr(x, "__self__", None))
            todo.extend(c.cell_contents for c in getattr(x, "__closure__", None) or ())
    return n


def _watch_unload(a):
    """The server side the phone loaded: spied on, so each unload records (virtual time,
    its ServerTxn objects the phone can still reach) before the module goes. Returns the
    module and the records (put ``compat.forget`` back when done)."""
    strans = sys.modules["sipua.sip.strans"]
    real = strans.forget
    unloads = []

    def spy(*names):
        if "sipua.sip.strans" in names:
            unloads.append((a.sched.now(), _reachable(a, strans.ServerTxn)))
        real(*names)

    strans.forget = spy
    return strans, unloads


def _answered_call_in(s, a, reg, offer):
    """The far end calls (its INVITE with ``offer``), the console answers: (the 200 OK's
    To tag, virtual time of the 200, the strans module, unload records)."""
    r = a.registrations[0]
    until(s, lambda: r.state == "registered")
    # an earlier test's requests and calls loaded these (one interpreter for the module)
    forget("sipua.sip.uas", "sipua.sip.strans", "sipua.sip.call", "sipua.sip.dialog",
           "sipua.sip.sdp", "sipua.sip.uri")
    _send(a, reg, _far(a, reg, "INVITE", 1, offer))
    until(s, lambda: _answers(reg, 1, 180))
    spied = _watch_unload(a)
    strans = spied[0]
    # the ringing call holds its INVITE's transaction, one of the module's
    assert [type(t) for t in a.stack.stx.values()] == [strans.ServerTxn]
    assert a.calls.calls[0].txn is next(iter(a.stack.stx.values()))
    a.console_commands()["answer"][0]([])
    until(s, lambda: _answers(reg, 1, 200))
    # answered: the transaction repeats the 200 and takes its ACK alone; the call keeps none
    assert a.calls.calls[0].txn is None and a.calls.calls[0].state == "active"
    return (_answers(reg, 1, 200)[0].to_tag, s.now()) + spied


def test_an_answered_call_lets_the_server_side_go_with_the_ack_then_takes_a_reinvite_and_bye():
    """A call from the far end, answered and ACKed, held by the far end (no audio either
    way): the ACK ends the INVITE's transaction and the server side goes at once, mid-call,
    with no object of it left. Until Timer L the INVITE's key in the stack keeps RFC 6026's
    Accepted state: a retransmission of the INVITE is absorbed (no new call, nothing sent)
    and a CANCEL of it gets 200 with no effect. The far end's re-INVITE (taking the call
    off hold) and its BYE are answered by the server side loaded anew, and audio flows
    after the re-INVITE."""
    from sipua.sip import sdp
    from test_rtp import Far

    with running(1) as (s, a, reg, _dns, log):
        far = Far(s, UC)
        strans = None
        try:
            held = sdp.build(UC, far.port, (0, 8), "sendonly", session_id=7).encode()
            tag, t200, strans, unloads = _answered_call_in(s, a, reg, held)
            assert sdp.parse(bytes(_answers(reg, 1, 200)[0].body)).direction == "recvonly"
            assert unloads == [] and a.stack._accepted  # waiting for the ACK
            _send(a, reg, _far(a, reg, "ACK", 1, tag=tag))
            until(s, lambda: unloads)
            # unloaded with the ACK, nothing of the module reachable
            assert len(unloads) == 1 and unloads[0][1] == 0, unloads
            assert unloads[0][0] - t200 < 1000, unloads
            assert not a.stack.stx and not a.stack._accepted and len(a.stack.absorbed) == 1
            if IS_MICROPYTHON:  # (not strans: see the test above)
                assert not loaded("sipua.sip.uas")
            # the INVITE again (a retransmission that crossed our 200): absorbed
            n = len(reg.peer.got)
            _send(a, reg, _far(a, reg, "INVITE", 1, held))
            wait(s, 1000)
            assert len(reg.peer.got) == n and len(a.calls.calls) == 1
            _send(a, reg, _far(a, reg, "CANCEL", 1, branch="INVITE1"))
            until(s, lambda: _answers(reg, 1, method="CANCEL"))
            assert [m.status for m in _answers(reg, 1, method="CANCEL")] == [200]
            assert [m.status for m in _answers(reg, 1, method="INVITE")] == [180, 200]
            assert a.status()["calls"][0]["state"] == "active"
            wait(s, strans.SERVER_IDLE_MS + 1000)  # Timer L, the CANCEL's Timer J
            assert not a.stack.absorbed and not a.stack.stx
            if IS_MICROPYTHON:  # loaded anew for those two, gone again (not the spied copy)
                assert not loaded("sipua.sip.uas")
            else:
                assert len(unloads) == 2 and unloads[1][1] == 0, unloads
            assert far.audio() == []  # held: the phone sends nothing
            # the far end takes the call off hold: a re-INVITE, answered by a new server side
            _send(a, reg, _far(a, reg, "INVITE", 2, sdp.build(UC, far.port, (0, 8),
                                                              session_id=7).encode(), tag))
            until(s, lambda: _answers(reg, 2))
            ok = _answers(reg, 2)
            assert [m.status for m in ok] == [200]
            assert sdp.parse(bytes(ok[0].body)).direction == "sendrecv"
            if IS_MICROPYTHON:  # really loaded again: a new copy, the first one gone
                assert sys.modules["sipua.sip.uas"].ServerTxn is not strans.ServerTxn
            _send(a, reg, _far(a, reg, "ACK", 2, tag=tag))
            until(s, lambda: len(far.audio()) >= 5)
            _send(a, reg, _far(a, reg, "BYE", 3, tag=tag))
            until(s, lambda: _answers(reg, 3))
            assert [m.status for m in _answers(reg, 3)] == [200]
            assert a.calls.calls == [] and log.events("remote_bye")
            # ACKed: sent once
            assert [m.status for m in _answers(reg, 1, method="INVITE")] == [180, 200]
            _call_code_gone(s, a, log)
        finally:
            if strans is not None:
                strans.forget = forget
            far.close()


def test_an_unacked_200_is_repeated_until_timer_l_then_the_call_ends_with_a_bye():
    """The far end's ACK is lost: the 200 is repeated over UDP (T1 doubling to T2) until
    Timer L ends the transaction (RFC 6026); the far end never took the call, so the phone
    ends it with a BYE (RFC 3261 §13.3.1.4) rather than keep a line open to nobody. The
    server side goes with that transaction, no object of it left, and a late ACK gets
    nothing."""
    with running() as (s, a, reg, _dns, log):
        strans = None
        try:
            tag, _, strans, unloads = _answered_call_in(s, a, reg, b"")
            wait(s, strans.SERVER_IDLE_MS + 500)  # Timer L: 64·T1 after the 200
            sent = len(_answers(reg, 1, 200))
            assert sent >= 9, sent  # 0.5, 1, 2, then every 4 s for 32 s
            assert not a.stack.stx and not a.stack._accepted
            assert [e.get("detail") for e in log.events("no_ack")] == ["200", None]
            # the phone's BYE for the call (digest-challenged by the registrar, then 200)
            until(s, lambda: not a.calls.calls)
            byes = [m for _, m in reg.peer.got if m.method == "BYE"
                    and m.call_id.startswith("lazy-2@")]
            assert byes, [m.method for _, m in reg.peer.got]
            assert [e["reason"] for e in log.events("ended")] == ["hangup"]
            wait(s, strans.SERVER_IDLE_MS)
            assert len(_answers(reg, 1, 200)) == sent  # no more after Timer L
            assert len(unloads) == 1 and unloads[0][1] == 0, unloads
            if IS_MICROPYTHON:
                assert not loaded("sipua.sip.uas")
            # the late ACK (its transaction and its call gone): taken in silence
            n = len(reg.peer.got)
            _send(a, reg, _far(a, reg, "ACK", 1, tag=tag))
            wait(s, 500)
            assert len(reg.peer.got) == n and a.calls.calls == []
            _call_code_gone(s, a, log)
        finally:
            if strans is not None:
                strans.forget = forget


def test_shedding_for_heap_ends_a_refused_invite_by_its_key_and_keeps_an_unacked_200():
    """Out of heap (``SipStack.shed``): a refused INVITE's transaction (486, its ACK not yet
    in) goes, its key left in the stack, so the far end's retransmitted INVITE is dropped
    instead of ringing the phone again as a new call; a 200 still waiting for its ACK is not
    shed (the call needs the ACK), and the ACK then ends it as usual."""
    with running() as (s, a, reg, _dns, log):
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        _send(a, reg, _far(a, reg, "INVITE", 1))
        until(s, lambda: _answers(reg, 1, 180))
        a.console_commands()["hangup"][0]([])
        until(s, lambda: _answers(reg, 1, 486))
        assert a.stack.shed() and not a.stack.stx and len(a.stack.absorbed) == 1
        assert log.events("heap_shed")[-1]["transactions"] == "1"
        n = len(reg.peer.got)
        _send(a, reg, _far(a, reg, "INVITE", 1))  # the same INVITE again
        wait(s, 1000)
        assert len(reg.peer.got) == n  # nothing answered: no second 180
        assert len(log.events("incoming")) == 1 and not a.calls.calls
        # a call answered, its 200 not yet ACKed: nothing to shed
        _send(a, reg, _far(a, reg, "INVITE", 2))
        until(s, lambda: _answers(reg, 2, 180))
        a.console_commands()["answer"][0]([])
        until(s, lambda: _answers(reg, 2, 200))
        assert not a.stack.shed() and a.stack._accepted
        _send(a, reg, _far(a, reg, "ACK", 2, tag=_answers(reg, 2, 200)[0].to_tag))
        until(s, lambda: not a.stack._accepted)
        assert a.status()["calls"][0]["state"] == "active"
        assert log.events("callback_error") == [] and log.events("receive_error") == []


def test_a_call_cancelled_while_ringing_ends_and_leaves_no_transaction_behind():
    """The far end CANCELs while the phone rings: 200 to the CANCEL, 487 to the INVITE
    (its ACK taken), the call ended; the ringing call held the INVITE's transaction, the
    ended one holds nothing, and the server side goes once the transactions are over."""
    with running() as (s, a, reg, _dns, log):
        r = a.registrations[0]
        until(s, lambda: r.state == "registered")
        forget("sipua.sip.uas", "sipua.sip.strans", "sipua.sip.call", "sipua.sip.dialog",
               "sipua.sip.sdp", "sipua.sip.uri")
        strans = None
        try:
            _send(a, reg, _far(a, reg, "INVITE", 1))
            until(s, lambda: _answers(reg, 1, 180))
            strans, unloads = _watch_unload(a)
            assert a.calls.calls[0].txn is next(iter(a.stack.stx.values()))
            _send(a, reg, _far(a, reg, "CANCEL", 1, branch="INVITE1"))
            until(s, lambda: _answers(reg, 1, 487))
            assert [m.status for m in _answers(reg, 1, method="CANCEL")] == [200]
            assert [m.status for m in _answers(reg, 1, method="INVITE")] == [180, 487]
            assert a.calls.calls == [] and log.events("remote_cancel")
            assert log.events("ended")[-1]["reason"] == "cancelled"
            tag = _answers(reg, 1, 487)[0].to_tag
            _send(a, reg, _far(a, reg, "ACK", 1, tag=tag, branch="INVITE1"))
            wait(s, 2 * strans.SERVER_IDLE_MS + 1000)  # Timer J (CANCEL), Timer I, idle
            assert not a.stack.stx and not a.stack._accepted
            assert len(unloads) == 1 and unloads[0][1] == 0, unloads
            assert len(_answers(reg, 1, 487)) == 1  # ACKed: not repeated
            if IS_MICROPYTHON:
                assert not loaded("sipua.sip.uas")
            wait(s, agentmod.CALLS_IDLE_MS)
            assert a.calls is None
            assert log.events("callback_error") == [] and log.events("receive_error") == []
        finally:
            if strans is not None:
                strans.forget = forget
