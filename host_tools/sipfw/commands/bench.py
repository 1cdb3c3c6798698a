"""`sipfw bench --scenario NAME`: run a bench scenario against a PBX, print the result.

Against the local lab by default (root: the lab binds 127.0.0.53:53 and uses iptables), or
any PBX described by ``--config BENCH.json`` (see ``sipfw.bench.pbx``). With no ``--port``
the bench starts its own virtual board, flashes it and pushes the account, as `make demo`
does. ``--json`` prints the result as one JSON object; ``--report DIR`` writes an HTML page
(ladder + timeline), the board's log and, with tshark/tcpdump, a pcap. ``--netns`` runs the
whole bench (lab included) in a private network namespace, so it never meets another lab
or test run on this host's loopback. Exit status 0 when every expectation held.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile


def add_parser(sub):
    from ..bench.scenarios import SCENARIOS

    p = sub.add_parser("bench", help="bench scenarios against a PBX (the lab by default)")
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--port", help="a board already flashed (default: a new virtual board)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--report", metavar="DIR", help="write NAME.html (+ .log, .pcap, .json)")
    p.add_argument("--config", metavar="BENCH.json", help="another PBX (default: the lab)")
    p.add_argument("--heap", default="384k", help="virtual board heap (default 384k)")
    p.add_argument("--boards", type=int, default=10, help="storm: virtual boards (default 10)")
    p.add_argument("--duration", type=float, default=60,
                   help="soak, flood: seconds (default 60)")
    p.add_argument("--collect-every", type=float, default=60, metavar="S",
                   help="soak: a collected heap sample (status gc) every S seconds (default 60)")
    p.add_argument("--hold", type=float, default=3, metavar="S",
                   help="call: seconds registered, then in the call, while sampling the heap")
    p.add_argument("--failback", type=int, default=10, metavar="S",
                   help="failback timer the board is given (default 10 s)")
    p.add_argument("--flood", choices=("options", "invite"), default="options",
                   help="flood: what sipp sends")
    p.add_argument("--rate", type=int, default=200, help="flood: messages per second")
    p.add_argument("--loss", type=float, default=0.1, help="loss: drop probability to uc2")
    p.add_argument("--count", type=int, default=100, help="loss: registrations")
    p.add_argument("--fuzz-count", type=int, default=100000,
                   help="fuzz: mutated messages sent (default 100000)")
    p.add_argument("--fuzz-rate", type=float, default=1000,
                   help="fuzz: messages per second (default 1000)")
    p.add_argument("--no-capture", action="store_true", help="no pcap even with --report")
    p.add_argument("--netns", action="store_true",
                   help="run in a private network namespace with a lab of its own (root)")
    p.add_argument("--verbose", "-v", action="store_true", help="show the board's log")
    p.set_defaults(func=run)
    return p


def netns_argv(argv: list[str]) -> list[str]:
    """The same command inside a new network namespace with loopback up (unshare -n)."""
    inner = [a for a in argv if a != "--netns"]
    script = 'ip link set lo up && exec "$@"'
    return ["unshare", "--net", "--", "sh", "-c", script, "sh", *inner]


def run_in_netns(argv: list[str], lab_run_dir: str | None = None) -> int:
    """Run argv (a sipfw bench command line) in a private netns with its own lab run dir;
    its exit code."""
    from ..errors import UsageError
    from ..procs import stop_process

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise UsageError("--netns needs root and unshare (util-linux)")
    run_dir = lab_run_dir or tempfile.mkdtemp(prefix="sipfw-netns-lab-")
    env = dict(os.environ, SIPFW_LAB_RUN_DIR=run_dir)
    proc = None
    try:
        proc = subprocess.Popen(netns_argv(argv), env=env)
        return proc.wait()
    finally:
        # Interrupted (Ctrl-C, SIGTERM): the bench inside gets SIGTERM and time to stop its
        # boards and lab itself, not subprocess.run's SIGKILL.
        stop_process(proc, grace_s=20)
        # The namespace lives as long as a process in it: a bench that died must not leave
        # its lab running there.
        from ..bench.pbx import stop_lab_dir

        stop_lab_dir(run_dir)


def run(args) -> int:
    if args.netns:
        exe = os.path.join(os.path.dirname(sys.executable), "sipfw")
        return run_in_netns([exe, "bench", *sys.argv[2:]])
    from ..bench.pbx import open_pbx
    from ..bench.runner import execute

    pbx = open_pbx(args.config)
    opts = {"port": args.port, "heap": args.heap, "boards": args.boards,
            "duration": args.duration, "hold": args.hold, "flood": args.flood,
            "collect_every": args.collect_every,
            "rate": args.rate, "loss": args.loss, "count": args.count, "failback_s": args.failback,
            "fuzz_count": args.fuzz_count, "fuzz_rate": args.fuzz_rate,
            "report": args.report, "capture": not args.no_capture,
            "echo": r" (reg|call) " if args.verbose else None}
    out = sys.stderr if args.json else sys.stdout
    result, _ = execute(args.scenario, pbx, opts, out=out)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n%s: %s" % (args.scenario, "PASS" if result["ok"] else "FAIL"))
        for k, v in result["times_ms"].items():
            print("  %-40s %8.0f ms" % (k, v))
        for k, v in result["figures"].items():
            if not isinstance(v, (list, dict)):
                print("  %-40s %8s" % (k, v))
        if result.get("report"):
            print("  report: %s" % result["report"])
    return 0 if result["ok"] else 1
