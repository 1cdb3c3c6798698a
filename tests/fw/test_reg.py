"""The registration agent against fake registrars: real loopback sockets (127.0.4.0/24),
the real SipStack, virtual time. What issue 5 asks a phone to show: the seed's
401 → digest → 423 → 200, refresh at 80–90 %, failover within the retry budget, 503
Retry-After, 403 without failover, RFC 5626 back-off and re-resolve, failback per mode,
concurrent redundancy."""

from fwtest import new_sched, start_stack
from sipfw_helpers import Peer
from sipua.account import Account
from sipua.cmds import registration
from sipua.dns import Target, Targets
from sipua.log import Logger, parse_line
from sipua.sip.digest import digest, h, parse_challenge
from sipua.sip.hdr import lookup
from sipua.sip.reg import FAILED, REGISTERED, Registration
from sipua.sip.regextra import FLOW_LOST_JITTER_MS
from sipua.sip.servers import ServerSet
from sipua.sip.strans import response

PHONE = "127.0.4.1"
UC2 = "127.0.4.27"  # preferred (SRV priority 1), as in the seed
UC1 = "127.0.4.26"
REALM = "airties.test"
MIN_EXPIRES = 300
BUDGET = 3500  # sip.retry_count 3, T1 500 ms: three sends, then give up
HEDGED_BUDGET = 15500  # twice that while hedged (sip/hedge.py): six sends
H_CONTACT = lookup(b"contact")  # header ids by their name
H_AUTHORIZATION = lookup(b"authorization")
H_EXPIRES = lookup(b"expires")


class Registrar:
    """A registrar on a Peer: 401 (digest checked) → 423 below Min-Expires → 200.

    ``mode``: "ok", "silent", or a status code answered to every REGISTER (403, 503...).
    ``stop()`` closes its socket (the kernel then answers ICMP port unreachable) and
    ``start()`` brings it back on the same port.
    """

    def __init__(self, sched, ip, kind="udp", mode="ok", extra=None):
        self.sched = sched
        self.ip = ip
        self.kind = kind
        self.mode = mode
        self.extra = extra or []  # headers added to the mode's status answer
        self.port = None
        self.peer = None
        self.log = []  # (ms, method, expires, authorized, answered code)
        self.bindings = {}  # contact -> (expires, at ms)
        self.nonce = 0
        self.other_devices = []  # Contact values of the user's other phones
        self.start()

    def start(self):
        self.peer = Peer(self.sched, self.ip, self.kind, self.port)
        self.port = self.peer.port
        self.peer.answer = self._answer
        self.peer.pong = lambda: self.mode != "silent"

    def stop(self):
        self.peer.close()

    def target(self, name):
        return Target(self.kind, name, self.ip, self.port, source="srv")

    def _answer(self, m):
        if m.method == "ACK" or m.status:  # a response (the phone's to a ping) is not answered
            return None
        code = self._decide(m)
        self.log.append((self.sched.now(), m.method, m.int(H_EXPIRES),
                         m.first(H_AUTHORIZATION) is not None, code))
        if code is None:
            return None
        if code == 401:
            self.nonce += 1
            chal = 'Digest realm="%s", nonce="%s", qop="auth", algorithm=MD5' % (
                REALM, self._nonce())
            return [response(m, 401, "Unauthorized", "r1", [("WWW-Authenticate", chal)])]
        if code == 423:
            return [response(m, 423, "Interval Too Brief", "r1",
                             [("Min-Expires", str(MIN_EXPIRES))])]
        if code == 200 and m.method == "REGISTER":
            contact = m.first(H_CONTACT).decode()
            exp = m.int(H_EXPIRES)
            if exp == 0:
                self.bindings.pop(contact, None)
                return [response(m, 200, "OK", "r1")]
            self.bindings[contact] = (exp, self.sched.now())
            # A registrar lists every binding of the address of record, the phone's among them.
            listed = self.other_devices + ["%s;expires=%d" % (contact, exp)]
            return [response(m, 200, "OK", "r1", [("Contact", ", ".join(listed))])]
        reason = {200: "OK", 403: "Forbidden", 503: "Service Unavailable"}.get(code, "X")
        return [response(m, code, reason, "r1", self.extra if code != 200 else None)]

    def _decide(self, m):
        if self.mode == "silent":
            return None
        if m.method == "OPTIONS":
            return 200
        if self.mode != "ok":
            return self.mode
        if not self._authorized(m):
            return 401
        exp = m.int(H_EXPIRES)
        if exp and exp < MIN_EXPIRES:
            return 423
        return 200

    def _authorized(self, m):
        v = m.first(H_AUTHORIZATION)
        if v is None:
            return False
        c = parse_challenge(v)
        if c is None or c.get("nonce") != self._nonce():
            return False
        ha1 = h("MD5", "%s:%s:%s" % ("6903", REALM, "6903"))
        want = digest("MD5", ha1, c["nonce"], m.method, c["uri"], c.get("qop"), c.get("nc"),
                      c.get("cnonce"))
        return c.get("response") == want

    def _nonce(self):
        return "%s-%d" % (self.ip, self.nonce)

    def registers(self, since=0):
        return [x for x in self.log if x[1] == "REGISTER" and x[0] >= since]

    def codes(self):
        return [x[4] for x in self.log if x[1] == "REGISTER"]


