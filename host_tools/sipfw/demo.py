"""`make demo`: the main job on a virtual board against the local lab, in plain words.

1. the lab (two Kamailio registrars uc1/uc2, dnsmasq with the seed's zone) comes up;
2. a virtual board starts, is flashed with the firmware and given the lab account;
3. it registers as the seed shows: NAPTR → SRV → REGISTER over TCP to uc2 → 401 → 423 → 200;
4. uc2 is stopped: the board fails over to uc1; uc2 comes back: the board fails back;
5. uc2 goes silent (packets dropped): the next REGISTER fails over within the retry budget;
6. a summary table, then everything the demo started is stopped.

Run as root (the lab binds 127.0.0.53:53 and uses iptables). Everything stays on 127/8.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time

from .paths import EXAMPLES_DIR, LAB_DIR, ROOT

BOARD_IP = "127.0.0.61"
FAILBACK_S = 10  # "duration" failback: try the preferred server again after this long
STEP_TIMEOUT_S = 30
# The unix port is 64-bit: every object and pointer is twice an ESP32's, so the agent that
# an ESP32 runs in ~100 KB needs more here (`make bench` measures the smallest heap).
HEAP = "384k"


def say(text: str) -> None:
    print("\n== " + text, flush=True)


def sipfw(*args: str) -> None:
    cmd = [os.path.join(os.path.dirname(sys.executable), "sipfw"), *args]
    print("$ sipfw " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, timeout=120)


class Watch:
    """One connection to the board: its log lines (timestamped) and console answers."""

    def __init__(self, link: str):
        from . import boards
        from .commands.console import Session
        from .monitor import LineReader

        self.reader = LineReader(link, boards.resolve_port(link), reconnect=True)
        self.reader.open()
        self.session = Session(self.reader, 5.0)

    def until(self, pattern: str, timeout: float = STEP_TIMEOUT_S, show=r" (reg|call) "):
        """Read log lines until one matches; returns (host time, line)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        for ev in self.reader.events(deadline):
            if show and re.search(show, ev.text) and "DEBUG" not in ev.text:
                print("   board| " + ev.text[:150], flush=True)
            if rx.search(ev.text):
                return ev.t, ev.text
        raise SystemExit("demo: timed out waiting for %r" % pattern)

    def ask(self, command: str) -> dict:
        return self.session.ask(command)

    def close(self):
        self.reader.close()


def server_of(status: dict) -> str:
    acc = status["accounts"][0]
    s = acc.get("server") or {}
    return "%s %s (%s:%s)" % (acc["state"], s.get("host"), s.get("transport"), s.get("ip"))


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
        link = os.path.join(work, "board.tty")
        board = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "sipfw"), "vboard", "--root",
             os.path.join(work, "root"), "--link", link, "--heap", HEAP],
            stdout=subprocess.PIPE, text=True)
        print("   device: " + board.stdout.readline().strip(), flush=True)

        say("Flashing the firmware (compiled to .mpy, only what changed is copied)")
        sipfw("flash", "--port", link, "--board", "vboard")

        say("Pushing the lab account 6903/6903 (server airties.lab, transport DNS-SRV, "
            "Expires 180, failback after %d s)" % FAILBACK_S)
        with open(os.path.join(EXAMPLES_DIR, "lab.json")) as f:
            cfg = json.load(f)
        acc = cfg["accounts"][0]
        acc.update(expires=180, failback={"mode": "duration", "timeout": FAILBACK_S})
        cfg["accounts"] = [acc]
        cfg["sip"] = {"local_ip": BOARD_IP, "local_port": 5060}
        cfg["log"] = {"level": "info"}
        cfg_path = os.path.join(work, "config.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)
        watch = Watch(link)
        watch.close()  # config push needs the port to itself
        sipfw("config", "push", cfg_path, "--port", link, "--reset")
        watch = Watch(link)

        say("Rebooting the board and timing boot → registered")
        watch.ask("reboot")
        t0, _ = watch.until(r"INFO app start")
        t1, line = watch.until(r"reg registered")
        st = watch.ask("status")
        print("   status: " + server_of(st), flush=True)
        rows.append(("boot → registered (seed trace: 401 → 423 → 200)", server_of(st),
                     (t1 - t0) * 1000))

        say("Stopping uc2 (connection refused): the board should fail over to uc1")
        t0 = time.time()
        lab.stop("uc2")
        t1, line = watch.until(r"reg registered .*uc1")
        rows.append(("failover, uc2 stopped", server_of(watch.ask("status")), (t1 - t0) * 1000))

        say("Starting uc2 again: after %d s on uc1 the board probes uc2 and fails back"
            % FAILBACK_S)
        t0 = time.time()
        lab.start("uc2")
        t1, line = watch.until(r"reg registered .*uc2", timeout=FAILBACK_S + 30)
        rows.append(("failback, uc2 back (duration %d s)" % FAILBACK_S,
                     server_of(watch.ask("status")), (t1 - t0) * 1000))

        say("Making uc2 silent (iptables DROP) and asking for a REGISTER now (console `reg`)")
        lab.silence("uc2")
        t0 = time.time()
        watch.ask("reg")
        t1, line = watch.until(r"reg registered .*uc1", timeout=40)
        rows.append(("failover, uc2 silent (retry budget)", server_of(watch.ask("status")),
                     (t1 - t0) * 1000))
        lab.unsilence("uc2")
    finally:
        if watch is not None:
            watch.close()
        if board is not None:
            board.terminate()
            board.wait(10)
        lab.unsilence("uc2")
        if started_lab:
            lab.down()
    say("Summary (virtual board, real Kamailio + dnsmasq on loopback)")
    print("| %-50s | %-44s | %9s |" % ("step", "board is", "time"))
    print("|" + "-" * 52 + "|" + "-" * 46 + "|" + "-" * 11 + "|")
    for step, where, ms in rows:
        print("| %-50s | %-44s | %6.0f ms |" % (step, where, ms))
    print("\nFor comparison (../shared/LAB-NOTES.md): baresip takes ~96 s to fail over from a "
          "silent primary,\nPJSIP never does, belle-sip 32–218 s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
