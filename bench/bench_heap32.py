"""The firmware's 32-bit heap, per phase and per module, against the budgets.

    python bench/bench_heap32.py [--json PATH] [--refreshes N]

The board's ``.mpy`` files on MicroPython's WebAssembly port (32-bit words and pointers,
as ESP32 and RP2), driven through ``app.boot`` and the real agent over a simulated network
in virtual time (``tools/heap32``; installed by ``make setup``). Live heap after a
collection: booted (before the agent starts), registered over UDP after a silent first
server, registered over TCP, in a call, after it, after N registration refreshes (1000: a
leak shows here), 40 s after the registrar pinged the phone with OPTIONS, then in a call
from the far end (answered, audio both ways; 70 s in, the server side gone; the peaks at
the answer and 5 s after it) and 70 s after the far end hung up. Budgets and today's
guards: ``board_configs/budgets/heap32.json``.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(os.path.dirname(HERE), "tools", "heap32")]

import harness  # noqa: E402


def kb(n):
    return "%.1f" % (n / 1024) if n is not None else "-"


def table(fig, budgets):
    rows = [("phase", "KB", "budget", "guard", "")]
    for name, b in budgets["phases"].items():
        got = fig["phases"].get(name)
        if got is None:
            continue
        over = got - b["budget"]
        rows.append((name, kb(got), kb(b["budget"]), kb(b["guard"]),
                     "over by %s KB" % kb(over) if over > 0 else "fits"))
    b = budgets["mpy_image"]
    over = fig["mpy_image"] - b["budget"]
    rows.append((".mpy image", kb(fig["mpy_image"]), kb(b["budget"]), kb(b["guard"]),
                 "over by %s KB" % kb(over) if over > 0 else "fits"))
    for name, got in sorted(fig.get("peaks", {}).items()):
        rows.append((name, kb(got), "-", "-", "peak (see harness.PEAKS)"))
    for r in rows:
        print("  %-16s %8s %8s %8s  %s" % r)
    print("  (phase figures: the simulation's %s KB taken out; see tools/heap32/harness.py)"
          % kb(fig["sim"]["tcp"]))
    pl = fig["placements"]
    print("  (each the least of %d heap placements, pystack %s words: %s)" % (
        len(pl["pystack_words"]), "/".join(str(w) for w in pl["pystack_words"]),
        ", ".join("%s %s" % (p, "/".join(kb(x) for x in v)) for p, v in pl["phases"].items())))
    print()
    print("  %-16s %8s %8s %8s  (modules: what importing each loaded one alone keeps; state:"
          " the rest)" % ("phase", "KB", "modules", "state"))
    for name, sp in fig["phase_split"].items():
        print("  %-16s %8s %8s %8s" % (name, kb(fig["phases"][name]), kb(sp["modules"]),
                                       kb(sp["state"])))
    print()
    print("  %-24s %8s %8s %8s" % ("module (import order)", "heap", "qstr", ".mpy"))
    for m in fig["modules"]:
        note = "  (%s)" % m["error"] if m["error"] else ""
        print("  %-24s %8d %8d %8s%s" % (m["module"], m["heap"], m["qstr_bytes"],
                                         m["mpy"] if m["mpy"] is not None else "-", note))
    q = fig["modules_qstr"]
    print("  %-24s %8d %8d %8d" % ("all modules", fig["modules_total"], q["total_bytes"],
                                   sum(m["mpy"] or 0 for m in fig["modules"])))
    print("  qstr pools, all modules: %d pools, %d qstrs, %d bytes of strings, %d bytes in all"
          % (q["pools"], q["qstrs"], q["data_bytes"], q["total_bytes"]))
    print("  sipua.sip.md5 is the simulation's here (a board's hashlib.md5 is C); its row is "
          "what it costs where hashlib has no md5.")
    n = fig["names"]
    print()
    print("  names (qstrs) interned per phase; name %d opens a pool of %d B in one block:"
          % (n["cliff"] + 1, n["next_pool_bytes"]))
    print("    " + ", ".join("%s %d" % (p, q) for p, q in n["qstrs"].items()))
    print("  every name claimed at boot (sipua/names.py, where the free heap affords it):")
    print("    " + ", ".join("%s %s KB (%d names)" % (p, kb(v), n["claimed_qstrs"][p])
                            for p, v in n["claimed"].items())
          + ", peak call_setup %s KB" % kb(n["claimed_peak_call_setup"]))
    curve = fig["refresh_curve"]
    if curve:
        print("  after refreshes (every %d): %s KB" % (harness.REFRESH_CHUNK,
                                                       " ".join(kb(x) for x in curve[:8]))
              + (" ... %s KB" % kb(curve[-1]) if len(curve) > 8 else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the figures here (bench/run.py: key heap32)")
    ap.add_argument("--refreshes", type=int, default=1000,
                    help="registration refreshes in virtual time (default 1000)")
    args = ap.parse_args()
    budgets = harness.load_budgets()
    try:
        fig = harness.measure(refreshes=args.refreshes)
    except harness.HarnessError as e:
        print("heap32: %s" % e, file=sys.stderr)
        return 1
    fig["budgets"] = budgets
    table(fig, budgets)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
