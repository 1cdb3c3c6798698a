"""SIP message figures: parse and parse+serialize rates of typical REGISTER / INVITE / 200
messages on MicroPython (the unix port) and CPython, heap bytes per parsed message and the
heap the SIP modules take on import, on MicroPython. Prints a table; ``--json PATH`` writes
the figures there (`make bench` stores them as bench/results.json["sip"]).

    .venv/bin/python bench/bench_sip.py [--json PATH]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def micropython():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else shutil.which("micropython")


def build_mpy(out):
    """Compile the firmware to .mpy as `sipfw flash` puts it on a board."""
    from sipfw import build

    build.write_tree(os.path.join(ROOT, "firmware"), out)


def run(interp, path=None):
    env = dict(os.environ)
    worker = os.path.join(HERE, "sip_worker.py")
    if interp == "micropython":
        cmd = [micropython(), "-X", "heapsize=256K", worker, "300"]
        env["MICROPYPATH"] = (path or os.path.join(ROOT, "firmware")) + ":.frozen"
    else:
        cmd = [sys.executable, worker, "3000"]
        env["PYTHONPATH"] = os.path.join(ROOT, "firmware")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit("bench_sip: %s failed:\n%s%s" % (interp, p.stdout, p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    import tempfile

    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    res = {"micropython": run("micropython"), "cpython": run("cpython")}
    with tempfile.TemporaryDirectory() as tmp:
        build_mpy(tmp)
        res["micropython_mpy"] = run("micropython", tmp)
    print("SIP messages (msgs/s; heap bytes on MicroPython, 256 KB heap unix port)")
    print("%-10s %12s %14s %12s %14s %10s %10s" % (
        "message", "upy parse", "upy parse+ser", "cpy parse", "cpy parse+ser", "upy alloc",
        "upy kept"))
    for name in ("register", "invite", "ok200"):
        u, c = res["micropython"], res["cpython"]
        print("%-10s %12d %14d %12d %14d %10d %10d" % (
            name, u[name + "_parse_per_s"], u[name + "_parse_serialize_per_s"],
            c[name + "_parse_per_s"], c[name + "_parse_serialize_per_s"],
            u[name + "_heap_bytes"], u[name + "_retained_bytes"]))
    u = res["micropython"]
    print("import heap on MicroPython: msg %d B, + stack/uas/transactions %d B (source)" % (
        u["import_msg_bytes"], u["import_stack_uas_bytes"]))
    m = res["micropython_mpy"]
    print("import heap on MicroPython: msg %d B, + stack/uas/transactions %d B (.mpy)" % (
        m["import_msg_bytes"], m["import_stack_uas_bytes"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, sort_keys=True)


if __name__ == "__main__":
    main()
