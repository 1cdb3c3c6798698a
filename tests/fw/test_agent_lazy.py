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


def make():
    s, _ = new_sched(real_poll=True, real_wait_ms=5)
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
    """``with running() as (sched, agent, registrar, dns, log)``: torn down whatever happens."""

    def __enter__(self):
        self.parts = make()
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


def test_the_server_side_stays_while_a_server_transaction_or_the_call_code_lives():
    """An incoming INVITE's transaction outlives the idle time: nothing is unloaded under
    it (nor while the call code, which may hold such a transaction, is loaded), and the
    call still ends cleanly; once the call code is gone, the server side goes too."""
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


def test_the_server_side_stays_while_call_code_is_loaded():
    """A request during a call (the far end's, the registrar's ping): the server side stays
    as long as the call code does (a call may hold one of its transactions), then goes."""
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
        wait(s, strans.SERVER_IDLE_MS + 1000)
        assert a.calls is not None and loaded("sipua.sip.uas")
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

