"""Scheduler: ordering, cancel, wrap-around, I/O readiness, errors — in virtual time."""

import socket

from fwtest import ListLog, bind_udp, new_sched, raises
from sipua.compat import ticks_add
from sipua.sched import POLLIN, Scheduler
from sipua.vtime import VirtualClock, VirtualPoller


def test_timers_run_in_due_order_then_insertion_order():
    s, _ = new_sched()
    seen = []
    s.call_later(300, seen.append, "c")
    s.call_later(100, seen.append, "a")
    s.call_later(100, seen.append, "b")
    s.call_soon(seen.append, "soon")
    s.run(until_ms=1000)
    assert seen == ["soon", "a", "b", "c"]


def test_virtual_time_runs_32_seconds_of_timers_without_sleeping():
    s, _clock = new_sched()
    fired = []
    s.call_later(32000, lambda: fired.append(s.now()))
    s.run(until_ms=40000)
    assert fired == [32000]
    assert s.now() == 40000


def test_cancel_makes_a_timer_a_noop():
    s, _ = new_sched()
    seen = []
    t = s.call_later(50, seen.append, "x")
    s.call_later(60, seen.append, "y")
    assert t.active
    t.cancel()
    assert not t.active
    s.run(until_ms=100)
    assert seen == ["y"]
    assert s.next_due_in() is None


def test_timer_is_inactive_after_it_fired():
    s, _ = new_sched()
    t = s.call_later(10, lambda: None)
    s.run(until_ms=20)
    assert not t.active


def test_callbacks_can_schedule_more_work():
    s, _ = new_sched()
    seen = []

    def tick(n):
        seen.append((n, s.now()))
        if n < 3:
            s.call_later(500, tick, n + 1)

    s.call_later(0, tick, 0)
    s.run(until_ms=5000)
    assert seen == [(0, 0), (1, 500), (2, 1000), (3, 1500)]


def test_clock_wraparound_is_invisible():
    # Start 100 ms before ticks_ms wraps: a 500 ms timer must fire after exactly 500 ms, not
    # at once and not after 12 days. The period is 2**30 on 32-bit ports, more on 64-bit.
    start = ticks_add(0, -100)
    s, clock = new_sched(start_ticks=start)
    fired = []
    s.call_later(500, lambda: fired.append(s.now()))
    s.run(until_ms=400)
    assert fired == []
    assert clock() < start  # the clock did wrap
    s.run(until_ms=600)
    assert fired == [500]


def test_long_uptime_rebases_without_losing_order():
    clock = VirtualClock()
    s = Scheduler(clock=clock, poller=VirtualPoller(clock))
    seen = []
    s.call_later(1000, seen.append, 1)
    # Jump far ahead: past the rebase threshold, timers keep their relative order.
    clock.advance((1 << 28) + 5)
    s.call_later(10, seen.append, 2)
    s.call_later(5, seen.append, 3)
    assert s.now() < (1 << 28)
    s.run(until_ms=s.now() + 20)
    assert seen == [1, 3, 2]


def test_cancelled_timers_do_not_pile_up_until_they_come_due():
    # A request flood: every answered transaction arms a 32 s timer that is cancelled at
    # once. The dead entries must be swept long before 32 s, and the live ones keep
    # their order (ties included) through every sweep.
    s, _ = new_sched()
    seen = []
    for i in range(20):
        s.call_later(100 + i // 2, seen.append, i)  # pairs of ties
    most = 0
    for _ in range(5000):
        s.call_later(32000, seen.append, "dead").cancel()
        most = max(most, len(s._heap))
    assert most <= 200, most
    s.run(until_ms=40000)
    assert seen == list(range(20))
    assert s._seq < 200  # renumbered by the sweeps, not counting every timer ever made


def test_a_sweep_from_inside_a_running_timer_runs_each_due_timer_once():
    s, _ = new_sched()
    seen = []

    def churn(i):
        seen.append(i)
        for _ in range(300):  # enough cancelled timers to sweep the heap mid-turn
            s.call_later(5000, seen.append, "dead").cancel()

    for i in range(10):
        s.call_later(100, churn, i)
    s.call_later(200, seen.append, "later")
    s.run(until_ms=10000)
    assert seen == list(range(10)) + ["later"]


def test_stop_ends_run():
    s, _ = new_sched()
    s.call_later(100, s.stop)
    s.call_later(200, lambda: None)
    s.run()
    assert s.now() == 100 and not s.running


def test_run_until_predicate_and_timeout():
    s, _ = new_sched()
    box = []
    s.call_later(700, box.append, 1)
    assert s.run_until(lambda: box, 1000) is True
    assert s.now() == 700
    assert s.run_until(lambda: False, 300) is False
    assert s.now() == 1000


def test_callback_error_is_logged_and_loop_goes_on():
    out = ListLog()
    s, _ = new_sched()
    s._log = out.logger
    seen = []

    def boom():
        raise ValueError("bad")

    s.call_later(10, boom)
    s.call_later(20, seen.append, "after")
    s.run(until_ms=50)
    assert seen == ["after"]
    ev = out.events("callback_error")
    assert ev and "ValueError" in ev[0]["err"] and ev[0]["fn"] == "boom"


def test_without_a_logger_callback_errors_propagate():
    s, _ = new_sched()

    def boom():
        raise ValueError("bad")

    s.call_soon(boom)
    raises(ValueError, s.run_once, 0)


def test_slow_callback_is_logged_with_its_duration():
    out = ListLog()
    s, clock = new_sched()
    s._log = out.logger
    s.call_later(1, clock.advance, 450)  # the callback "takes" 450 ms of clock time
    s.run(until_ms=1000)
    ev = out.events("slow_callback")
    assert len(ev) == 1 and ev[0]["ms"] == "450"


def test_watchdog_is_fed_every_turn():
    s, _ = new_sched()
    fed = []
    s.watchdog = lambda: fed.append(1)
    s.run(until_ms=5000)  # idle: the loop still wakes at least once a second
    assert len(fed) >= 5


def test_udp_readiness_on_loopback():
    s, _ = new_sched(real_poll=True)
    rx, port = bind_udp("127.0.0.1")
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        got = []

        def readable(sock, events):
            assert events & POLLIN
            got.append(sock.recv(64))

        s.watch(rx, POLLIN, readable)
        s.call_later(10, tx.sendto, b"hello", socket.getaddrinfo("127.0.0.1", port)[0][-1])
        assert s.run_until(lambda: got, 2000)
        assert got == [b"hello"]
        s.unwatch(rx)
        tx.sendto(b"again", socket.getaddrinfo("127.0.0.1", port)[0][-1])
        s.run(until_ms=s.now() + 100)
        assert got == [b"hello"]  # unwatched: no more callbacks
    finally:
        rx.close()
        tx.close()
