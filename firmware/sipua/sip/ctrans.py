"""Client transactions (RFC 3261 §17.1, with RFC 6026's Accepted state for INVITE).

INVITE: Timer A retransmits over UDP (T1, doubling), Timer B gives up at 64·T1, a non-2xx
final is ACKed inside the transaction and Timer D (32 s UDP, 0 on a stream) absorbs its
retransmissions. Non-INVITE: Timer E (T1 doubling, capped at T2; T2 once a 1xx came),
Timer F at 64·T1, Timer K (T4 UDP, 0 on a stream).

**Retry budget** (``sip.retry_count`` = N, like Yealink's ``retry_counts``): a transaction
that has sent its request N times without any response gives up at the moment the
(N+1)-th transmission would be due, and reports TIMEOUT — 3.5 s for N = 3 and T1 = 500 ms
instead of 32 s — so the caller can fail over to the next target (RFC 3263 §4.3). The same
deadline applies over TCP/TLS, where nothing is retransmitted. Any response, even a 1xx,
ends the budget (the server is alive); Timer B/F still bound the wait. N = 0 turns it off.

The caller hears exactly one outcome: ``on_result(outcome, response)`` with
RESPONSE (a final response other than 503), UNAVAILABLE (503; see Retry-After),
TIMEOUT (no final response: budget, Timer B or Timer F) or TRANSPORT_ERROR (connection
refused or reset, ICMP unreachable, TLS failure); ``response`` is None for the last two.
"""

from ..compat import const

RESPONSE = const(1)
UNAVAILABLE = const(2)
TIMEOUT = const(3)
TRANSPORT_ERROR = const(4)

_CALLING = const(0)  # INVITE "Calling" / non-INVITE "Trying"
_PROCEEDING = const(1)
_COMPLETED = const(2)
_ACCEPTED = const(3)
_TERMINATED = const(4)


def budget_ms(n, t1, t2, invite):
    """Time from the first transmission until the (n+1)-th would be due; 0 = no budget."""
    if n <= 0:
        return 0
    total, iv = 0, t1
    for _ in range(n):
        total += iv
        iv = iv * 2 if invite or iv * 2 < t2 else t2
    return total


class ClientTxn:
    def __init__(self, stack, req, flow, branch, via, on_result, on_provisional=None,
                 on_2xx=None):
        self.stack = stack
        self.req = req
        self.method = req.method
        self.invite = req.method == "INVITE"
        self.flow = flow
        self.via = via if self.invite else None  # an INVITE's ACK and CANCEL are built on it
        self.key = branch + "|" + req.method  # the stack's table key; its branch first
        self.data = req.encode(via, stack.user_agent)
        self.on_result = on_result
        self.on_provisional = on_provisional
        self.on_2xx = on_2xx
        self.state = _CALLING
        self.interval = stack.t1
        self.ack = None
        self._retx = None
        self._timer = None  # the retry budget or B / F, then D / K / M
        self._f_due = None  # while _timer is the budget: when Timer B / F falls due

    def start(self):
        st = self.stack
        sched = st.sched
        self._send(self.data)
        if self.state == _TERMINATED:
            return
        if not self.flow.reliable:
            self._retx = sched.call_later(self.interval, self._retransmit)
        # One timer: the retry budget when it comes first (Timer B/F's time kept until a
        # response ends the budget), else Timer B/F.
        f = 64 * st.t1
        b = budget_ms(st.retry_count, st.t1, st.t2, self.invite)
        if b and b < f:
            self._f_due = sched.now() + f
            self._timer = sched.call_later(b, self._timeout, "retry_budget")
        else:
            self._timer = sched.call_later(f, self._timeout, "timer_b" if self.invite
                                           else "timer_f")

    def _send(self, data):
        try:
            self.flow.send(data)
        except OSError as e:
            # Reported on the next turn: the caller is still inside request().
            self.stack.sched.call_soon(self.on_transport_error, e)

    def _retransmit(self):
        self._retx = None
        if self.state == _CALLING or (self.state == _PROCEEDING and not self.invite):
            self._send(self.data)
            if self.invite:
                self.interval *= 2
            elif self.state == _PROCEEDING:
                self.interval = self.stack.t2
            else:
                self.interval = min(self.interval * 2, self.stack.t2)
            self._retx = self.stack.sched.call_later(self.interval, self._retransmit)

    def on_response(self, m):
        code = m.status
        st = self.state
        if st == _TERMINATED:
            return
        if st == _COMPLETED:
            if self.ack is not None and code >= 300:
                self._send(self.ack)  # our ACK was lost: the final came again
            return
        if st == _ACCEPTED:
            if 200 <= code < 300 and self.on_2xx is not None:
                self.on_2xx(m)  # a 2xx retransmission or another fork: the dialog ACKs it
            return
        f_due = self._f_due
        self._f_due = None  # any response ends the retry budget (the server is alive)
        if code < 200:
            if st == _CALLING:
                self.state = _PROCEEDING
                if self.invite:  # RFC 3261 §17.1.1.2: Proceeding stops A and B
                    self._cancel(self._retx)
                    self._cancel(self._timer)
                    self._retx = self._timer = None
                    self.data = None  # never sent again: its bytes go
                elif f_due is not None:  # the budget's timer gives way to Timer F
                    self._cancel(self._timer)
                    sched = self.stack.sched
                    self._timer = sched.call_later(f_due - sched.now(), self._timeout,
                                                   "timer_f")
            if self.on_provisional is not None:
                self.on_provisional(m)
            return
        self._cancel(self._retx)
        self._cancel(self._timer)
        self._retx = None
        self.data = None  # a final answer: the request is never sent again
        t1 = self.stack.t1
        if self.invite and code < 300:
            self.state = _ACCEPTED
            self._timer = self.stack.sched.call_later(64 * t1, self._terminate)
        else:
            self.state = _COMPLETED
            if self.invite:
                from .invite import ack  # loaded with the call that sent the INVITE

                self.ack = ack(self.req, self.via, m.first(3))  # 3 = H_TO
                self._send(self.ack)
                wait = 0 if self.flow.reliable else 32000
            else:
                wait = 0 if self.flow.reliable else self.stack.t4
            self._timer = self.stack.sched.call_later(wait, self._terminate)
        self._report(UNAVAILABLE if code == 503 else RESPONSE, m)

    def _timeout(self, detail):
        if self.state in (_CALLING, _PROCEEDING):
            self.stack.log.info("sip", "timeout", method=self.method, detail=detail)
            self._terminate()
            self._report(TIMEOUT, None)

    def on_transport_error(self, err):
        if self.state in (_CALLING, _PROCEEDING):
            self.stack.log.info("sip", "transport_error", method=self.method, detail=err)
            self._terminate()
            self._report(TRANSPORT_ERROR, None)

    def abandon(self):
        """The caller lost interest (it failed over, or hung up): no callback any more."""
        self.on_result = self.on_provisional = self.on_2xx = None
        self._terminate()

    def _report(self, outcome, m):
        cb = self.on_result
        self.on_result = None
        if cb is not None:
            cb(outcome, m)

    def _terminate(self):
        self.state = _TERMINATED
        self._cancel(self._retx)
        self._cancel(self._timer)
        self._retx = self._timer = None
        self.stack.ctx_done(self)

    @staticmethod
    def _cancel(t):
        if t is not None:
            t.cancel()
