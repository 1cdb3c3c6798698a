"""RFC 3261 §17 transactions over real loopback sockets, in virtual time (127.0.2.0/24)."""

from fwtest import new_sched
from sipfw_helpers import Peer, reply
from sipua.sip.ctrans import RESPONSE, TIMEOUT, TRANSPORT_ERROR, UNAVAILABLE, budget_ms
from sipua.sip.hdr import lookup
from sipua.sip.stack import SipStack

PHONE = "127.0.2.1"
SERVER = "127.0.2.2"
H_RETRY_AFTER = lookup(b"retry-after")


class Run:
    def __init__(self, retry_count=0, kind="udp", t1=500, t2=4000):
        self.s, self.clock = new_sched(real_poll=True, real_wait_ms=3)
        port = 0
        for _ in range(20):
            from sipua.compat import urandom_u32

            port = 20000 + urandom_u32() % 30000
            self.stack = SipStack(self.s, PHONE, port, t1=t1, t2=t2, retry_count=retry_count)
            try:
                self.stack.start()
                break
            except OSError:
                self.stack.stop()
        self.peer = Peer(self.s, SERVER, kind)
        self.results = []

    def send(self, method="OPTIONS", target=None, **kw):
        st = self.stack
        req = st.make_request(method, "sip:uc1@example.com", "sip:6903@example.com",
                              contact=st.contact("6903"))
        self.t0 = self.s.now()

        def done(outcome, m):
            self.results.append((self.s.now() - self.t0, outcome, m))

        return st.request(req, target or self.peer.target(), done, **kw)

    def run(self, ms=40000):
        self.s.run_until(lambda: False, ms)

    def sent_at(self, method=None):
        return [t - self.t0 for t in self.peer.times(method)]

    def close(self):
        self.stack.stop()
        self.peer.close()


def test_budget_formula():
    assert budget_ms(3, 500, 4000, True) == 3500
    assert budget_ms(3, 500, 4000, False) == 3500
    assert budget_ms(6, 500, 4000, True) == 31500
    assert budget_ms(6, 500, 4000, False) == 15500
    assert budget_ms(0, 500, 4000, True) == 0
    assert budget_ms(1, 200, 4000, False) == 200


