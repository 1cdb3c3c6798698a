"""A hedged REGISTER: faster than the retry budget, without false failovers.

A fresh REGISTER (no credentials yet) to a server that has not answered it 1.5·T1 after it
went out — the first retransmission has had half an interval of its own — goes to the next
server too (the one a failover would pick, not one that is held): the registration walks
there at once (401, digest, 423, 200) while the first server's transaction goes on, with
twice the retry budget (six sends instead of three: the hedge made waiting cheap, and the
longer wait is what keeps a lossy server from being left for good).

Policy: the first server (the walk's preferred one) wins if it answers within its budget,
else the first to register.

- It answers (any response: it is alive): the walk starts again there, and once registered
  the binding made on the backup meanwhile is removed (REGISTER Expires: 0, the move every
  failover makes in ``successive`` redundancy).
- Its budget runs out: the failover is final and logged (``reg failover ... hedged=1``);
  the server is held, and a binding it held before (a refresh) is removed only now — an
  un-REGISTER racing a REGISTER it may still answer could remove the new binding.

Why 1.5·T1 and not T1: on a path that loses 10 % of the packets, one REGISTER in ten needs
its retransmission; hedging at T1 would send each of those to the backup too, hedging at
1.5·T1 only the one in a hundred whose retransmission is lost as well. A silent server is
still left after 0.75 s (plus the backup's round trips) instead of the 3.5 s retry budget.

A digest REGISTER unanswered at 1.5·T1 answers a challenge its server sent a moment ago: it
is alive and the silence is loss, so it gets the longer budget, without a hedge.

Loaded only when a REGISTER is unanswered for 1.5·T1, unloaded when that is decided.
"""

from ..compat import forget
from .ctrans import RESPONSE, budget_ms
from .reg import _REASONS
from .servers import describe, hold_for, target_key


def start(reg, first, t):
    """``t``, the walk's REGISTER to ``first``, is still unanswered 1.5·T1 after it went out."""
    st = reg.stack
    req = t.req
    fresh = req.get("Authorization") is None  # no digest: not a registrar's challenge
    nxt = reg._first_choice(reg._tried) if fresh and reg._race is None else None
    if nxt is not None and reg.servers.held(nxt):
        nxt = None
    if (nxt is not None or not fresh) and t._f_due is not None:
        # twice the budget, from the first send (retry_count 0: no budget, Timer F decides)
        t._timer.cancel()
        sched = reg.sched
        b = budget_ms(2 * st.retry_count, st.t1, st.t2, t.invite) - st.t1 * 3 // 2
        if b < 63 * st.t1:
            t._timer = sched.call_later(b, t._timeout, "retry_budget")
        else:  # past Timer F: F decides
            t._timer = sched.call_later(t._f_due - sched.now(), t._timeout, "timer_f")
            t._f_due = None
    forget("sipua.sip.hedge")  # nothing of it is kept while the first server may answer
    if nxt is not None:
        # ``t`` is no longer the walk's: its outcome comes to done() (``reg._raced``), and
        # it lets go of its request and the walk's callback — a response is all it still
        # waits for (the walk answers a challenge with a new REGISTER); the walk goes on at
        # the backup, with no un-REGISTER of the old server while that may still answer.
        reg._race = (t, first, nxt, reg.server)
        t.on_result = reg._raced
        t.req = None
        reg._txn = None
        reg.server = None
        reg.log.info("reg", "hedge", account=reg.account.label, server=describe(first),
                     next=describe(nxt))
        reg._attempt(nxt)


def done(reg, h, outcome, resp):
    """The hedged REGISTER's transaction ended: the first server answered, or not at all."""
    forget("sipua.sip.hedge")
    if reg._stopped:
        return
    _, first, nxt, old = h
    acc = reg.account
    log = reg.log
    if outcome == RESPONSE:  # alive, and preferred: it wins
        log.info("reg", "failback", account=acc.label, server=describe(nxt),
                 reason="hedge", next=describe(first))
        if reg._txn is not None:  # the walk on the backup, still going
            reg._txn.abandon()
            reg._txn = None
        reg._tried = []
        reg._attempt(first)
        return
    why = _REASONS.get(outcome, "error")
    reg.servers.hold(first, why, hold_for(why))
    cur = reg.server
    log.warn("reg", "failover", account=acc.label, server=describe(first), reason=why,
             next=describe(cur) if cur else "none", hedged=1)
    if (old is not None and target_key(old) != target_key(nxt)
            and acc.redundancy == "successive"):
        from .regextra import unregister

        unregister(reg, old)
