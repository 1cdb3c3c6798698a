"""Running one bench scenario: board, PBX, capture, timings, expectations, result.

A scenario is a function ``fn(run)`` (``scenarios.SCENARIOS``). It acts on the PBX
(``run.act("stop", run.pbx.primary)``), waits for the board's log (``run.until(RE)``), and
records what it measured (``run.time(name, t0, t1)``) and what it expected
(``run.expect(what, ok, detail)``). Each action and awaited line is also a mark on the
timeline of the report. The runner boots the board, starts and stops the capture, and turns
all this into one JSON-able dict; with a report folder it also writes ``report.html``, the
board's log and the pcap.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import time

from ..errors import SipfwError
from .capture import Capture
from .rig import HEAP, StepTimeout, VBoard, Watch

BOARD_IP = "127.0.0.61"
BOARD_PORT = 5060


class Run:
    def __init__(self, name: str, pbx, opts: dict, work: str, out=None):
        self.name = name
        self.pbx = pbx
        self.opts = opts
        self.work = work
        self.out = out
        self.watch: Watch | None = None
        self.board: VBoard | None = None
        self.boards: list[VBoard] = []  # extra boards (storm)
        self.marks: list[dict] = []  # timeline: {t, what, kind: action|board|note}
        self.times: dict[str, float] = {}
        self.figures: dict = {}
        self.expectations: list[dict] = []
        self.t_start = time.time()
        self.t_scenario = None  # when the scenario itself (after boot) began

    # -- what scenarios call
    def say(self, text: str) -> None:
        if self.out is not None:
            self.out.write("== %s\n" % text)
            self.out.flush()

    def act(self, action: str, server: str) -> float:
        t = time.time()
        self.pbx.act(action, server)
        self.mark(t, "%s %s" % (action, server), "action")
        self.say("%s %s" % (action, server))
        return t

    def console(self, command: str) -> tuple[float, dict]:
        assert self.watch is not None
        t = time.time()
        ans = self.watch.ask(command)
        if not command.startswith("status"):
            self.mark(t, "console: " + command, "action")
        return t, ans

    def until(self, pattern: str, timeout: float = 30, label: str | None = None):
        assert self.watch is not None
        t, line = self.watch.until(pattern, timeout)
        self.mark(t, label or _short(line), "board")
        return t, line

    def mark(self, t: float, what: str, kind: str) -> None:
        self.marks.append({"t": t, "what": what, "kind": kind})

    def time(self, name: str, t0: float, t1: float) -> float:
        ms = round((t1 - t0) * 1000.0, 1)
        self.times[name] = ms
        self.marks.append({"t": t0, "t1": t1, "what": "%s %.0f ms" % (name, ms),
                           "kind": "span"})
        self.say("%s: %.0f ms" % (name, ms))
        return ms

    def expect(self, what: str, ok: bool, detail=None) -> bool:
        self.expectations.append({"what": what, "ok": bool(ok), "detail": detail})
        self.say("%s %s%s" % ("PASS" if ok else "FAIL", what,
                              "" if detail is None else " (%s)" % detail))
        return bool(ok)

    def status(self) -> dict:
        return self.console("status")[1]

    def registered_at(self) -> str | None:
        """The PBX server name the board's first account is registered with, if any."""
        acc = self.status()["accounts"][0]
        if acc["state"] != "registered" or not acc.get("server"):
            return None
        return self.pbx.name_of(acc["server"]["ip"])

    def heap_free(self) -> int | None:
        return self.status().get("heap_free")


def _short(line: str) -> str:
    parts = line.split()
    # "<ms> INFO reg registered account=6903 server=tcp:uc1.../127.0.0.26:5060 ..."
    keep = [p for p in parts[2:] if not p.startswith(("account=", "branch="))]
    return " ".join(keep)[:80]


def board_config(run: Run, index: int = 0, local_ip: str = BOARD_IP, **kw) -> dict:
    from .scenarios import CONFIG

    o = run.opts
    kw.update(CONFIG.get(run.name, {}))
    return run.pbx.board_config(index, local_ip=local_ip, local_port=o.get("sip_port", BOARD_PORT),
                                failback_s=o.get("failback_s", 10), **kw)