class FakeLocator:
    """The locator's interface; answers with the registrars' targets in SRV order."""

    def __init__(self, sched, targets_fn, ttl=3600):
        self.sched = sched
        self.targets_fn = targets_fn
        self.ttl = ttl
        self.calls = []

    def locate(self, host, on_done, transport=None, port=None, secure=None):
        self.calls.append(self.sched.now())
        ts = Targets(self.targets_fn())
        ts.ttl = self.ttl
        self.sched.call_soon(on_done, ts, None)


class Rig:
    """A phone (SipStack + Registration) and two registrars, uc2 preferred."""

    def __init__(self, kind="udp", uc2="ok", uc1="ok", failback=None, redundancy=None,
                 expires=180, uc2_extra=None):
        self.s, _ = new_sched(real_poll=True, real_wait_ms=3)
        self.lines = []
        self.log = Logger(write=self.lines.append, clock=self.s.now, level=10)
        self.stack = start_stack(self.s, PHONE, self.log, retry_count=3)
        self.uc2 = Registrar(self.s, UC2, kind, uc2, uc2_extra)
        self.uc1 = Registrar(self.s, UC1, kind, uc1)
        self.locator = FakeLocator(self.s, lambda: [self.uc2.target("uc2.airties.test"),
                                                    self.uc1.target("uc1.airties.test")])
        cfg = {"user": "6903", "password": "6903", "server": REALM, "expires": expires}
        if failback:
            cfg["failback"] = failback
        if redundancy:
            cfg["redundancy"] = redundancy
        self.account = Account(cfg)
        self.servers = ServerSet(self.s)
        self.reg = Registration(self.s, self.stack, self.locator, self.account, self.log,
                                self.servers)
        self.legs = [self.reg]
        self.stack.on_flow_lost = lambda f: [r.flow_lost(f) for r in self.legs]  # as Agent

    def run_until(self, pred, ms):
        return self.s.run_until(pred, ms)

    def run_for(self, ms):
        self.s.run_until(lambda: False, ms)

    def registered_on(self, ip, leg=None):
        r = leg or self.reg
        return r.state == REGISTERED and r.server is not None and r.server.ip == ip

    def events(self, event=None, area="reg"):
        out = [parse_line(x) for x in self.lines]
        return [x for x in out if x and x["area"] == area and (event is None
                                                                or x["event"] == event)]

    def close(self):
        for r in self.legs:
            r.stop(unregister=False)
        self.stack.stop()
        for r in (self.uc1, self.uc2):
            r.stop()


