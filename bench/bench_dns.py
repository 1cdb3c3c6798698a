"""DNS figures: decode rate (firmware codec vs dnspython, same responses, same run), decode
rate on MicroPython, heap of one airties resolution on MicroPython, and the dns/ footprint.

    python bench/bench_dns.py [--json PATH]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIRMWARE = os.path.join(ROOT, "firmware")
sys.path[:0] = [FIRMWARE, os.path.join(ROOT, "tests", "host")]
BIN = os.path.dirname(sys.executable)
MICROPYTHON = os.path.join(BIN, "micropython")
GOAL_SPEEDUP = 3.0


def corpus(n=600, seed=1):
    """Responses shaped like a phone's: NAPTR, SRV with glue, A, AAAA, CNAME, NXDOMAIN+SOA."""
    import dns.message
    import dns.rrset

    rng = random.Random(seed)
    out = []
    for i in range(n):
        d = "%s%d.%s" % (rng.choice(["airties", "onsip", "example", "pbx"]), i,
                         rng.choice(["com", "net", "test"]))
        kind = i % 6
        qtype = ("NAPTR", "SRV", "A", "AAAA", "A", "SRV")[kind]
        qname = ("_sip._tcp." + d) if qtype == "SRV" else d
        q = dns.message.make_query(qname, qtype, use_edns=0, payload=1232)
        r = dns.message.make_response(q)
        if kind == 0:
            r.answer.append(dns.rrset.from_text(
                d + ".", 3600, "IN", "NAPTR",
                '2 0 "s" "SIP+D2T" "" _sip._tcp.%s.' % d,
                '2 0 "s" "SIP+D2U" "" _sip._udp.%s.' % d))
        elif kind == 1:
            r.answer.append(dns.rrset.from_text(qname + ".", 3600, "IN", "SRV",
                                                "1 0 5060 uc2.%s." % d, "2 0 5060 uc1.%s." % d))
            r.additional.append(dns.rrset.from_text("uc2.%s." % d, 60, "IN", "A", "91.220.65.27"))
            r.additional.append(dns.rrset.from_text("uc1.%s." % d, 60, "IN", "A", "91.220.65.26"))
        elif kind == 2:
            r.answer.append(dns.rrset.from_text(d + ".", 2936, "IN", "A", "91.220.65.27"))
        elif kind == 3:
            r.answer.append(dns.rrset.from_text(d + ".", 300, "IN", "AAAA", "2001:db8::1"))
        elif kind == 4:
            r.answer.append(dns.rrset.from_text(d + ".", 300, "IN", "CNAME", "sip.%s." % d))
            r.answer.append(dns.rrset.from_text("sip.%s." % d, 300, "IN", "A", "10.0.0.1"))
        else:
            r.set_rcode(3)
            r.authority.append(dns.rrset.from_text(
                d + ".", 300, "IN", "SOA", "ns.%s. hostmaster.%s. 1 7200 900 1209600 60" % (d, d)))
        out.append(r.to_wire())
    return out


def rate(fn, msgs, min_s=1.0):
    passes, total = 0, 0.0
    t0 = time.perf_counter()
    while total < min_s:
        for m in msgs:
            fn(m)
        passes += 1
        total = time.perf_counter() - t0
    return passes * len(msgs) / total


def cpython_rates(msgs):
    import dns.message
    from sipua.dns.wire import decode

    for m in msgs:  # same records, or the comparison is meaningless
        decode(m)
        dns.message.from_wire(m)
    mine = rate(decode, msgs)
    theirs = rate(dns.message.from_wire, msgs)
    return mine, theirs


def upy_rate(msgs):
    if not os.path.exists(MICROPYTHON):
        return None
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
        for m in msgs:
            f.write(len(m).to_bytes(2, "big") + m)
        path = f.name
    try:
        env = dict(os.environ, MICROPYPATH=FIRMWARE)
        p = subprocess.run([MICROPYTHON, "-X", "heapsize=4M", os.path.join(HERE, "upy_decode.py"),
                            path, "5"], capture_output=True, text=True, timeout=300, env=env)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        return out["messages"] / (out["us"] / 1e6)
    finally:
        os.unlink(path)