def execute(name: str, pbx, opts: dict, out=None) -> tuple[dict, Run]:
    """Run scenario ``name``; returns (result dict, the Run with its log lines)."""
    from .scenarios import SCENARIOS

    fn, needs_board = SCENARIOS[name]
    work = opts.get("work") or tempfile.mkdtemp(prefix="sipfw-bench-")
    run = Run(name, pbx, opts, work, out)
    report_dir = opts.get("report")
    cap = None
    error = None
    pbx.prepare()
    try:
        if needs_board:
            _boot(run, report_dir)
            cap = run.figures.pop("_capture", None)
        elif report_dir and opts.get("capture", True):
            os.makedirs(report_dir, exist_ok=True)
            cap = Capture(os.path.join(report_dir, "%s.pcap" % name),
                          [ip for _, ip in pbx.servers] + _dns_ips(pbx))
            cap.start()
        run.t_scenario = time.time()
        fn(run)
    except (StepTimeout, RuntimeError, OSError, SipfwError, subprocess.TimeoutExpired) as e:
        error = str(e)
        run.expect("scenario ran to the end", False, error)
    finally:
        if run.watch is not None:
            run.watch.close()
        for b in [run.board, *run.boards]:
            if b is not None and not opts.get("port"):
                b.stop()
        pcap = cap.stop() if cap is not None else None
        try:
            pbx.finish()
        except Exception as e:  # noqa: BLE001 - still report what was measured
            error = error or "pbx cleanup: %s" % e
    result = {
        "scenario": name,
        "ok": error is None and all(e["ok"] for e in run.expectations),
        "pbx": pbx.name,
        "servers": [{"name": n, "ip": ip} for n, ip in pbx.servers],
        "board": {"port": opts.get("port") or "vboard", "heap": opts.get("heap", HEAP),
                  "host": platform.node()},
        "times_ms": run.times,
        "figures": run.figures,
        "expectations": run.expectations,
        "error": error,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.t_start)),
        "pcap": pcap,
    }
    if report_dir:
        from . import report

        result["report"] = report.write(report_dir, result, run)
    return result, run


def _dns_ips(pbx) -> list[str]:
    """The PBX's DNS servers' addresses (``1.2.3.4:53``, ``[::1]:53``: the firmware's
    parser, as the board reads them)."""
    from .report import dns_ip

    return [dns_ip(d) for d in pbx.dns]


def _boot(run: Run, report_dir: str | None) -> None:
    """The board, configured for the PBX, rebooted and registered; the capture running."""
    o = run.opts
    port = o.get("port")
    if port:
        link = port
    else:
        run.say("starting a virtual board (%s heap) and flashing it" % o.get("heap", HEAP))
        run.board = VBoard(run.work, "board", o.get("heap", HEAP))
        run.board.start()
        run.board.flash(echo=False)
        link = run.board.link
    run.say("pushing the bench account (%s at %s)" % (run.pbx.accounts[0][0], run.pbx.domain))
    cfg = board_config(run, 0, local_ip=o.get("board_ip", BOARD_IP),
                       retry_count=o.get("retry_count"))
    if run.board is not None:
        run.board.push_config(cfg, echo=False)
    else:
        from .rig import sipfw

        path = os.path.join(run.work, "config.json")
        with open(path, "w") as f:
            import json

            json.dump(cfg, f)
        sipfw("config", "push", path, "--port", link, echo=False)
    if report_dir and o.get("capture", True):
        os.makedirs(report_dir, exist_ok=True)
        cap = Capture(os.path.join(report_dir, "%s.pcap" % run.name),
                      [ip for _, ip in run.pbx.servers] + _dns_ips(run.pbx),
                      o.get("sip_port", BOARD_PORT))
        if cap.start():
            run.figures["_capture"] = cap
    run.watch = Watch(link, echo=o.get("echo"))
    run.say("rebooting the board: boot → registered")
    t0, _ = run.console("reboot")
    run.watch.mark()  # lines before the answer are the previous boot's
    tb, _ = run.until(r"INFO app start", label="app start")
    t1, line = run.until(r"INFO reg registered ", timeout=o.get("timeout", 30))
    run.boot = (t0, tb, t1, line)