def test_seed_401_digest_423_min_expires_200_then_refresh_at_80_to_90_percent():
    rig = Rig(kind="tcp")
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.reg.state == REGISTERED, 5000)
        assert rig.registered_on(UC2)
        # The seed: REGISTER → 401 → REGISTER with digest, Expires 180 → 423 → Expires 300 → 200.
        assert [(x[2], x[3], x[4]) for x in rig.uc2.registers()] == [
            (180, False, 401), (180, True, 423), (300, True, 200)]
        assert rig.uc1.log == []
        assert rig.reg.expires == MIN_EXPIRES and rig.reg.granted == MIN_EXPIRES
        assert len(rig.uc2.bindings) == 1
        ok_at = rig.uc2.registers()[-1][0]
        assert [e["min_expires"] for e in rig.events("interval_too_brief")] == ["300"]
        # Every message on the wire is one sip tx/rx line (what `sipfw logs --ladder` draws).
        trace = [(e["event"], e.get("method") or e.get("status"), e.get("dst") or e.get("src"))
                 for e in rig.events(area="sip") if e["event"] in ("tx", "rx")]
        peer = "%s:%d" % (UC2, rig.uc2.port)
        assert trace == [("tx", "REGISTER", peer), ("rx", "401", peer), ("tx", "REGISTER", peer),
                         ("rx", "423", peer), ("tx", "REGISTER", peer), ("rx", "200", peer)]
        # Refresh: 80–90 % of the granted 300 s, same server, same Call-ID.
        n = len(rig.uc2.registers())
        assert rig.run_until(lambda: len(rig.uc2.registers()) > n, 300000)
        refresh_at = rig.uc2.registers()[n][0] - ok_at
        assert 240000 <= refresh_at <= 270000, refresh_at
        assert rig.run_until(lambda: rig.reg.state == REGISTERED and
                             rig.s.now() - rig.reg.registered_at < 1000, 5000)
        assert rig.uc2.registers()[-1][2] == 300  # the adopted Min-Expires is kept
        calls = {m.call_id for _, m in rig.uc2.peer.got if m.method == "REGISTER"}
        assert len(calls) == 1
        assert rig.registered_on(UC2) and rig.uc1.log == []
    finally:
        rig.close()


def test_silent_primary_fails_over_within_the_retry_budget():
    rig = Rig(uc2="silent")
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.reg.state == REGISTERED, 40000)
        assert rig.registered_on(UC1)
        first_uc1 = rig.uc1.registers()[0][0]
        started = rig.uc2.registers()[0][0]
        # hedged (sip/hedge.py): the next server gets the REGISTER after 1.5·T1, not the budget
        assert 750 <= first_uc1 - started < 850, first_uc1 - started
        assert rig.s.now() - started <= 1000
        assert rig.run_until(lambda: rig.events("failover"), 20000)
        assert len(rig.uc2.registers()) == 6  # sent six times over UDP, then given up
        fo, = rig.events("failover")
        assert fo["reason"] == "timeout" and UC2 in fo["server"] and UC1 in fo["next"]
        assert HEDGED_BUDGET <= fo["ms"] - started < HEDGED_BUDGET + 100
        assert rig.registered_on(UC1)
        st = registration(rig.reg)
        assert st["state"] == "registered" and not st["preferred"]
    finally:
        rig.close()


def test_refused_primary_fails_over_at_once():
    rig = Rig()
    rig.uc2.stop()  # ICMP port unreachable for every datagram to it
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.reg.state == REGISTERED, 5000)
        assert rig.registered_on(UC1)
        assert rig.uc1.registers()[0][0] < 100
        fo, = rig.events("failover")
        assert fo["reason"] == "transport_error" and UC1 in fo["next"]
    finally:
        rig.close()


def test_503_retry_after_holds_the_server_for_that_long():
    rig = Rig(uc2=503, uc2_extra=[("Retry-After", "120")])
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.reg.state == REGISTERED, 5000)
        assert rig.registered_on(UC1)
        fo, = rig.events("failover")
        assert fo["reason"] == "503" and UC1 in fo["next"]
        assert rig.servers.held(rig.uc2.target("x")) == "503"
        rig.uc2.mode = "ok"  # healthy again, but it asked for 120 s
        n2 = len(rig.uc2.registers())
        rig.run_for(60000)
        rig.reg.register_now()  # a new request inside the hold goes to uc1
        n1 = len(rig.uc1.registers())
        assert rig.run_until(lambda: len(rig.uc1.registers()) > n1, 5000)
        assert len(rig.uc2.registers()) == n2
        # Past the hold, the next refresh (new-requests failback) goes to uc2 again.
        assert rig.run_until(lambda: rig.registered_on(UC2), 300000)
        assert rig.uc2.registers(since=120000)
    finally:
        rig.close()


def test_403_backs_off_without_failover():
    rig = Rig(uc2=403)
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.reg.state == FAILED, 5000)
        assert rig.uc1.log == []  # another server would say the same: not asked
        assert rig.events("failover") == []
        failed, = rig.events("register_failed")
        assert failed["reason"].startswith("403")
        t403 = rig.uc2.registers()[0][0]
        all_failed, = rig.events("all_failed")
        wait = int(all_failed["retry_in_ms"])
        assert 30000 <= wait <= 60000, wait  # RFC 5626: 30 s · 2^1, 50–100 %
        assert rig.run_until(lambda: len(rig.uc2.registers()) > 1, 70000)
        assert rig.uc2.registers()[1][0] - t403 >= 30000
        assert rig.uc1.log == []
    finally:
        rig.close()


