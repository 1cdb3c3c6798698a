"""Hedged REGISTER (sip/hedge.py): a silent server is left well inside the retry budget,
and a lossy but healthy one is never left. The registration agent against two fake
registrars (uc2 preferred), real loopback sockets, virtual time (test_reg's rig)."""

from sipua.cmds import registration
from test_reg import HEDGED_BUDGET, UC1, UC2, Rig

T1 = 500


class Lossy:
    """Drops a fraction of the datagrams a registrar receives, like the lab's iptables
    statistic rule on the path to it; a fixed LCG so both interpreters see the same run."""

    def __init__(self, loss, seed=12345):
        self.loss = loss
        self.x = seed
        self.dropped = 0

    def __call__(self):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        lost = (self.x >> 8) % 1000 < self.loss * 1000
        self.dropped += lost
        return lost


def tx_registers(rig, since=0, out=None):
    """Every REGISTER the phone put on the wire (retransmissions too), per server ip."""
    out = {} if out is None else out
    for e in rig.events("tx", area="sip"):
        if e.get("method") == "REGISTER" and e["ms"] >= since:
            ip = e["dst"].split(":")[0]
            out[ip] = out.get(ip, 0) + 1
    return out


def settled(rig):
    """No REGISTER on its way: the walk and any hedged transaction have ended."""
    return rig.reg._txn is None and not [
        t for t in rig.stack.ctx.values() if t.method == "REGISTER" and t.state < 2]


def drop_first(n):
    left = [n]

    def drop():
        left[0] -= 1
        return left[0] >= 0

    return drop


def _silent_primary(kind):
    rig = Rig(kind=kind, uc2="silent")
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC1), 2000)
        started = rig.uc2.registers()[0][0]
        took = rig.s.now() - started
        assert took <= 1000, took
        # hedged once the retransmission had T1/2 unanswered, not before
        assert rig.uc1.registers()[0][0] - started >= 1.5 * T1
        h, = rig.events("hedge")
        assert UC2 in h["server"] and UC1 in h["next"]
        # the silent server keeps its budget; then the failover is final and logged
        assert rig.events("failover") == []
        assert rig.run_until(lambda: rig.events("failover"), 20000)
        fo, = rig.events("failover")
        assert fo["reason"] == "timeout" and fo["hedged"] == "1"
        # twice the retry budget: waiting is cheap once registered on the backup
        assert HEDGED_BUDGET <= fo["ms"] - started < HEDGED_BUDGET + 100
        assert rig.registered_on(UC1) and len(rig.uc1.bindings) == 1
        rig.run_for(10000)
        assert rig.registered_on(UC1) and len(rig.events("register_failed")) == 0
    finally:
        rig.close()


def test_silent_primary_registered_on_the_backup_within_1000_ms_udp():
    _silent_primary("udp")


def test_silent_primary_registered_on_the_backup_within_1000_ms_tcp():
    _silent_primary("tcp")


def test_a_hedged_register_keeps_no_request_and_a_stop_abandons_it():
    """Once the walk moved to the backup, the silent server's REGISTER waits for a response
    only: it holds neither its request nor the walk's callback. Stopping the registration
    abandons it: nothing more goes to the silent server, no late outcome arrives."""
    rig = Rig(uc2="silent")
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC1), 2000)
        t = rig.reg._race[0]
        assert t.method == "REGISTER" and t.req is None and t.state == 0
        assert t.on_result == rig.reg._raced
        rig.reg.stop(False)
        assert rig.reg._race is None and t.on_result is None and t.state == 4
        sent = len(rig.uc2.registers())
        rig.run_for(20000)
        assert len(rig.uc2.registers()) == sent and rig.events("failover") == []
    finally:
        rig.close()


