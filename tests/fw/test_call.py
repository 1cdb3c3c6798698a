"""Calls against fake proxies: real loopback sockets (127.0.4.0/24), the real SipStack,
virtual time. INVITE failover (silent, refused, 503), the 1xx rule, BYE failover along the
route set's domain, and an incoming call answered from the console path."""

from fwtest import new_sched, start_stack
from sipfw_helpers import Peer
from sipua.account import Account
from sipua.dns import Target
from sipua.log import Logger, parse_line
from sipua.sip import sdp
from sipua.sip.call import ACTIVE, Calls
from sipua.sip.reg import Registration
from sipua.sip.servers import ServerSet
from sipua.sip.strans import response

PHONE = "127.0.4.1"
UC2 = "127.0.4.27"
UC1 = "127.0.4.26"
DOMAIN = "airties.test"
FAREND = "<sip:6904@127.0.4.50:5090>"
BUDGET = 3500
HEDGE = 750  # 1.5·T1: the INVITE goes on to the next server (call.py _hedge)


class Proxy:
    """Answers INVITE with 180 then 200 (Record-Route: the domain), BYE with 200.

    ``mode``: "ok", "silent", or a status code for every INVITE/BYE (503...).
    """

    def __init__(self, sched, ip, mode="ok"):
        self.sched = sched
        self.ip = ip
        self.mode = mode
        self.got = []
        self.port = None
        self.start()

    def start(self):
        self.peer = Peer(self.sched, self.ip, "udp", self.port)
        self.port = self.peer.port
        self.peer.answer = self._answer

    def stop(self):
        self.peer.close()

    def target(self):
        return Target("udp", self.ip.replace("127.0.4.", "uc") + "." + DOMAIN, self.ip,
                      self.port, source="srv")

    def methods(self):
        return [m.method for _, m in self.peer.got]

    def _answer(self, m):
        if m.method == "ACK" or self.mode == "silent":
            return None
        if self.mode != "ok":
            return [response(m, self.mode, "Service Unavailable", "p1",
                             [("Retry-After", "30")])]
        if m.method == "INVITE":
            body = sdp.build("127.0.4.50", 30000, (8,)).encode()
            hdrs = [("Contact", FAREND), ("Record-Route", "<sip:%s;lr>" % DOMAIN)]
            return [response(m, 180, "Ringing", "p1", hdrs),
                    response(m, 200, "OK", "p1", hdrs, body, "application/sdp")]
        return [response(m, 200, "OK", "p1")]


class Phone:
    def __init__(self, uc2="ok", uc1="ok"):
        self.s, _ = new_sched(real_poll=True, real_wait_ms=3)
        self.lines = []
        self.log = Logger(write=self.lines.append, clock=self.s.now, level=10)
        self.stack = start_stack(self.s, PHONE, self.log, retry_count=3)
        self.uc2 = Proxy(self.s, UC2, uc2)
        self.uc1 = Proxy(self.s, UC1, uc1)
        self.account = Account({"user": "6903", "password": "6903", "server": DOMAIN})
        servers = ServerSet(self.s)
        servers.update([self.uc2.target(), self.uc1.target()], 3600)
        self.reg = Registration(self.s, self.stack, None, self.account, self.log, servers)
        self.reg.server = servers.targets[0]  # registered on uc2: server affinity
        self.calls = Calls(self.s, self.stack, None, self.log)
        self.calls.add_account(self.account, self.reg)

    def run_until(self, pred, ms):
        return self.s.run_until(pred, ms)

    def events(self, event, area="call"):
        out = [parse_line(x) for x in self.lines]
        return [x for x in out if x and x["area"] == area and x["event"] == event]

    def close(self):
        for c in list(self.calls.calls):  # their media sessions close their sockets
            self.calls._end(c, "test over")
        self.stack.stop()
        self.uc1.stop()
        self.uc2.stop()