def test_non_invite_udp_retransmits_capped_at_t2_until_timer_f():
    r = Run()
    r.send("OPTIONS")
    r.run()
    assert r.sent_at() == [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    assert [(t, o) for t, o, _ in r.results] == [(32000, TIMEOUT)]
    assert not r.stack.ctx
    r.close()


def test_invite_udp_retransmits_doubling_until_timer_b():
    r = Run()
    r.send("INVITE")
    r.run()
    assert r.sent_at() == [0, 500, 1500, 3500, 7500, 15500, 31500]
    assert [(t, o) for t, o, _ in r.results] == [(32000, TIMEOUT)]
    r.close()


def test_retry_budget_stops_a_silent_server_early():
    for method in ("REGISTER", "INVITE"):
        r = Run(retry_count=3)
        r.send(method)
        r.run()
        assert r.sent_at() == [0, 500, 1500], method
        assert [(t, o) for t, o, _ in r.results] == [(3500, TIMEOUT)]
        r.close()


def test_the_retry_budget_and_timer_f_share_one_timer():
    """A transaction with a retry budget holds two timers, not three: the retransmission and
    the budget, whose place Timer F takes when a response ends the budget (its time from
    the first send); a final answer leaves one (Timer K)."""

    def timers(r):
        return len([tm for _, _, tm in r.s._heap if tm.active])

    r = Run(retry_count=3)
    r.peer.answer = lambda m: None
    before = timers(r) + 1  # the first flow arms the transport's idle sweep
    t = r.send("REGISTER")
    assert timers(r) - before == 2 and t._f_due == r.t0 + 32000
    r.s.run_until(lambda: r.s.now() - r.t0 >= 1000, 2000)
    r.peer.answer = reply(100, "Trying")
    r.s.run_until(lambda: t.state == 1, 2000)  # the 1500 ms retransmission got its 100
    assert timers(r) - before == 2 and t._f_due is None
    r.peer.answer = lambda m: None
    r.run()
    assert [(tm, o) for tm, o, _ in r.results] == [(32000, TIMEOUT)]
    r.close()


def test_tcp_sends_once_and_times_out_at_timer_f_or_budget():
    r = Run(kind="tcp")
    r.send("REGISTER")
    r.run()
    assert r.sent_at() == [0]
    assert [(t, o) for t, o, _ in r.results] == [(32000, TIMEOUT)]
    r.close()
    r = Run(kind="tcp", retry_count=3)
    r.send("INVITE")
    r.run()
    assert r.sent_at() == [0]
    assert [(t, o) for t, o, _ in r.results] == [(3500, TIMEOUT)]
    r.close()


def test_a_provisional_response_ends_the_budget_and_moves_to_t2():
    r = Run(retry_count=3)
    first = []

    def answer(m):
        if not first:
            first.append(m)
            return reply(100, "Trying")(m)
        return None

    r.peer.answer = answer
    r.send("REGISTER")
    r.run()
    assert r.sent_at() == [0, 500, 4500, 8500, 12500, 16500, 20500, 24500, 28500]
    assert [(t, o) for t, o, _ in r.results] == [(32000, TIMEOUT)]
    r.close()


def test_final_response_503_and_retry_after_are_reported():
    r = Run()
    r.peer.answer = reply(503, "Service Unavailable", headers=[("Retry-After", "120")])
    r.send("REGISTER")
    r.run(2000)
    (_t, outcome, m), = r.results
    assert outcome == UNAVAILABLE and m.status == 503 and m.int(H_RETRY_AFTER) == 120
    assert r.sent_at() == [0]
    r.close()
    r = Run()
    r.peer.answer = reply(401, "Unauthorized")
    r.send("REGISTER")
    r.run(2000)
    assert [(o, m.status) for _, o, m in r.results] == [(RESPONSE, 401)]
    r.close()


def test_invite_non_2xx_is_acked_in_the_transaction_and_retransmissions_absorbed():
    r = Run()
    answers = []

    def answer(m):
        if m.method == "INVITE":
            answers.append(1)
            return reply(486, "Busy Here")(m) * 2  # the final arrives twice
        return None

    r.peer.answer = answer
    t = r.send("INVITE")
    r.run()
    assert [(o, m.status) for _, o, m in r.results] == [(RESPONSE, 486)]
    acks = [m for _, m in r.peer.got if m.method == "ACK"]
    assert len(acks) == 2 and acks[0].to_tag == "peer1"
    assert acks[0].via.branch == t.key.split("|")[0]  # the INVITE's branch
    assert acks[0].cseq_method == "ACK"
    assert len(answers) == 1
    assert not r.stack.ctx  # Timer D ended it
    r.close()


def test_icmp_port_unreachable_is_a_transport_error_at_once():
    r = Run(retry_count=0)
    r.send("REGISTER", ("udp", SERVER, r.peer.port + 1))
    r.run(2000)
    assert [(o, m) for _, o, m in r.results] == [(TRANSPORT_ERROR, None)]
    assert r.results[0][0] < 500  # before the first retransmission
    r.close()


def test_tcp_connection_refused_is_a_transport_error():
    r = Run(kind="tcp")
    r.send("INVITE", ("tcp", SERVER, r.peer.port + 1))
    r.run(2000)
    assert [(o, m) for _, o, m in r.results] == [(TRANSPORT_ERROR, None)]
    r.close()


def test_tcp_connection_is_reused_per_target():
    r = Run(kind="tcp")
    r.peer.answer = reply(200, "OK")
    r.send("REGISTER")
    r.run(1000)
    r.send("REGISTER")
    r.run(1000)
    assert [o for _, o, _ in r.results] == [RESPONSE, RESPONSE]
    assert len(r.peer.conns) == 1 and len(r.stack.tp.flows) == 1
    r.close()
