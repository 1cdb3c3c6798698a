"""Failover timings of the agent on a virtual board against the lab (Kamailio + dnsmasq),
each the bench scenario of `sipfw bench` (``sipfw.bench.scenarios``) that acts it out.

Figures are board milliseconds read from the board's own log (the ``<ms>`` column of the
lines the scenario waited for), so host scheduling noise between the serial line and this
script is not in them. Median of --runs.

    boot_to_registered_ms    register: "app start" -> "reg registered" (NAPTR, SRV, TCP,
                             401, 423, 200)
    failover_refused_ms      failover-at-boot: uc2 stopped, board rebooted: first REGISTER
                             to uc2 -> registered on uc1
    failover_silent_ms       failover-silent: uc2 silent (iptables DROP): first REGISTER to
                             uc2 -> registered on uc1
    failover_registered_stop_ms  failover-refused: registered on uc2 over TCP, uc2 stopped:
                             connection reset seen (reg flow_lost) -> registered on uc1
    failback_probe_ms        failback (duration): OPTIONS probe to uc2 -> registered on uc2
    failback_reg_ms          failback-reg (new-requests): first REGISTER after console `reg`
                             -> registered on uc2
    invite_failover_silent_ms  invite-failover: registered on uc2, uc2 silent: dial -> call
                             answered via uc1

Needs root and the lab packages (as `make lab-up`); brings the lab up and down again only if
it was not running.

    .venv/bin/python bench/bench_failover.py [--runs 3] [--json PATH]
"""

import argparse
import json
import os
import statistics
import sys

HEAP = "512k"


def board_ms(run, start, end, since=None):
    """Board ms from the first log line of ``start`` (``(area, event, ip or None)``) at or
    after host time ``since`` (default: the scenario's start) to the first of ``end`` after
    it; the ip, when given, must be in the line's ``server``."""
    t = run.t_scenario if since is None else since
    lines = [ev.fields for ev in run.watch.lines if ev.t >= t and ev.fields]
    i0 = _find(lines, start, 0)
    i1 = _find(lines, end, i0 + 1)
    return int(lines[i1]["ms"]) - int(lines[i0]["ms"])


def _find(lines, what, i):
    area, event, ip = what
    for j in range(i, len(lines)):
        f = lines[j]
        if f.get("area") == area and f.get("event") == event and (
                ip is None or ip + ":" in str(f.get("server", ""))):
            return j
    raise RuntimeError("no %s %s%s in the board's log" % (area, event,
                                                         " at " + ip if ip else ""))


def _boot(run):
    return board_ms(run, ("app", "start", None), ("reg", "registered", None), run.boot[0])


# figure -> (scenario, board-ms of its run(run, primary ip, backup ip))
FIGURES = (
    ("boot_to_registered_ms", "register", lambda r, p, b: _boot(r)),
    ("failover_refused_ms", "failover-at-boot",
     lambda r, p, b: board_ms(r, ("reg", "register", p), ("reg", "registered", b))),
    ("failover_silent_ms", "failover-silent",
     lambda r, p, b: board_ms(r, ("reg", "register", p), ("reg", "registered", b))),
    ("failover_registered_stop_ms", "failover-refused",
     lambda r, p, b: board_ms(r, ("reg", "flow_lost", None), ("reg", "registered", b))),
    ("failback_probe_ms", "failback",
     lambda r, p, b: board_ms(r, ("reg", "failback_probe", None), ("reg", "registered", p))),
    ("failback_reg_ms", "failback-reg",
     lambda r, p, b: board_ms(r, ("reg", "register", p), ("reg", "registered", p),
                              _last_console(r, "reg"))),
    ("invite_failover_silent_ms", "invite-failover",
     lambda r, p, b: board_ms(r, ("call", "dial", None), ("call", "answered", b))),
)


def _last_console(run, command):
    """Host time of the last console ``command`` the scenario sent."""
    return [m["t"] for m in run.marks if m["what"] == "console: " + command][-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_failover needs root (the lab: DNS on :53, iptables)", file=sys.stderr)
        return 1
    from sipfw.bench.pbx import LabPbx
    from sipfw.bench.runner import execute

    pbx = LabPbx(keep_up=True)  # up once for every run; down at the end if it was down
    started = pbx.lab.up()
    primary, backup = pbx.ip(pbx.primary), pbx.ip(pbx.backup)
    results = {}
    try:
        for name, scenario, figure in FIGURES:
            runs = []
            for _ in range(args.runs):
                result, run = execute(scenario, pbx, {"heap": HEAP, "failback_s": 2})
                if not result["ok"]:
                    print("%s: scenario %s failed: %s" % (name, scenario, result["error"] or [
                        e["what"] for e in result["expectations"] if not e["ok"]]),
                        file=sys.stderr)
                    return 1
                runs.append(figure(run, primary, backup))
            results[name] = statistics.median(runs)
            print("%-28s %8d ms   runs %s" % (name, results[name], runs), flush=True)
    finally:
        pbx.finish()
        if started:
            pbx.lab.down()
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