def test_call_through_the_registrar_then_bye_to_the_same_server():
    p = Phone()
    try:
        c = p.calls.call("6904")
        assert p.run_until(lambda: c.state == ACTIVE, 2000)
        assert c.codec == 8 and UC2 in p.events("answered")[0]["server"]
        assert p.run_until(lambda: len(p.uc2.methods()) == 2, 500)
        assert p.uc2.methods() == ["INVITE", "ACK"] and p.uc1.methods() == []
        ack = p.uc2.peer.got[1][1]  # the 2xx ACK: to the remote target, along the route set
        assert ack.ruri == b"sip:6904@127.0.4.50:5090" and ack.to_tag == "p1"
        p.calls.hangup()
        assert p.run_until(lambda: p.events("ended"), 2000)
        bye = p.uc2.peer.got[-1][1]
        assert bye.method == "BYE" and bye.ruri == b"sip:6904@127.0.4.50:5090"
        assert bye.header("Route") == "<sip:%s;lr>" % DOMAIN
        assert p.events("ended")[0]["reason"] == "hangup"
        assert p.events("invite_failover") == p.events("bye_failover") == []
    finally:
        p.close()


def test_invite_failover_on_a_silent_server_within_the_retry_budget():
    p = Phone(uc2="silent")
    try:
        c = p.calls.call("6904")
        assert p.run_until(lambda: c.state == ACTIVE, 10000)
        fo, = p.events("invite_failover")
        assert fo["reason"] == "timeout" and UC2 in fo["server"] and UC1 in fo["next"]
        first_uc1 = p.uc1.peer.got[0][0]
        # hedged: not even a 100 Trying after two sends and 1.5·T1 — not the whole budget
        assert HEDGE <= first_uc1 < HEDGE + 100, first_uc1
        assert p.run_until(lambda: p.s.now() > BUDGET, BUDGET + 500)
        assert p.uc2.methods() == ["INVITE"] * 3  # its transaction ran on, then gave up
        assert UC1 in p.events("answered")[0]["server"]
        # The silent server is held: the next call starts at uc1 at once.
        p.calls.hangup()
        assert p.run_until(lambda: p.events("ended"), 2000)
        c2 = p.calls.call("6904")
        assert p.run_until(lambda: c2.state == ACTIVE, 1000)
        assert len(p.events("invite_failover")) == 1
    finally:
        p.close()


def test_invite_failover_on_refusal_and_503():
    for fault in ("refused", 503):
        p = Phone(uc2="ok" if fault == "refused" else fault)
        if fault == "refused":
            p.uc2.stop()
        try:
            c = p.calls.call("6904")
            assert p.run_until(lambda c=c: c.state == ACTIVE, 2000), fault
            fo, = p.events("invite_failover")
            assert fo["reason"] == ("transport_error" if fault == "refused" else "503")
            assert UC1 in fo["next"]
            if fault == 503:  # Retry-After: 30 → held for 30 s
                assert p.reg.servers.held(p.uc2.target()) == "503"
        finally:
            p.close()


def test_all_servers_fail_the_call_ends_with_the_reason():
    p = Phone(uc2="silent", uc1="silent")
    try:
        c = p.calls.call("6904")
        assert p.run_until(lambda: p.events("ended"), 10000)
        assert [e["next"] for e in p.events("invite_failover")][-1] == "none"
        assert c.state == "ended" and p.events("ended")[0]["reason"] == "timeout"
    finally:
        p.close()


def test_bye_failover_when_the_call_server_is_gone():
    p = Phone()
    try:
        c = p.calls.call("6904")
        assert p.run_until(lambda: c.state == ACTIVE, 2000)
        p.uc2.stop()
        p.calls.hangup()
        assert p.run_until(lambda: p.events("ended"), 5000)
        fo, = p.events("bye_failover")
        assert UC2 in fo["server"] and UC1 in fo["next"] and fo["reason"] == "transport_error"
        bye = p.uc1.peer.got[-1][1]
        assert bye.method == "BYE" and bye.header("Route") == "<sip:%s;lr>" % DOMAIN
        assert p.events("ended")[0]["reason"] == "hangup"
    finally:
        p.close()


def test_a_server_that_sent_a_1xx_owns_the_call():
    p = Phone()
    p.uc2.peer.answer = lambda m: ([response(m, 180, "Ringing", "p1")]
                                   if m.method == "INVITE" else None)
    try:
        c = p.calls.call("6904")
        p.s.run_until(lambda: False, 40000)
        assert c.state == "ringing" and p.events("invite_failover") == []
        assert p.uc1.methods() == []
        p.calls.hangup()  # CANCEL goes to the server that rang
        assert p.run_until(lambda: "CANCEL" in p.uc2.methods(), 2000)
    finally:
        p.close()


