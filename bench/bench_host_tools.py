"""Host-tool timings on a virtual board: full flash, no-change flash, one-module flash,
config push. Prints one JSON object (seconds, wall clock, median of --runs).

    .venv/bin/python bench/bench_host_tools.py [--runs 3]
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
SIPFW = os.path.join(BIN, "sipfw")
MAIN = "from sipua import config, log, sched, console\nprint('0 INFO app start version=bench')\n"


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
    vb = subprocess.Popen([SIPFW, "vboard", "--root", root], stdout=subprocess.PIPE, text=True,
                          env=env)
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
        vb.send_signal(signal.SIGTERM)
        vb.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SIPFW_VBOARD_DIR=os.path.join(tmp, "reg"))
        env.pop("SIPFW_PORT", None)
        runs = [one_run(tmp, env) for _ in range(args.runs)]
    res = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    res["runs"] = args.runs
    print(json.dumps(res, sort_keys=True))


if __name__ == "__main__":
    main()
