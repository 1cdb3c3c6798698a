"""Heap figures of the agent on the MicroPython unix port (64-bit), with the real lab.

    python bench/bench_heap.py [--json PATH] [--quick] [--frozen MICROPYTHON_BINARY]

- what each module keeps after import (``.mpy``: bytecode lives in RAM on this port);
- bytes allocated by one REGISTER refresh cycle, one RFC 3263 resolution (NAPTR, SRV, A),
  one parsed SIP response, one call (the account calls itself and auto-answers, so both
  legs of that call are counted); heap kept once registered and during that call;
- the same for one call as a phone makes it, in a process that does nothing else: kept once
  registered over TCP, and the extra kept while one call to the far end (below) is up;
- the smallest ``-X heapsize`` (KB, binary search, 8 KB steps) at which ``app.main``
  registers over TCP (the lab's airties.lab zone: NAPTR → SRV → uc2 over TCP), registers
  and is in a call (``call 6904`` on the console; the far end is another agent in a roomy
  heap that auto-answers), and registers over UDP with failover (a zone of our own on a
  dnsmasq we start: the priority-1 server is a dead loopback address that refuses, the
  priority-2 one is the lab's uc2).
- the watchdog on ``sipfw vboard``: the registered agent's loop stalled from the console
  (``stall``, enabled by ``log.debug_commands``), seconds until the supervisor's watchdog
  reset and until the rebooted board is registered again.

``--frozen BIN``: the same figures for a unix-port binary with ``sipua`` frozen in (made
outside this project, see docs/architecture.md "Heap"): bytecode and strings then stay out of
the heap, as on a board whose firmware image carries the agent. ``--frozen32 BIN``: that
binary built 32-bit (an ESP32's pointer size and 16-byte GC blocks), measured frozen and with
the ``.mpy`` files (``MICROPYPATH`` without ``.frozen``: the .mpy are loaded into the heap).

Needs the lab (``make lab-up``; started here and stopped again if it is not running) and
dnsmasq (``make test-deps``). Every run of the agent is bounded in time.
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from sipfw.bench import rig
from sipfw.procs import stop_process

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(ROOT, "host_tools")]
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")
LABCTL = os.path.join(ROOT, "lab", "labctl.py")
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"

BOARD_IP = "127.0.7.1"  # this bench's boards live in 127.0.7.0/24
DNS_IP = "127.0.7.53"
DEAD_IP = "127.0.7.99"  # nothing listens: a UDP REGISTER there is refused at once (ICMP)
UC2_IP = "127.0.0.27"  # the lab's registrar
DOMAIN = "airties.lab"
USER = "6905"  # 6903 collects every helper's bindings: a Contact list too long to parse
PORTS = (5062, 5063, 5064)
FAR_USER = "6904"  # the lab's far-end account
FAR_IP = "127.0.7.4"
FAR = [None]  # the FarEnd while the searches run
STEP_KB = 8
RUN_S = 10  # one agent run: registering takes < 1 s when it works at all


def build_mpy(out, firmware):
    from sipfw import build

    build.write_tree(firmware, out)


def upy(binary, mpy_dir, heap, args, timeout=60, cwd=None):
    env = dict(os.environ, MICROPYPATH=mpy_dir or ".frozen")
    proc = subprocess.run([binary, "-X", "heapsize=%s" % heap, *args], env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)
    return proc.stdout + proc.stderr


def figures(text):
    """'@@name value' lines -> dict (ints where they are ints)."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("@@"):
            continue
        parts = line[2:].split()
        if parts[0] == "import" and len(parts) >= 3:
            out.setdefault("import", {})[parts[1]] = int(parts[2])
        elif len(parts) >= 2:
            out[parts[0]] = int(parts[1]) if parts[1].lstrip("-").isdigit() else parts[1]
    return out


# -- the lab -----------------------------------------------------------------------------------
def lab_running():
    out = subprocess.run([sys.executable, LABCTL, "status"], capture_output=True, text=True,
                         timeout=60).stdout
    return "uc2" in out and "OPTIONS: ok" in out.split("uc2", 1)[1].splitlines()[0]


