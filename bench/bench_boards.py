"""The firmware on real boards (issue 11), what a person sees: flash on a board with too
little heap, the ROMFS layout factor, the Raspberry Pi runner.

    python bench/bench_boards.py [--json PATH] [--small-heap 100k]

1. ``sipfw flash`` (firmware/, defaults) on a vboard with ``--small-heap``: its lines and exit
   code, verbatim; again with ``--force`` (``--no-reset``: the real app is not started); then
   on a vboard with the default heap (also ``--no-reset``).
2. The heap the firmware's modules keep on the 64-bit MicroPython unix port (the venv's
   ``micropython``), imported as ``.mpy`` files and from a ``vfs.VfsRom`` image, against
   ``heapcheck.LAYOUT_FACTOR["romfs"]``: every module, and the modules a phone keeps
   registered over TCP and in a call (the lists from tools/heap32's run on the WebAssembly
   port). The unix port reads the image into a bytes object, so the image itself is on the
   heap there and not counted: what is counted is what a board that maps its ROMFS
   partition keeps.
3. The Pi runner (``sipfw vboard --serial``) on a socat pty pair with each interpreter it
   supports: the round ``sipfw.boardcheck.pi_round`` makes (tests/host/test_serialrunner.py
   makes the same one).

Boards are vboards on ptys and socat pty pairs; nothing listens on the network.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(os.path.dirname(HERE), "tools", "heap32")]

import harness  # noqa: E402
from sipfw import boardcheck, heapcheck  # noqa: E402
from sipfw.procs import exit_on_sigterm, stop_process  # noqa: E402

KB = 1024


def flash_run(device, *extra):
    argv = ["flash", "--port", device, *extra]
    r = boardcheck.sipfw(*argv, timeout=120)
    lines = (r.stdout + r.stderr).splitlines()
    print("  $ sipfw %s" % " ".join(argv))
    for x in lines:
        print("  " + x)
    print("  (exit %d)" % r.returncode)
    heap = " ".join(x for x in lines if "heap: " in x)
    need = re.search(r"needs ~(\d+) KB", heap)
    free = re.search(r"this board has (\d+) KB free", heap)
    return {"args": argv[3:], "exit": r.returncode, "lines": lines,
            "need_kb": int(need.group(1)) if need else None,
            "free_kb": int(free.group(1)) if free else None}


def part_flash(tmp, small_heap):
    print("1. sipfw flash (firmware/) on vboards (64-bit unix port)")
    out, problems = {}, []
    for name, heap, runs in (("small", small_heap, ((), ("--force", "--no-reset"))),
                             ("default", None, (("--no-reset",),))):
        root = tmp / ("flash-" + name)
        root.mkdir()
        (root / "config.json").write_text("{}")
        proc, device = boardcheck.spawn_vboard(root, heap)
        try:
            print(" vboard --heap %s:" % (heap or "(default)"))
            out[name] = {"heap": heap or "default",
                         "runs": [flash_run(device, *extra) for extra in runs]}
        finally:
            stop_process(proc, grace_s=5)
            proc.stdout.close()
    small, force = out["small"]["runs"]
    if small["exit"] != 5 or not any("Nothing was copied" in x for x in small["lines"]):
        problems.append("the small board was not refused")
    if force["exit"] != 0 or not any("--force: copying anyway" in x for x in force["lines"]):
        problems.append("--force did not copy")
    if out["default"]["runs"][0]["exit"] != 0:
        problems.append("flash failed on the default heap")
    return out, problems


def part_romfs(tmp):
    factor = heapcheck.LAYOUT_FACTOR["romfs"]
    upy = os.path.join(os.path.dirname(sys.executable), "micropython")
    print("2. heap kept on the 64-bit unix port, .mpy files vs a VfsRom image "
          "(heapcheck factor %.2f)" % factor)
    sets = [("every module", None)]
    note = None
    try:
        for phase, mods in harness.loaded_modules().items():
            sets.append((phase, mods))
    except harness.HarnessError as e:
        note = "registered/in-call sets not measured: %s" % e
    out, problems = {}, []
    print("  %-16s %7s %9s %9s %6s" % ("modules", "count", ".mpy KB", "ROMFS KB", "ratio"))
    for name, mods in sets:
        k = boardcheck.romfs_heap(upy, tmp / "romfs", mods)
        k["factor"] = factor
        out[name.replace(" ", "_")] = k
        ok = k["ratio"] <= factor
        if not ok and mods is None:  # what tests/host/test_heapcheck_romfs.py holds it to
            problems.append("ROMFS ratio %.3f for %s is over %.2f" % (k["ratio"], name, factor))
        print("  %-16s %7d %9.1f %9.1f %6.3f  %s" % (
            name, k["modules"], k["mpy"] / KB, k["rom"] / KB, k["ratio"],
            "within the factor" if ok else "OVER the factor"))
    print("  (image %.1f KB; the unix port reads it into a bytes object on its heap, not "
          "counted: a board maps its ROMFS partition instead)" % (k["image"] / KB))
    print("  (64-bit: objects and pointers are twice a 32-bit board's, bytecode is not; a "
          "32-bit board's ratio is not measured here)")
    if note:
        print("  " + note)
        out["note"] = note
    return out, problems


def part_pi(tmp):
    print("3. the Pi runner (sipfw vboard --serial) on a socat pty pair")
    print("  %-24s %-6s %-10s %-8s %-7s %-7s %s" % (
        "interpreter", "up", "flash", "flash s", "push", "log s", "console status"))
    out, problems = {}, []
    for name in sorted(boardcheck.PI_INTERPRETERS):
        interpreter, board = boardcheck.PI_INTERPRETERS[name]
        work = tmp / ("pi-" + name)
        work.mkdir()
        row = {"board": board, "up": False}
        try:
            line = boardcheck.PiLine(work, interpreter, board)
        except (boardcheck.CheckFailed, OSError) as e:
            row["error"] = str(e)
        else:
            row["up"] = True
            try:
                got = boardcheck.pi_round(line, work)
            except (boardcheck.CheckFailed, subprocess.TimeoutExpired) as e:
                row["error"] = str(e)
                got = {}
            finally:
                line.stop()
            fl = got.get("flash")
            row["flash_ok"] = bool(fl and fl.returncode == 0 and "agent ready in" in fl.stdout)
            row["flash_s"] = round(got["flash_s"], 2) if "flash_s" in got else None
            row["push_ok"] = bool(got.get("push") and got["push"].returncode == 0)
            st = got.get("status")
            row["status"] = st.stdout.strip() if st and st.returncode == 0 else None
            row["first_log_s"] = (round(got["first_log_s"], 3)
                                  if got.get("first_log_s") is not None else None)
        out[name] = row
        if not (row["up"] and row.get("flash_ok") and row.get("push_ok") and row.get("status")
                and row.get("first_log_s") is not None):
            problems.append("Pi runner with %s: %s" % (name, row.get("error") or "a step failed"))
        print("  %-24s %-6s %-10s %-8s %-7s %-7s %s" % (
            name, "yes" if row["up"] else "no", "ok" if row.get("flash_ok") else "FAILED",
            row.get("flash_s") or "-", "ok" if row.get("push_ok") else "FAILED",
            row.get("first_log_s") or "-", row.get("status") or "-"))
        if row.get("error"):
            print("    " + row["error"].splitlines()[0])
    print("  (log s: host time from the soft reboot's Ctrl-D to the firmware's first log line)")
    return out, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the figures here (bench/run.py: key boards)")
    ap.add_argument("--small-heap", default="100k",
                    help="the vboard heap flash must refuse (default %(default)s)")
    args = ap.parse_args()
    exit_on_sigterm()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-boards-") as d:
        tmp = Path(d)
        os.environ["SIPFW_VBOARD_DIR"] = str(tmp / "registry")  # our boards only
        os.environ.pop("SIPFW_PORT", None)
        fig, problems = {}, []
        for key, part in (("flash", lambda: part_flash(tmp, args.small_heap)),
                          ("romfs", lambda: part_romfs(tmp)), ("pi", lambda: part_pi(tmp))):
            fig[key], bad = part()
            problems += bad
            print()
    fig["seconds"] = round(time.monotonic() - t0, 1)
    for p in problems:
        print("boards: %s" % p, file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=2)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
