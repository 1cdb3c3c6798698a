"""LineReader: nothing read is lost when a caller stops at an event (a console answer, a
line it waited for). Seen: the bench asked `hangup`, the answer and the next six log lines
(BYE failover, 200, call ended) came in one read, and the six were gone."""

import os
import pty
import time
import tty

from sipfw.boards import Port
from sipfw.monitor import LineReader


def reader_on_pty():
    master, slave = pty.openpty()
    tty.setraw(slave)
    r = LineReader(None, Port(device=os.ttyname(slave), kind="virtual"), reconnect=False)
    r.open()
    return r, master, slave


def first(events):
    for ev in events:
        return ev
    return None


def test_lines_after_the_event_a_caller_stopped_at_are_kept():
    r, master, slave = reader_on_pty()
    try:
        os.write(master, b'@{"id": "7", "ok": true}\n12 INFO call bye call=1\n13 INFO ca')
        ans = first(r.events(time.monotonic() + 2))
        assert ans.kind == "answer"
        os.write(master, b"ll ended call=1\n")
        got = [ev.text for ev in r.events(time.monotonic() + 0.3)]
        assert got == ["12 INFO call bye call=1", "13 INFO call ended call=1"]
    finally:
        r.close()
        os.close(master)
        os.close(slave)


def test_a_line_keeps_the_time_of_its_first_byte_across_calls():
    r, master, slave = reader_on_pty()
    try:
        os.write(master, b"14 INFO reg regis")
        t0 = time.time()
        assert [ev.text for ev in r.events(time.monotonic() + 0.2)] == []  # not quiet yet
        os.write(master, b"tered account=6903\n")
        ev = first(r.events(time.monotonic() + 2))
        assert ev.text == "14 INFO reg registered account=6903" and ev.kind == "log"
        assert ev.t <= t0 + 0.05
    finally:
        r.close()
        os.close(master)
        os.close(slave)