def lab_config(transport="dns-srv", user=USER):
    cfg = json.loads(subprocess.run([sys.executable, LABCTL, "config", user],
                                    capture_output=True, text=True, check=True,
                                    timeout=60).stdout)
    cfg["sip"] = {"local_ip": BOARD_IP, "local_port": 5062}
    cfg["accounts"][0]["transport"] = transport
    return cfg


class FailoverDns:
    """dnsmasq holding airties.lab for UDP only: priority 1 is dead, priority 2 is uc2."""

    def __init__(self):
        self.port = random.randint(20000, 60000)
        self.dir = tempfile.mkdtemp(prefix="bench-heap-dns-")
        pid = os.path.join(self.dir, "dnsmasq.pid")
        args = [DNSMASQ, "--listen-address=" + DNS_IP, "--bind-interfaces",
                "--port=%d" % self.port, "--no-hosts", "--no-resolv", "--no-poll",
                "--local-ttl=60", "--local=/%s/" % DOMAIN, "--conf-file=/dev/null",
                "--user=root", "--pid-file=" + pid,
                "--naptr-record=%s,2,0,s,SIP+D2U,,_sip._udp.%s" % (DOMAIN, DOMAIN),
                "--srv-host=_sip._udp.%s,dead.%s,5060,1,0" % (DOMAIN, DOMAIN),
                "--srv-host=_sip._udp.%s,uc2.%s,5060,2,0" % (DOMAIN, DOMAIN),
                "--host-record=dead.%s,%s" % (DOMAIN, DEAD_IP),
                "--host-record=uc2.%s,%s" % (DOMAIN, UC2_IP)]
        subprocess.run(args, check=True, timeout=30)
        self.pid = None
        for _ in range(50):
            try:
                with open(pid) as f:
                    self.pid = int(f.read().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.1)

    def config(self):
        cfg = lab_config("dns-srv")
        cfg["dns"] = {"servers": ["%s:%d" % (DNS_IP, self.port)]}
        return cfg

    def stop(self):
        if self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, 15)
        shutil.rmtree(self.dir, ignore_errors=True)