def test_primary_answering_its_retransmission_is_not_hedged():
    """Loss of one REGISTER is what retransmissions are for: the backup is not asked."""
    rig = Rig()
    rig.uc2.peer.drop = drop_first(1)  # the first REGISTER is lost on the way
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC2), 3000)
        assert rig.uc2.registers()[0][0] == T1  # the retransmission got through
        rig.run_for(10000)
        assert rig.events("hedge") == [] and rig.uc1.log == []
        assert rig.registered_on(UC2) and rig.events("failover") == []
    finally:
        rig.close()


def test_primary_answering_late_within_its_budget_wins_and_the_backup_binding_is_removed():
    rig = Rig()
    rig.uc2.peer.drop = drop_first(2)  # answers the third send, at 1.5 s
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC1), 1000)  # the backup was first
        assert rig.run_until(lambda: rig.registered_on(UC2), 3000)  # then the preferred
        assert rig.run_until(lambda: not rig.uc1.bindings, 3000)
        assert rig.uc1.registers()[-1][2] == 0  # Expires: 0
        assert rig.events("failover") == []
        fb, = rig.events("failback")
        assert fb["reason"] == "hedge" and UC2 in fb["next"]
        assert len(rig.uc2.bindings) == 1 and registration(rig.reg)["preferred"]
    finally:
        rig.close()


def test_refresh_to_a_primary_gone_silent_moves_within_1000_ms_and_removes_the_old_binding():
    rig = Rig()
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC2), 2000)
        rig.run_for(5000)
        rig.uc2.mode = "silent"
        t0 = rig.s.now()
        rig.reg.register_now()
        assert rig.run_until(lambda: rig.registered_on(UC1), 1000)
        assert rig.s.now() - t0 <= 1000
        # after the budget: failover logged, the binding left on uc2 removed (unanswered)
        assert rig.run_until(lambda: [r for r in rig.uc2.registers(t0) if r[2] == 0], 20000)
        assert rig.registered_on(UC1)
    finally:
        rig.close()


def _registrations(rig, n, gap_ms=2000):
    """``n`` console ``reg``s, each given time to end. Returns where each ended, the
    REGISTERs sent per server, the failovers and hedges logged. (The log and the peers'
    records are emptied as it goes: 100 rounds of them fragment a MicroPython heap.)"""
    where, sent, failovers, hedges = [], {}, 0, 0
    for _ in range(n):
        del rig.lines[:]
        rig.reg.register_now()
        t0 = rig.s.now()
        assert rig.run_until(lambda t0=t0: settled(rig) and rig.reg.registered_at >= t0,
                             HEDGED_BUDGET + 1000)
        where.append(rig.reg.server.ip)
        rig.run_for(gap_ms)
        tx_registers(rig, 0, sent)
        failovers += len(rig.events("failover"))
        hedges += len(rig.events("hedge"))
        for r in (rig.uc1, rig.uc2):
            del r.peer.got[:]
            del r.log[:]
    return where, sent, failovers, hedges


def test_ten_percent_loss_on_a_healthy_primary_100_registrations():
    lossless = Rig()
    try:
        lossless.reg.start()
        assert lossless.run_until(lambda: lossless.registered_on(UC2), 2000)
        where, base, failovers, _ = _registrations(lossless, 100)
        assert where == [UC2] * 100 and failovers == 0
        assert base == {UC2: 200}, base  # REGISTER → 401 → REGISTER → 200, each time
    finally:
        lossless.close()
    rig = Rig()
    loss = Lossy(0.1)
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.registered_on(UC2), 5000)
        rig.uc2.peer.drop = loss
        where, sent, failovers, hedges = _registrations(rig, 100)
        assert loss.dropped >= 15, loss.dropped  # the path really was lossy
        assert where == [UC2] * 100  # every registration ended on the primary
        assert failovers == 0  # no false failover
        assert rig.registered_on(UC2)
        total = sum(sent.values())
        assert total <= 1.3 * 200, sent  # load on the PBX: ≤ 1.3× the lossless count
        print("10%% loss: %d dropped, REGISTERs sent %s (%.2fx), hedges %d" % (
            loss.dropped, sent, total / 200.0, hedges))
    finally:
        rig.close()