def test_all_servers_fail_then_rfc5626_backoff_then_resolve_again():
    rig = Rig(uc2="silent", uc1="silent")
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.reg.state == FAILED, 10000)
        # hedged: uc1 was asked 1.5·T1 into uc2's (longer) budget, and failed within its own
        assert rig.s.now() >= 750 + BUDGET
        assert len(rig.locator.calls) == 1
        fos = rig.events("failover")
        assert [e["next"] for e in fos][-1] == "none"
        assert [e["next"] for e in rig.events("all_failed")] == ["resolve"]
        waits = [int(e["retry_in_ms"]) for e in rig.events("all_failed")]
        assert len(waits) == 1 and 30000 <= waits[0] <= 60000, waits
        failed_at = rig.s.now()
        rig.uc1.mode = "ok"
        assert rig.run_until(lambda: rig.reg.state == REGISTERED, 70000)
        # Backed off the drawn time, then resolved again before the next round.
        assert len(rig.locator.calls) == 2
        assert rig.locator.calls[1] - failed_at >= waits[0] - 1
        assert rig.registered_on(UC1)
        # Back-off grows with consecutive failures (second round: 60–120 s).
        rig.reg.stop(unregister=False)
        rig.reg.failures = 1
        rig.uc1.mode = "silent"
        rig.reg.start()
        assert rig.run_until(lambda: rig.reg.state == FAILED, 10000)
        w2 = int(rig.events("all_failed")[-1]["retry_in_ms"])
        assert 60000 <= w2 <= 120000, w2
    finally:
        rig.close()


def test_failback_new_requests_next_refresh_goes_to_the_preferred_server():
    rig = Rig(failback={"mode": "new-requests"})
    rig.uc2.stop()
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC1), 5000)
        rig.uc2.start()  # back, same port
        ok_at = rig.s.now()
        assert rig.run_until(lambda: rig.registered_on(UC2), 300000)
        moved = rig.uc2.registers()[0][0] - ok_at
        assert 240000 <= moved <= 270000, moved  # at the refresh, not before
        assert rig.run_until(lambda: not rig.uc1.bindings, 5000)  # Expires: 0 to uc1
        assert rig.uc1.registers()[-1][2] == 0
        fb, = rig.events("failback")
        assert fb["reason"] == "new-requests" and UC1 in fb["server"] and UC2 in fb["next"]
        assert rig.events("failback_done")
    finally:
        rig.close()


def test_failback_new_requests_console_reg_goes_to_the_preferred_server():
    rig = Rig(failback={"mode": "new-requests"})
    rig.uc2.stop()
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC1), 5000)
        rig.uc2.start()
        rig.run_for(6000)  # past the (short) hold of a server that refused
        rig.reg.register_now()
        assert rig.run_until(lambda: rig.registered_on(UC2), 5000)
        assert rig.run_until(lambda: not rig.uc1.bindings, 5000)
    finally:
        rig.close()


def test_failback_duration_probes_with_options_then_moves_and_unregisters_the_old():
    rig = Rig(uc2="silent", failback={"mode": "duration", "timeout": 20})
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC1), 10000)
        failed_over = rig.s.now()
        # back only after its budget ran out (inside it, an answer would win the hedge)
        assert rig.run_until(lambda: rig.events("failover"), 20000)
        rig.uc2.mode = "ok"
        assert rig.run_until(lambda: rig.registered_on(UC2), 30000)
        options = [x[0] for x in rig.uc2.log if x[1] == "OPTIONS"]
        assert len(options) == 1
        # After the failback timeout, not after the 60 s hold of the silent server.
        assert 20000 <= options[0] - failed_over <= 21000, options[0] - failed_over
        first_reg_after = rig.uc2.registers(since=options[0])[0][0]
        assert first_reg_after - options[0] < 100  # REGISTER right after the probe answered
        assert rig.run_until(lambda: not rig.uc1.bindings, 5000)
        assert rig.uc1.registers()[-1][2] == 0
        probe, = rig.events("failback_probe")
        assert probe["reason"] == "duration 20s" and UC2 in probe["server"]
        fb, = rig.events("failback")  # one line: why, from where, to where
        assert fb["reason"] == "probe answered 200" and UC1 in fb["server"] and UC2 in fb["next"]
    finally:
        rig.close()


