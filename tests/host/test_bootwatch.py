"""sipfw.bootwatch: a board's boot, read line by line, becomes one outcome (scripted lines on
a fake clock; the same reading against virtual boards is in test_boot_report.py)."""

from __future__ import annotations

import io

import pytest
from sipfw import bootwatch
from sipfw.errors import BoardError

# What the issue's board printed: the firmware died in Agent.start with a MemoryError, sat
# at the REPL, and the watchdog reset it 8 s later, for ever.
ISSUE_BOOT = [
    (0.00, "MPY: soft reboot"),
    (0.02, "3 INFO app start heap_free=43328 platform=linux version=0.1.0"),
    (0.02, '3 ERROR app config_error reason="/config.json: cannot read (2); using defaults"'),
    (0.03, "3 INFO net up ip=127.0.0.1 kind=os"),
    (0.03, "Traceback (most recent call last):"),
    (0.03, '  File "main.py", line 5, in <module>'),
    (0.03, '  File "sipua/agent.py", line 38, in start'),
    (0.03, "MemoryError: memory allocation failed, allocating 640 bytes"),
    (0.03, "MicroPython 9458e3a23f on 2026-07-05; linux [GCC 14.2.1] version"),
    (0.03, 'Type "help()" for more information.'),
]


def repeat(lines, at):
    return [(t + at, text) for t, text in lines]


class Script:
    """The board's lines at given times; ``next_line`` advances a fake clock."""

    def __init__(self, lines):
        self.lines = list(lines)
        self.now = 0.0

    def clock(self):
        return self.now

    def next_line(self, until):
        if self.lines and self.lines[0][0] <= until:
            t, text = self.lines.pop(0)
            self.now = max(self.now, t)
            return text
        self.now = until
        return None

    def watch(self, timeout=20.0, **kw):
        return bootwatch.watch(self.next_line, timeout, clock=self.clock, **kw)


def test_ready_with_the_ready_lines_figures_and_the_errors_on_the_way():
    s = Script([(0.0, "MPY: soft reboot"),
                (0.1, "0 INFO app start heap_free=300000 platform=linux version=0.1.0"),
                (0.1, '0 ERROR app config_error reason="bad key"'),
                (0.3, "5 INFO app ready heap_free=288064 ip=127.0.0.1")])
    out = s.watch()
    assert out.state == "ready" and out.ok and out.restarts == 0
    assert out.figures == {"heap_free": "288064", "ip": "127.0.0.1"}
    assert out.errors == ['0 ERROR app config_error reason="bad key"']
    assert out.summary() == "agent ready in 0.30 s (heap_free=288064 ip=127.0.0.1)"


def test_the_issues_board_is_a_crash_loop_with_the_first_traceback():
    s = Script([*ISSUE_BOOT, (8.5, ""), (8.5, "vboard: watchdog reset"),
                *repeat(ISSUE_BOOT, 8.6), (16.6, "vboard: watchdog reset")])
    out = s.watch()
    assert out.state == "crash_loop" and not out.ok
    assert out.restarts == 1 and 8.6 < out.seconds < 9  # decided at the second traceback
    assert out.exception() == "MemoryError: memory allocation failed, allocating 640 bytes"
    assert out.details()[0] == "Traceback (most recent call last):"
    assert "crash loop: it restarted 1 time in 9 s without a ready line; the first boot " \
           "raised MemoryError: memory allocation failed" in out.summary()


def test_restarting_twice_without_a_ready_line_is_a_crash_loop_even_without_a_traceback():
    boot = [(0.0, "MPY: soft reboot"), (0.1, "0 INFO app start version=x")]
    s = Script(boot + repeat(boot, 1) + repeat(boot, 2) + repeat(boot, 3))
    out = s.watch()
    assert out.state == "crash_loop" and out.restarts == 2 and out.seconds == 2.0
    assert "no traceback was printed" in out.summary()
    # an `app start` after an `app start`, no reset line between (a board whose reset
    # prints nothing, or a re-plugged USB board): a restart too
    s = Script([(0.0, "0 INFO app start"), (1.0, "0 INFO app start"), (2.0, "0 INFO app start")])
    assert s.watch().state == "crash_loop"


def test_a_traceback_and_no_reset_is_reported_after_the_watchdogs_time_not_the_timeout():
    s = Script(ISSUE_BOOT)
    out = s.watch(timeout=60)
    assert out.state == "traceback" and out.restarts == 0
    assert out.seconds == pytest.approx(0.03 + bootwatch.LOOP_WAIT_S)
    assert out.summary() == ("main.py raised MemoryError: memory allocation failed, allocating "
                             "640 bytes (the board stopped at its REPL)")
    # a deadline before that wait ends: the traceback all the same
    assert Script(ISSUE_BOOT).watch(timeout=3).state == "traceback"