def upy_resolution_heap(tree):
    """Bytes allocated by one full airties resolution (NAPTR, 2 SRV, glue) on MicroPython,
    against dnsmasq with the seed's zone; gc disabled while it runs. Run from the .mpy
    ``tree`` a board holds: from source the compiler's own heap would count too."""
    from dnsmasq_zone import DNSMASQ, DOMAIN, Dnsmasq

    if not os.path.exists(DNSMASQ) or not os.path.exists(MICROPYTHON):
        return None, "dnsmasq or micropython missing"
    d = Dnsmasq().start()
    try:
        env = dict(os.environ, MICROPYPATH=tree)
        p = subprocess.run([MICROPYTHON, "-X", "heapsize=100K",
                            os.path.join(ROOT, "tests", "host", "upy_locate.py"), d.server,
                            DOMAIN], capture_output=True, text=True, timeout=60, env=env)
        if p.returncode:
            return None, "upy_locate failed: %s" % (p.stdout + p.stderr).strip()[-300:]
        out = json.loads(p.stdout.strip().splitlines()[-1])
        return out["heap"], (out["error"] or "%d targets" % len(out["targets"]))
    finally:
        d.cleanup()


def footprint(tree):
    """dns/ as .mpy (what a board stores) and the heap its import keeps on MicroPython."""
    dns_dir = os.path.join(tree, "sipua", "dns")
    out = {}
    total = 0
    for f in sorted(os.listdir(dns_dir)):
        size = os.path.getsize(os.path.join(dns_dir, f))
        out["mpy_" + f[: -len(".mpy")]] = size
        total += size
    out["mpy_dns_total"] = total
    # The scheduler and log are shared by the whole agent: loaded first, counted apart.
    code = ("import gc\ngc.collect()\na=gc.mem_alloc()\n"
            "import sipua.sched, sipua.log\ngc.collect()\nb=gc.mem_alloc()\n"
            "from sipua.dns import locator, resolver, wire, cache\n"
            "gc.collect()\nprint(b-a, gc.mem_alloc()-b)\n")
    p = subprocess.run([MICROPYTHON, "-X", "heapsize=100K", "-c", code], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, MICROPYPATH=tree))
    infra, dns_only = p.stdout.split()
    out["import_heap_sched_log_mpy"] = int(infra)
    out["import_heap_mpy"] = int(dns_only)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    msgs = corpus()
    mine, theirs = cpython_rates(msgs)
    upy = upy_rate(msgs)
    from sipfw.build import write_tree

    tree = tempfile.mkdtemp(prefix="sipfw-mpy-")
    try:
        write_tree(FIRMWARE, tree)  # the board's .mpy files, as `sipfw flash` writes them
        heap, heap_note = upy_resolution_heap(tree)
        fp = footprint(tree)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    fig = {
        "corpus_messages": len(msgs),
        "cpython_decode_per_s": round(mine),
        "dnspython_from_wire_per_s": round(theirs),
        "speedup_vs_dnspython": round(mine / theirs, 2),
        "speedup_goal": GOAL_SPEEDUP,
        "micropython_decode_per_s": round(upy) if upy else None,
        "micropython_airties_resolution_heap_bytes": heap,
    }
    fig.update(fp)
    rows = [
        ("decode, firmware codec (CPython)", "%d msg/s" % mine),
        ("decode, dnspython from_wire (CPython)", "%d msg/s" % theirs),
        ("speed-up (goal >= %.0fx)" % GOAL_SPEEDUP, "%.1fx" % (mine / theirs)),
        ("decode, firmware codec (MicroPython unix)", "%d msg/s" % upy if upy else "n/a"),
        ("heap, one airties resolution (MicroPython)",
         "%s bytes (%s)" % (heap, heap_note) if heap is not None else "n/a (%s)" % heap_note),
        ("dns/ as .mpy", "%d bytes" % fp["mpy_dns_total"]),
        ("heap kept by importing dns/ (.mpy, 64-bit port)", "%d bytes (+%d sched/log)" % (
            fp["import_heap_mpy"], fp["import_heap_sched_log_mpy"])),
    ]
    w = max(len(r[0]) for r in rows)
    print("%d responses (NAPTR, SRV+glue, A, AAAA, CNAME, NXDOMAIN+SOA)" % len(msgs))
    for k, v in rows:
        print("  %s  %s" % (k.ljust(w), v))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f)
    return 0 if mine / theirs >= GOAL_SPEEDUP else 1


if __name__ == "__main__":
    sys.exit(main())
