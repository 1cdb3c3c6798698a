"""`make demo`: the main job on a virtual board against the local lab, in plain words.

1. the lab (two Kamailio registrars uc1/uc2, dnsmasq with the seed's zone) comes up;
2. a virtual board starts, is flashed with the firmware and given the lab account;
3. it registers as the seed shows: NAPTR → SRV → REGISTER over TCP to uc2 → 401 → 423 → 200;
4. uc2 is stopped: the board fails over to uc1; uc2 comes back: the board fails back;
5. uc2 goes silent (packets dropped): the next REGISTER also goes to uc1 after 1.5·T1
   (hedged), well inside the retry budget;
6. a summary table, then everything the demo started is stopped.

Run as root (the lab binds 127.0.0.53:53 and uses iptables). Everything stays on 127/8.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

from .bench.rig import HEAP, STEP_TIMEOUT_S, VBoard, server_of
from .bench.rig import Watch as _Watch
from .paths import EXAMPLES_DIR, LAB_DIR

BOARD_IP = "127.0.0.61"
FAILBACK_S = 10  # "duration" failback: try the preferred server again after this long


def say(text: str) -> None:
    print("\n== " + text, flush=True)


class Watch(_Watch):
    """The demo shows the board's reg/call lines as it waits for them."""

    def __init__(self, link: str):
        super().__init__(link, echo=r" (reg|call) ")

    def until(self, pattern: str, timeout: float = STEP_TIMEOUT_S):
        try:
            return super().until(pattern, timeout)
        except RuntimeError as e:
            raise SystemExit("demo: %s" % e) from None


def main() -> int:
    sys.path.insert(0, LAB_DIR)
    from labctl import Lab

    if os.geteuid() != 0:
        print("make demo needs root: the lab binds 127.0.0.53:53 and uses iptables")
        return 2
    work = tempfile.mkdtemp(prefix="sipfw-demo-")
    lab = Lab()
    started_lab = False
    board = None
    watch = None
    rows = []
    try:
        say("Starting the lab: Kamailio uc2 (127.0.0.27, SRV priority 1) and uc1 (127.0.0.26, "
            "priority 2), dnsmasq on 127.0.0.53 serving airties.lab like the seed's zone")
        started_lab = bool(lab.up())

        say("Starting a virtual board (the MicroPython unix port behind a pty, %s heap)" % HEAP)
        board = VBoard(work, "board", HEAP)
        print("   device: " + board.start(), flush=True)
        link = board.link

        say("Flashing the firmware (compiled to .mpy, only what changed is copied)")
        board.flash()

        say("Pushing the lab account 6903/6903 (server airties.lab, transport DNS-SRV, "
            "Expires 180, failback after %d s)" % FAILBACK_S)
        with open(os.path.join(EXAMPLES_DIR, "lab.json")) as f:
            cfg = json.load(f)
        acc = cfg["accounts"][0]
        acc.update(expires=180, failback={"mode": "duration", "timeout": FAILBACK_S})
        cfg["accounts"] = [acc]
        cfg["sip"] = {"local_ip": BOARD_IP, "local_port": 5060}
        cfg["log"] = {"level": "info"}
        board.push_config(cfg)
        watch = Watch(link)

        say("Rebooting the board and timing boot → registered")
        watch.ask("reboot")
        watch.mark()  # what came before the answer is the previous boot's
        t0, _ = watch.until(r"INFO app start")
        t1, _ = watch.until(r"reg registered")
        st = watch.ask("status")
        print("   status: " + server_of(st), flush=True)
        rows.append(("boot → registered (seed trace: 401 → 423 → 200)", server_of(st),
                     (t1 - t0) * 1000))

        say("Stopping uc2 (connection refused): the board should fail over to uc1")
        t0 = time.time()
        lab.stop("uc2")
        t1, _ = watch.until(r"reg registered .*uc1")
        rows.append(("failover, uc2 stopped", server_of(watch.ask("status")), (t1 - t0) * 1000))

        say("Starting uc2 again: after %d s on uc1 the board probes uc2 and fails back"
            % FAILBACK_S)
        t0 = time.time()
        lab.start("uc2")
        t1, _ = watch.until(r"reg registered .*uc2", timeout=FAILBACK_S + 30)
        rows.append(("failback, uc2 back (duration %d s)" % FAILBACK_S,
                     server_of(watch.ask("status")), (t1 - t0) * 1000))

        say("Making uc2 silent (iptables DROP) and asking for a REGISTER now (console `reg`)")
        lab.silence("uc2")
        t0 = time.time()
        watch.ask("reg")
        t1, _ = watch.until(r"reg registered .*uc1", timeout=40)
        rows.append(("failover, uc2 silent (hedged at 1.5·T1)", server_of(watch.ask("status")),
                     (t1 - t0) * 1000))
        lab.unsilence("uc2")
    finally:
        if watch is not None:
            watch.close()
        if board is not None:
            board.stop()
        lab.unsilence("uc2")
        if started_lab:
            lab.down()
    say("Summary (virtual board, real Kamailio + dnsmasq on loopback)")
    print("| %-50s | %-44s | %9s |" % ("step", "board is", "time"))
    print("|" + "-" * 52 + "|" + "-" * 46 + "|" + "-" * 11 + "|")
    for step, where, ms in rows:
        print("| %-50s | %-44s | %6.0f ms |" % (step, where, ms))
    print("\nFor comparison: baresip 1.0 in this same lab took 96 s to fail over from a silent "
          "primary\n(bench/compare_baresip.py; figures in docs/architecture.md, \"Agent\").")
    return 0


if __name__ == "__main__":
    sys.exit(main())
