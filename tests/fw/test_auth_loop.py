"""Auth loops (issue 13): a registrar that answers every authenticated REGISTER with another
401 — a wrong password, a fresh nonce every time, stale nonces forever — gets at most two
tries per nonce (``stale=true`` honoured once), then ``state: "auth_failed"``, one ERROR line
and a long back-off: never a tight loop. Real loopback sockets, the real SipStack and
Registration, virtual time."""

from fwtest import new_sched, start_stack
from sipua.account import Account
from sipua.cmds import registration
from sipua.log import Logger, parse_line
from sipua.sip.hdr import lookup
from sipua.sip.reg import REGISTERED, Registration
from sipua.sip.servers import ServerSet
from test_reg import PHONE, REALM, UC1, UC2, FakeLocator, Registrar

AUTH_FAILED = "auth_failed"
H_AUTHORIZATION = lookup(b"authorization")
MIN = 60000


class StaleRegistrar(Registrar):
    """Answers the first ``stale`` authenticated REGISTERs with 401 ``stale=true`` and a
    new nonce, whether the digest was right or not."""

    def __init__(self, sched, ip, stale):
        self.stale_left = stale
        self.stale = False
        Registrar.__init__(self, sched, ip)

    def _decide(self, m):
        code = Registrar._decide(self, m)
        self.stale = False
        if m.first(H_AUTHORIZATION) is not None and self.stale_left > 0:
            self.stale_left -= 1
            self.stale = True
            return 401
        return code

    def _answer(self, m):
        out = Registrar._answer(self, m)
        if self.stale and out:
            out = [out[0].replace(b"algorithm=MD5", b"algorithm=MD5, stale=true")]
        return out


class Rig:
    def __init__(self, password="6903", stale=0):
        self.s, _ = new_sched(real_poll=True, real_wait_ms=3)
        self.lines = []
        self.log = Logger(write=self.lines.append, clock=self.s.now, level=20)
        self.stack = start_stack(self.s, PHONE, self.log, retry_count=3)
        self.uc2 = StaleRegistrar(self.s, UC2, stale)
        self.uc1 = Registrar(self.s, UC1)
        self.locator = FakeLocator(self.s, lambda: [self.uc2.target("uc2.airties.test"),
                                                    self.uc1.target("uc1.airties.test")])
        self.reg = Registration(self.s, self.stack, self.locator, Account(
            {"user": "6903", "password": password, "server": REALM, "expires": 600}),
            self.log, ServerSet(self.s))

    def events(self, event):
        out = [parse_line(x) for x in self.lines]
        return [x for x in out if x and x["event"] == event]

    def close(self):
        self.reg.stop(unregister=False)
        self.stack.stop()
        self.uc1.stop()
        self.uc2.stop()


def test_wrong_password_is_auth_failed_after_two_registers_then_a_long_backoff():
    rig = Rig(password="wrong")
    try:
        rig.reg.start()
        assert rig.s.run_until(lambda: rig.reg.state == AUTH_FAILED, 2000)
        # REGISTER → 401 → REGISTER with our answer → 401 (a fresh nonce: this fake registrar
        # makes one per challenge, the case that looped for ever) → stop.
        assert [(x[3], x[4]) for x in rig.uc2.registers()] == [(False, 401), (True, 401)]
        assert rig.uc1.log == []  # another server would say the same
        st = registration(rig.reg)
        assert st["state"] == "auth_failed" and st["server"] is None
        assert st["last_error"] == "401 Unauthorized"
        line, = rig.events("auth_failed")
        assert line["level"] == "ERROR" and UC2 in line["server"]
        wait = int(line["retry_in_ms"])
        assert 4 * MIN <= wait <= 8 * MIN, wait
        assert rig.events("register_failed") == [] and rig.events("all_failed") == []
        # 40 minutes: REGISTERs come in pairs, a back-off apart that grows (4–8, 8–16, 15–30 min).
        rig.s.run_until(lambda: False, 40 * MIN)
        times = [x[0] for x in rig.uc2.registers()]
        pairs = [times[i:i + 2] for i in range(0, len(times), 2)]
        assert 2 <= len(pairs) <= 4, times
        for p in pairs:
            assert len(p) == 2 and p[1] - p[0] < 1000, times
        gaps = [pairs[i + 1][0] - pairs[i][1] for i in range(len(pairs) - 1)]
        assert gaps[0] >= 4 * MIN - 1000 and all(g >= 4 * MIN - 1000 for g in gaps), gaps
        waits = [int(e["retry_in_ms"]) for e in rig.events("auth_failed")]
        assert len(waits) == len(pairs) and 8 * MIN <= waits[1] <= 16 * MIN, waits
        assert rig.uc1.log == []
        assert rig.reg.state == AUTH_FAILED
    finally:
        rig.close()


def test_stale_nonce_is_answered_once_more_then_registers():
    rig = Rig(stale=1)
    try:
        rig.reg.start()
        assert rig.s.run_until(lambda: rig.reg.state == REGISTERED, 2000)
        assert [(x[3], x[4]) for x in rig.uc2.registers()] == [
            (False, 401), (True, 401), (True, 200)]
        assert rig.events("auth_failed") == []
    finally:
        rig.close()


def test_stale_for_ever_is_honoured_once_then_auth_failed():
    rig = Rig(stale=1000)
    try:
        rig.reg.start()
        assert rig.s.run_until(lambda: rig.reg.state == AUTH_FAILED, 2000)
        # two answers, each to its own nonce: the challenge's and the stale one's
        assert [(x[3], x[4]) for x in rig.uc2.registers()] == [
            (False, 401), (True, 401), (True, 401)]
        nonces = [m.first(H_AUTHORIZATION) for _, m in rig.uc2.peer.got]
        assert nonces[0] is None and nonces[1] != nonces[2]
        rig.s.run_until(lambda: False, 3 * MIN)
        assert len(rig.uc2.registers()) == 3  # and then quiet: the back-off is minutes
    finally:
        rig.close()


def test_console_reg_after_auth_failed_tries_again_at_once():
    rig = Rig(password="wrong")
    try:
        rig.reg.start()
        assert rig.s.run_until(lambda: rig.reg.state == AUTH_FAILED, 2000)
        rig.reg.account.password = "6903"  # what a config push with the right one brings
        rig.reg.auth.password = "6903"
        rig.reg.register_now()
        assert rig.s.run_until(lambda: rig.reg.state == REGISTERED, 2000)
        assert len(rig.uc2.registers()) == 4
    finally:
        rig.close()
