"""Failover timings of the agent on a virtual board against the lab (Kamailio + dnsmasq).

Figures are board milliseconds read from the board's own log (the ``<ms>`` column), so host
scheduling noise between the serial line and this script is not in them. Median of --runs.

    boot_to_registered_ms    "app start" -> "reg registered" (NAPTR, SRV, TCP, 401, 423, 200)
    failover_refused_ms      uc2 stopped: first REGISTER to uc2 -> registered on uc1
    failover_silent_ms       uc2 silent (iptables DROP): first REGISTER to uc2 -> registered on uc1
    failover_registered_stop_ms  registered on uc2 over TCP, uc2 stopped: connection reset
                             seen (reg flow_lost) -> registered on uc1
    failback_probe_ms        failback duration: OPTIONS probe to uc2 -> registered on uc2
    failback_reg_ms          failback new-requests: console `reg` -> registered on uc2
    invite_failover_silent_ms  registered on uc2, uc2 silent: dial -> call answered via uc1

Needs root and the lab packages (as `make lab-up`); brings the lab up and down again only if
it was not running.

    .venv/bin/python bench/bench_failover.py [--runs 3] [--json PATH]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests" / "lab"), str(ROOT / "lab")]

import labctl  # noqa: E402
from agentboard import AgentBoard, board_config  # noqa: E402

UC1, UC2 = labctl.SERVERS["uc1"].ip, labctl.SERVERS["uc2"].ip
HEAP = "512k"


class Bench:
    def __init__(self, lab, tmp):
        self.lab = lab
        self.tmp = Path(tmp)
        self.n = 0

    def board(self, **kw):
        self.n += 1
        cfg = board_config(self.lab, "127.0.6.%d" % (10 + self.n), 5070, **kw)
        b = AgentBoard(self.tmp / ("b%d" % self.n), cfg, heap=HEAP)
        b.start()
        return b

    def healthy(self):
        for name in labctl.SERVERS:
            self.lab.unsilence(name)
            self.lab.start(name)

    def finish(self, b):
        try:
            b.cmd("unreg", timeout=2, ok=False)
            time.sleep(0.2)
        except AssertionError:
            pass
        b.stop()
        self.healthy()


def ms(e):
    return int(e["ms"])


def on(ip):
    import re

    return re.compile(re.escape(ip) + ":")


def boot_to_registered(bench):
    b = bench.board()
    try:
        start = b.wait("app", "start", 10)
        reg = b.wait("reg", "registered", 10, server=on(UC2))
        return ms(reg) - ms(start)
    finally:
        bench.finish(b)


def failover(bench, fault):
    getattr(bench.lab, fault)("uc2")
    b = bench.board()
    try:
        reg = b.wait("reg", "registered", 15, server=on(UC1))
        first = b.events("reg", "register")[0]
        assert UC2 in first["server"]
        return ms(reg) - ms(first)
    finally:
        bench.finish(b)


def failover_while_registered(bench):
    b = bench.board()
    try:
        b.wait("reg", "registered", 10, server=on(UC2))
        mark = b.mark()
        bench.lab.stop("uc2")
        lost = b.wait("reg", "flow_lost", 10, since=mark)
        reg = b.wait("reg", "registered", 10, since=mark, server=on(UC1))
        return ms(reg) - ms(lost)
    finally:
        bench.finish(b)


def failback_probe(bench):
    bench.lab.stop("uc2")
    b = bench.board(failback={"mode": "duration", "timeout": 2})
    try:
        b.wait("reg", "registered", 10, server=on(UC1))
        bench.lab.start("uc2")
        probe = b.wait("reg", "failback_probe", 10)
        back = b.wait("reg", "registered", 10, server=on(UC2))
        return ms(back) - ms(probe)
    finally:
        bench.finish(b)


def failback_reg(bench):
    bench.lab.stop("uc2")
    b = bench.board(failback={"mode": "new-requests"})
    try:
        b.wait("reg", "registered", 10, server=on(UC1))
        bench.lab.start("uc2")
        time.sleep(5.2)  # the refused server's hold (servers.HOLD_REFUSED_MS)
        mark = b.mark()
        b.cmd("reg")
        back = b.wait("reg", "registered", 10, since=mark, server=on(UC2))
        # The console line has no board timestamp: take the REGISTER it caused.
        first = b.events("reg", "register", since=mark)[0]
        return ms(back) - ms(first)
    finally:
        bench.finish(b)


def invite_failover_silent(bench):
    b = bench.board()
    try:
        b.wait("reg", "registered", 10, server=on(UC2))
        bench.lab.silence("uc2")
        mark = b.mark()
        b.cmd("call 6904")
        dial = b.wait("call", "dial", 5, since=mark)
        ans = b.wait("call", "answered", 15, since=mark)
        assert UC1 in ans["server"]
        b.cmd("hangup")
        b.wait("call", "ended", 10, since=mark)
        return ms(ans) - ms(dial)
    finally:
        bench.finish(b)


SCENARIOS = (
    ("boot_to_registered_ms", boot_to_registered),
    ("failover_refused_ms", lambda b: failover(b, "stop")),
    ("failover_silent_ms", lambda b: failover(b, "silence")),
    ("failover_registered_stop_ms", failover_while_registered),
    ("failback_probe_ms", failback_probe),
    ("failback_reg_ms", failback_reg),
    ("invite_failover_silent_ms", invite_failover_silent),
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_failover needs root (the lab: DNS on :53, iptables)", file=sys.stderr)
        return 1
    lab = labctl.Lab()
    started = lab.up()
    farend_was = lab.farend_running("6904")
    results = {}
    try:
        lab.farend("6904", port=labctl.free_port(), servers=("uc2", "uc1"))
        with tempfile.TemporaryDirectory() as tmp:
            bench = Bench(lab, tmp)
            for name, fn in SCENARIOS:
                runs = []
                for _ in range(args.runs):
                    bench.healthy()
                    lab.farend("6904", servers=("uc2", "uc1"))
                    runs.append(fn(bench))
                results[name] = statistics.median(runs)
                print("%-28s %8d ms   runs %s" % (name, results[name], runs), flush=True)
    finally:
        for name in labctl.SERVERS:
            lab.unsilence(name)
        if not farend_was:
            lab.stop_farend("6904")
        if started:
            lab.down()
        else:
            lab.up()
    results["runs"] = args.runs
    results["board"] = "vboard (MicroPython unix port, heap %s, .mpy)" % HEAP
    results["retry_count"] = 3
    print(json.dumps(results, sort_keys=True))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