def test_a_restart_then_ready_is_ready_and_says_so():
    s = Script([*ISSUE_BOOT, (8.5, "vboard: watchdog reset"), (8.5, "MPY: soft reboot"),
                (8.6, "0 INFO app start"), (8.7, "1 INFO app ready ip=x")])
    out = s.watch()
    assert out.state == "ready" and out.restarts == 1
    assert out.summary().startswith("agent ready in 8.70 s after 1 restart (ip=x)")


def test_agent_failed_comes_with_the_traceback_the_app_prints_after_it():
    s = Script([(0.0, "MPY: soft reboot"), (0.1, "0 INFO app start"),
                (0.2, '1 ERROR app agent_failed err="MemoryError: memory allocation failed"'),
                (0.2, "Traceback (most recent call last):"),
                (0.2, '  File "sipua/app.py", line 64, in start_agent'),
                (0.2, "MemoryError: memory allocation failed"),
                (0.3, "@{...}")])
    out = s.watch()
    assert out.state == "agent_failed" and out.seconds == 0.2
    assert out.figures == {"err": "MemoryError: memory allocation failed"}
    assert out.details()[-1] == "MemoryError: memory allocation failed"
    assert "the agent did not start: MemoryError: memory allocation failed. The board stays " \
           "up in safe mode" in out.summary()
    # no traceback after the line (CPython, or a port that prints none): decided 1 s later
    s = Script([(0.0, '1 ERROR app agent_failed err="OSError: 98"')])
    out = s.watch()
    assert out.state == "agent_failed" and out.seconds == bootwatch.TRACEBACK_WAIT_S


def test_silence_and_a_stuck_boot_are_timeouts_that_say_what_was_seen():
    out = Script([]).watch(timeout=5)
    assert out.state == "timeout" and out.seconds == 5
    assert out.summary() == "no line matching %r within 5 s; the board said nothing" % (
        bootwatch.READY_RE)
    out = Script([(0.0, "MPY: soft reboot"), (0.1, "0 INFO app start"),
                  (0.2, "0 INFO net joining ssid=lab")]).watch(timeout=5)
    assert out.state == "timeout"
    assert out.summary().endswith("(3 lines, the last: '0 INFO net joining ssid=lab')")
    assert out.details() == ["MPY: soft reboot", "0 INFO app start", "0 INFO net joining ssid=lab"]


def test_main_ending_at_the_repl_is_stopped_but_the_old_sessions_banner_is_not():
    banner = [(0.0, "MicroPython 9458e3a23f on 2026-07-05; linux"),
              (0.0, 'Type "help()" for more information.')]  # leaving the raw REPL
    s = Script([*banner, (0.1, "MPY: soft reboot"), (0.2, "0 INFO app start"),
                *repeat(banner, 0.3)])
    out = s.watch()
    assert out.state == "stopped" and out.seconds == 0.3
    assert out.summary() == "main.py ended without the ready line: the board is at its REPL"


def test_a_custom_ready_pattern():
    s = Script([(0.0, "0 INFO app start version=t accounts=2 err=False")])
    out = s.watch(ready="accounts=2 err=False")
    assert out.ok and out.figures == {"version": "t", "accounts": "2", "err": "False"}


def test_report_prints_ready_and_raises_for_anything_else():
    said, warned = [], []
    ok = Script([(0.0, '0 ERROR app config_error reason=x'),
                 (0.5, "1 INFO app ready ip=1.2.3.4")]).watch()
    bootwatch.report(ok, "flashed", say=said.append, warn=warned.append)
    assert said == ["agent ready in 0.50 s (ip=1.2.3.4)"]
    assert warned == ["  the board logged: 0 ERROR app config_error reason=x"]

    bad = Script(ISSUE_BOOT).watch(timeout=3)
    err = io.StringIO()
    with pytest.raises(BoardError) as exc:
        bootwatch.report(bad, "flashed", say=said.append,
                         warn=lambda line: err.write(line + "\n"))
    assert str(exc.value).startswith("flashed, but main.py raised MemoryError")
    assert exc.value.exit_code == 5
    shown = err.getvalue().splitlines()
    assert shown[0] == "  | Traceback (most recent call last):"
    assert shown[3] == "  | MemoryError: memory allocation failed, allocating 640 bytes"
    assert len(said) == 1