class FarEnd:
    """Another agent, in a roomy heap, registered as FAR_USER and answering every call: the
    measured agent's call then has one leg in it, as a phone's call has."""

    def __init__(self, workdir, mpy_dir):
        self.workdir, self.mpy_dir = workdir, mpy_dir
        self.proc = None
        self.start()

    def restart(self):
        """A fresh far end per run: a measured agent killed mid-call never sends its BYE,
        and a far end holding such calls answers the next ones 486 Busy."""
        self.stop()
        self.start()

    def start(self):
        workdir, mpy_dir = self.workdir, self.mpy_dir
        cfg = lab_config(user=FAR_USER)
        cfg["sip"] = {"local_ip": FAR_IP, "local_port": 5062}
        cfg["accounts"][0]["auto_answer"] = True
        path = os.path.join(workdir, "farend.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        # the far end's output for as long as it runs: stop() closes it
        self.log = open(os.path.join(workdir, "farend.log"), "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [MICROPYTHON, "-X", "heapsize=2M", "-c",
             "from sipua import app; app.main(%r)" % path],
            env=dict(os.environ, MICROPYPATH=mpy_dir), stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self.log.seek(0)
            if " reg registered " in self.log.read():
                return
            time.sleep(0.2)
        self.stop()
        raise OSError("the far end (%s) did not register" % FAR_USER)

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.log.close()
            self.proc = None


# -- one agent run -----------------------------------------------------------------------------
def run_agent(binary, mpy_dir, heap_kb, cfg, workdir, call=False):
    """Start app.main at this heap size; (ok, failed_over, memory_errors, lines). ok: it
    registered and, with ``call``, then called the far end from the console and got its
    200 (the far end must run: FarEnd)."""
    # The same few contacts every run: the registrar replaces a binding instead of adding
    # one per run (a 200 OK listing dozens of them no longer fits the parser's max_line).
    for port in PORTS:
        cfg = json.loads(json.dumps(cfg))
        cfg["sip"]["local_port"] = port
        res = _run_agent(binary, mpy_dir, heap_kb, cfg, workdir, call)
        if res is not None:
            return res
    raise OSError("every port in %s is in use on %s" % (PORTS, BOARD_IP))


def _run_agent(binary, mpy_dir, heap_kb, cfg, workdir, call):
    if call:
        FAR[0].restart()
    path = os.path.join(workdir, "cfg-%d.json" % heap_kb)
    with open(path, "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, MICROPYPATH=mpy_dir or ".frozen")
    code = "from sipua import app; app.main(%r)" % path
    proc = subprocess.Popen([binary, "-X", "heapsize=%dk" % heap_kb, "-c", code], env=env,
                            stdin=subprocess.PIPE if call else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + RUN_S
    ok = registered = False
    buf = ""
    try:
        os.set_blocking(proc.stdout.fileno(), False)
        while time.monotonic() < deadline and proc.poll() is None and len(lines) < 5000:
            try:
                chunk = proc.stdout.read()
            except (OSError, TypeError):
                chunk = None
            if not chunk:
                time.sleep(0.02)
                continue
            buf += chunk
            *done, buf = buf.split("\n")
            lines.extend(done)
            if not registered and any(" reg registered " in x for x in done):
                registered = True
                if not call:
                    ok = True
                    break
                proc.stdin.write("call %s\n" % FAR_USER)
                proc.stdin.flush()
            if call and any(" call answered " in x for x in done):
                ok = True  # the far end's 200 came back: the call is up
                break
    finally:
        proc.kill()
        proc.wait(timeout=10)
        with contextlib.suppress(OSError, TypeError):
            lines.extend((buf + (proc.stdout.read() or "")).split("\n"))  # its last words
        proc.stdout.close()
        if proc.stdin is not None:
            proc.stdin.close()
    if any("EADDRINUSE" in x for x in lines):
        return None
    failed_over = any(" reg failover " in x for x in lines)
    merr = sum(1 for x in lines if "MemoryError" in x)
    return ok, failed_over, merr, len(lines)


def smallest_heap(binary, mpy_dir, cfg, workdir, lo_kb, hi_kb, need_failover=False,
                  call=False):
    """Binary search (STEP_KB) for the smallest heap that registers (and calls); None if
    hi_kb fails."""
    def ok(kb):
        reg, fo, merr, n = run_agent(binary, mpy_dir, kb, cfg, workdir, call)
        good = reg and (fo or not need_failover)
        print("    heap %4d KB: %s (failover=%s, MemoryError lines=%d, log lines=%d)"
              % (kb, ("in a call" if call else "registered") if good else "FAILED", fo, merr,
                 n), flush=True)
        return good

    if not ok(hi_kb):
        return None
    kb = rig.smallest_heap(ok, lo_kb, hi_kb, STEP_KB)
    # Fragmentation makes the edge noisy: the answer must pass twice.
    while kb < hi_kb and not ok(kb):
        kb += STEP_KB
    return kb


def measure(binary, mpy_dir, tag, workdir, dns, searches, lo_hi):
    print("== %s ==" % tag, flush=True)
    res = {}
    imp = figures(upy(binary, mpy_dir, "2M", [os.path.join(HERE, "upy_heap.py"), "imports"]))
    res["import_bytes"] = imp.get("import", {})
    res["import_total"] = imp.get("import_total")
    cfg_path = os.path.join(workdir, "ops.json")
    cfg = lab_config()
    cfg["sip"]["local_ip"] = "127.0.7.3"
    cfg["accounts"][0]["auto_answer"] = True  # the call below calls itself
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    ops = figures(upy(binary, mpy_dir, "2M",
                      [os.path.join(HERE, "upy_heap.py"), "ops", cfg_path], timeout=120))
    for k in ("alloc_register_cycle", "alloc_dns_locate", "alloc_parse_response",
              "kept_registered", "heap_free_registered", "kept_in_call", "alloc_call"):
        res[k] = ops.get(k)
    if FAR[0] is not None:  # registered, then one call to the far end, in a fresh process
        FAR[0].restart()
        cfg = lab_config()
        cfg["sip"]["local_ip"] = "127.0.7.3"
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        one = figures(upy(binary, mpy_dir, "2M", [os.path.join(HERE, "upy_heap.py"), "call",
                                                   cfg_path, FAR_USER], timeout=120))
        res["kept_base"] = one.get("kept_base")
        res["kept_registered_alone"] = one.get("kept_registered")
        res["kept_call_one_leg"] = one.get("kept_call_one_leg")
        res["call_state_one_leg"] = one.get("call_state")  # "active" when measured
    width = max(len(m) for m in res["import_bytes"]) if res["import_bytes"] else 10
    for m, b in res["import_bytes"].items():
        print("  %-*s %7d" % (width, m, b))
    print("  %-*s %7s" % (width, "all modules", res["import_total"]))
    for k in ("kept_registered", "alloc_register_cycle", "alloc_dns_locate",
              "alloc_parse_response", "kept_in_call", "alloc_call", "kept_base",
              "kept_registered_alone", "kept_call_one_leg"):
        print("  %-24s %7s bytes" % (k, res.get(k)))
    if "tcp" in searches:
        print("  smallest heap, TCP registration (lab zone):", flush=True)
        res["min_heap_kb_tcp"] = smallest_heap(binary, mpy_dir, lab_config(), workdir,
                                               *lo_hi)
    if "tcp" in searches:
        print("  smallest heap, TCP registration and a call to the far end:", flush=True)
        res["min_heap_kb_tcp_call"] = smallest_heap(binary, mpy_dir, lab_config(), workdir,
                                                    *lo_hi, call=True)
    if "udp" in searches:
        print("  smallest heap, UDP registration with failover (dead primary):", flush=True)
        res["min_heap_kb_udp_failover"] = smallest_heap(binary, mpy_dir, dns.config(),
                                                        workdir, *lo_hi, need_failover=True)
    print("  smallest heap: TCP %s KB, TCP + call %s KB, UDP+failover %s KB" % (
        res.get("min_heap_kb_tcp"), res.get("min_heap_kb_tcp_call"),
        res.get("min_heap_kb_udp_failover")), flush=True)
    return res


def watchdog(mpy_dir, workdir, heap="512k"):
    """Stall a registered vboard's loop; (seconds to the reset, seconds to registered)."""
    import serial

    root = os.path.join(workdir, "vboard")
    shutil.copytree(mpy_dir, root)
    with open(os.path.join(ROOT, "firmware", "main.py")) as f:
        main_py = f.read()
    with open(os.path.join(root, "main.py"), "w") as f:
        f.write(main_py)
    cfg = lab_config()
    cfg["sip"] = {"local_ip": "127.0.7.2", "local_port": 5062}
    cfg["log"] = {"debug_commands": True}
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, SIPFW_VBOARD_DIR=os.path.join(workdir, "registry"))
    sipfw = os.path.join(os.path.dirname(sys.executable), "sipfw")
    proc = subprocess.Popen([sipfw, "vboard", "--root", root, "--heap", heap],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = serial.Serial(proc.stdout.readline().strip(), 115200, timeout=0.1)
        seen = [b""]

        def until(marker, timeout):
            deadline = time.monotonic() + timeout
            while marker not in seen[0] and time.monotonic() < deadline:
                seen[0] += port.read(port.in_waiting or 1)
            return marker in seen[0]

        if not until(b" reg registered ", 20):
            return None, None
        seen[0] = b""
        t0 = time.monotonic()
        port.write(b"stall 60\r\n")
        reset = until(b"watchdog reset", 20)
        t_reset = time.monotonic() - t0
        again = reset and until(b" reg registered ", 20)
        t_again = time.monotonic() - t0
        port.close()
        return (round(t_reset, 1) if reset else None), (round(t_again, 1) if again else None)
    finally:
        stop_process(proc)


def summary(out):
    """Issue 11's figure per build: TCP registered plus one call in progress (to a far end),
    kept after collection, and the smallest heap holding it."""
    lines = ["== TCP registered + one call in progress (kept after gc.collect) =="]
    for key, tag in (("mpy", "64-bit .mpy"), ("frozen", "64-bit frozen"),
                     ("frozen_32bit", "32-bit frozen"), ("mpy_32bit", "32-bit .mpy")):
        res = out.get(key)
        if not res:
            continue
        reg, leg = res.get("kept_registered_alone"), res.get("kept_call_one_leg")
        total = "%.1f KB" % ((reg + leg) / 1024) if reg is not None and leg is not None \
            else "not measured (call %s)" % res.get("call_state_one_leg")
        heaps = "smallest heap: TCP %s KB, TCP + call %s KB" % (
            res.get("min_heap_kb_tcp"), res.get("min_heap_kb_tcp_call")) \
            if "min_heap_kb_tcp" in res else "smallest heaps not searched (--quick)"
        lines.append("  %-14s registered %s B + one call %s B = %s (of which %s B before any "
                     "firmware import); %s" % (tag, reg, leg, total, res.get("kept_base"),
                                               heaps))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true", help="no heap-size searches")
    ap.add_argument("--frozen", default=os.environ.get("SIPFW_FROZEN_MICROPYTHON"),
                    help="a unix-port micropython with sipua frozen in (default: "
                    "$SIPFW_FROZEN_MICROPYTHON; `make bench` passes no arguments)")
    ap.add_argument("--frozen32", default=os.environ.get("SIPFW_FROZEN32_MICROPYTHON"),
                    help="the same, built for a 32-bit word size: "
                    "an ESP32's word size; default $SIPFW_FROZEN32_MICROPYTHON")
    ap.add_argument("--firmware", default=os.path.join(ROOT, "firmware"),
                    help="the firmware tree to measure (another revision's, to compare)")
    args = ap.parse_args()
    started_lab = False
    if not lab_running():
        subprocess.run([sys.executable, LABCTL, "up"], check=True, timeout=300)
        started_lab = True
    dns = FailoverDns()
    workdir = tempfile.mkdtemp(prefix="bench-heap-")
    far = None
    try:
        mpy_dir = os.path.join(workdir, "mpy")
        build_mpy(mpy_dir, args.firmware)
        searches = () if args.quick else ("tcp", "udp")
        far = FAR[0] = FarEnd(workdir, mpy_dir)  # one call's figures, and the searches
        out = {"port": "unix port; mpy/frozen: 64-bit (pointers and GC blocks twice an "
                       "ESP32's), *_32bit: the same at a 32-bit word size",
               "mpy": measure(MICROPYTHON, mpy_dir, ".mpy (bytecode in RAM)", workdir, dns,
                              searches, (96, 448))}
        t_reset, t_again = watchdog(mpy_dir, workdir)
        out["watchdog"] = {"stall_to_reset_s": t_reset, "stall_to_registered_s": t_again,
                           "period_ms": 8000}
        print("== watchdog (sipfw vboard) ==\n  stalled loop: reset after %s s, registered "
              "again after %s s" % (t_reset, t_again), flush=True)
        if args.frozen:
            out["frozen"] = measure(args.frozen, None, "frozen (bytecode in ROM)", workdir,
                                    dns, searches, (32, 256))
        if args.frozen32:
            out["frozen_32bit"] = measure(args.frozen32, None, "frozen, 32-bit build",
                                          workdir, dns, searches, (24, 192))
            out["mpy_32bit"] = measure(args.frozen32, mpy_dir, ".mpy, 32-bit build", workdir,
                                       dns, searches, (48, 320))
    finally:
        if far is not None:
            far.stop()
        dns.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if started_lab:
            subprocess.run([sys.executable, LABCTL, "down"], timeout=300)
    print(summary(out), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    sys.exit(main())