def _loses_two_invites(proxy):
    """The proxy's first two datagrams are lost: its INVITE is hedged to the next server."""
    seen = []

    def drop():
        seen.append(1)
        return len(seen) <= 2

    proxy.peer.drop = drop


def _hedged_to_uc1(p, then):
    """A call answered through uc1, then ``then`` seen at uc2 (its late answer dealt with)."""
    c = p.calls.call("6904")
    assert p.run_until(lambda: c.state == ACTIVE, 3000)
    assert UC1 in p.events("answered")[0]["server"]
    assert p.run_until(lambda: then in p.uc2.methods(), 3000)
    return c


def test_a_server_answering_a_hedged_invite_late_is_cancelled():
    """uc2 loses the first two INVITEs: at 1.5·T1 the call goes to uc1; uc2's late answer
    to the third (180, then 200 would follow) gets a CANCEL, so the callee rings once."""
    p = Phone()
    _loses_two_invites(p.uc2)
    p.uc2.peer.answer = lambda m: None if m.method in ("ACK", "CANCEL") else (
        [response(m, 100, "Trying"), response(m, 180, "Ringing", "p1")]
        if m.method == "INVITE" else None)
    try:
        c = _hedged_to_uc1(p, "CANCEL")
        p.run_until(lambda: False, 100)
        # the 3rd send (the two before lost), and one CANCEL for its 100 and 180
        assert p.uc2.methods() == ["INVITE", "CANCEL"], p.uc2.methods()
        inv, can = p.uc2.peer.got[0][1], p.uc2.peer.got[1][1]
        assert can.via.branch == inv.via.branch and can.cseq == inv.cseq  # RFC 3261 §9.1
        assert c.state == ACTIVE and len(p.events("invite_failover")) == 1
    finally:
        p.close()


def test_a_hedged_invite_answered_late_with_a_2xx_is_acked_and_ended():
    """uc2 loses the first two INVITEs and answers the third with a bare 200 (no 1xx, so
    nothing to CANCEL): the call goes on through uc1, and uc2's late 2xx is ACKed and then
    ended with a BYE, so the callee it reached is not left holding a call nobody is on."""
    p = Phone()
    _loses_two_invites(p.uc2)
    body = sdp.build("127.0.4.50", 30000, (8,)).encode()
    hdrs = [("Contact", FAREND), ("Record-Route", "<sip:%s;lr>" % DOMAIN)]
    p.uc2.peer.answer = lambda m: (
        [response(m, 200, "OK", "late", hdrs, body, "application/sdp")]
        if m.method == "INVITE" else [response(m, 200, "OK", "late")]
        if m.method == "BYE" else None)
    try:
        c = _hedged_to_uc1(p, "BYE")
        assert p.uc2.methods() == ["INVITE", "ACK", "BYE"], p.uc2.methods()
        inv, ack, bye = (m for _, m in p.uc2.peer.got)
        assert ack.cseq == inv.cseq and ack.to_tag == bye.to_tag == "late"
        assert bye.ruri == b"sip:6904@127.0.4.50:5090"  # the dialog it made, along its route
        assert bye.header("Route") == "<sip:%s;lr>" % DOMAIN
        assert UC2 in p.events("late_answer")[0]["server"]
        assert c.state == ACTIVE and len(p.calls.calls) == 1  # the real call, through uc1
    finally:
        p.close()


def test_a_single_server_is_not_left_before_its_budget():
    """No other server to go to: the INVITE keeps its whole retry budget."""
    p = Phone(uc2="silent")
    p.reg.servers.update([p.uc2.target()], 3600)
    try:
        c = p.calls.call("6904")
        assert p.run_until(lambda: p.events("ended"), 10000)
        assert p.uc2.methods() == ["INVITE"] * 3 and p.uc1.methods() == []
        assert p.events("ended")[0]["ms"] >= BUDGET and c.state == "ended"
    finally:
        p.close()
