"""Host-tool timings on a virtual board: full flash, no-change flash, one-module flash,
config push, each the median of --runs (wall clock). Prints a table; ``--json PATH`` writes
the figures (seconds) there, as `make bench` (bench/run.py) expects of every bench.

    .venv/bin/python bench/bench_host_tools.py [--runs 3] [--json PATH]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from sipfw.procs import stop_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
SIPFW = os.path.join(BIN, "sipfw")
MAIN = ("from sipua import config, log, sched, console\nprint('0 INFO app start version=bench')\n"
        "print('1 INFO app ready ip=127.0.0.1')\n")  # the line `sipfw flash` waits for


def timed(*args, env):
    t0 = time.monotonic()
    r = subprocess.run([SIPFW, *args], capture_output=True, text=True, timeout=120, env=env)
    if r.returncode != 0:
        raise SystemExit("sipfw %s failed: %s" % (" ".join(args), r.stderr))
    return time.monotonic() - t0


def one_run(tmp, env):
    src = os.path.join(tmp, "fw")
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "firmware"), src,
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(os.path.join(src, "main.py"), "w") as f:
        f.write(MAIN)
    root = os.path.join(tmp, "root")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    # 384k: flash refuses a 64-bit board with less free heap than the firmware needs
    vb = subprocess.Popen([SIPFW, "vboard", "--root", root, "--heap", "384k"],
                          stdout=subprocess.PIPE, text=True, env=env)
    dev = vb.stdout.readline().strip()
    try:
        out = {}
        out["flash_full_s"] = timed("flash", "--port", dev, "--source", src, env=env)
        out["flash_nochange_s"] = timed("flash", "--port", dev, "--source", src, env=env)
        with open(os.path.join(src, "sipua", "log.py"), "a") as f:
            f.write("\nBENCH = 1\n")
        out["flash_one_module_s"] = timed("flash", "--port", dev, "--source", src, env=env)
        out["config_push_s"] = timed("config", "push", os.path.join(ROOT, "examples", "lab.json"),
                                     "--port", dev, env=env)
        out["files"] = len([1 for _, _, fs in os.walk(root) for _ in fs])
        return out
    finally:
        stop_process(vb)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SIPFW_VBOARD_DIR=os.path.join(tmp, "reg"))
        env.pop("SIPFW_PORT", None)
        runs = [one_run(tmp, env) for _ in range(args.runs)]
    res = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    res["runs"] = args.runs
    rows = [("full flash (empty board)", "flash_full_s"),
            ("flash again, nothing changed", "flash_nochange_s"),
            ("flash after one module changed", "flash_one_module_s"),
            ("config push (board not running the agent)", "config_push_s")]
    w = max(len(label) for label, _ in rows)
    print("host tools on a virtual board, median of %d runs (%d files on the board)" % (
        args.runs, res["files"]))
    for label, key in rows:
        print("  %s  %.2f s" % (label.ljust(w), res[key]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, sort_keys=True)


if __name__ == "__main__":
    main()