def test_failback_duration_probe_unanswered_stays_on_the_backup():
    rig = Rig(uc2="silent", failback={"mode": "duration", "timeout": 20})
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC1), 10000)
        failed_over = rig.s.now()
        rig.run_for(30000)
        options = [x[0] for x in rig.uc2.log if x[1] == "OPTIONS"]
        assert options and 20000 <= options[0] - failed_over <= 21000
        assert len(rig.uc2.registers()) == 6  # only the first (silent, hedged) attempt
        assert rig.registered_on(UC1) and len(rig.uc1.bindings) == 1
        deferred, = rig.events("failback_deferred")
        assert deferred["reason"] == "timeout" and UC1 in deferred["next"]
    finally:
        rig.close()


def test_concurrent_redundancy_registers_on_two_servers():
    rig = Rig(redundancy="concurrent")
    backup = Registration(rig.s, rig.stack, rig.locator, rig.account, rig.log, rig.servers,
                          leg=1, avoid=lambda: rig.reg.server.ip if rig.reg.server else UC2)
    rig.legs.append(backup)
    try:
        rig.reg.start()
        rig.s.call_later(200, backup.start)
        assert rig.run_until(lambda: rig.reg.state == REGISTERED and
                             backup.state == REGISTERED, 5000)
        assert rig.registered_on(UC2) and rig.registered_on(UC1, backup)
        assert len(rig.uc2.bindings) == 1 and len(rig.uc1.bindings) == 1
        # Each leg refreshes on its own server; nothing is unregistered.
        rig.run_for(300000)
        assert rig.registered_on(UC2) and rig.registered_on(UC1, backup)
        assert all(x[2] != 0 for x in rig.uc1.registers() + rig.uc2.registers())
    finally:
        rig.close()


def test_a_tcp_registration_keeps_its_connection_open_while_idle():
    """The registrar reaches a TCP phone only over the connection it registered on."""
    rig = Rig(kind="tcp")
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.reg.state == REGISTERED, 5000)
        flow = rig.stack.tp.flows[("tcp", UC2, rig.uc2.port)]
        rig.run_for(200000)  # far past the transport's 120 s idle close, before the refresh
        assert rig.stack.tp.flows.get(("tcp", UC2, rig.uc2.port)) is flow
        assert len(rig.uc2.peer.conns) == 1
        rig.reg.stop(unregister=False)
        assert not flow.pinned  # a stopped registration no longer holds it open
    finally:
        rig.close()


def test_tcp_connection_closed_by_the_registrar_reregisters_at_once():
    """uc2 stops while the phone is registered over TCP: the RST/EOF is the news."""
    rig = Rig(kind="tcp")
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC2), 5000)
        rig.run_for(10000)
        rig.uc2.stop()  # closes the listening socket and the phone's connection
        lost_at = rig.s.now()
        assert rig.run_until(lambda: rig.registered_on(UC1), 2000)
        # not at the refresh, ~4 minutes later: within the flow-loss jitter (spreads a herd)
        assert rig.s.now() - lost_at < FLOW_LOST_JITTER_MS + 100
        lost, = rig.events("flow_lost")
        assert UC2 in lost["server"] and lost["next"] == "register"
        fo, = rig.events("failover")
        assert fo["reason"] == "transport_error" and UC1 in fo["next"]
        # A connection the phone itself closes (stop) is not news.
        rig.reg.stop(unregister=False)
        rig.stack.tp.close()
        rig.run_for(1000)
        assert len(rig.events("flow_lost")) == 1
    finally:
        rig.close()


def test_a_200_listing_the_users_many_devices_in_one_line_registers():
    """Seen in the lab: a user with many bindings gets a Contact line over 1 KB in the 200."""
    rig = Rig(kind="tcp")
    try:
        rig.uc2.other_devices = ["<sip:6903@127.0.9.%d:5060;transport=tcp>;expires=3600" % i
                                 for i in range(40)]
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC2), 5000)
        assert rig.reg.granted == MIN_EXPIRES  # ours found among the 41, not another's 3600
    finally:
        rig.close()
