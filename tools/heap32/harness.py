"""The 32-bit heap harness, host side: the board's ``.mpy`` firmware on MicroPython's
WebAssembly port (``run.mjs``, pinned in ``package.json``), driven through its phases over a
simulated network in virtual time (``sim/``), the live heap read after each phase.

    from harness import measure
    figures = measure(refreshes=1000)

Fresh interpreters: ``imports`` (every firmware module imported in dependency
order, one step each, no simulation loaded: what each module costs and the qstr pools),
``udp`` (boot, then registered over UDP after the first server stayed silent) and ``tcp``
(boot, registered over TCP, in a call, after it, 40 s after the registrar pinged the
phone with an OPTIONS down its connection, after N refreshes, then in a call from the far
end — 5 s and 70 s after the answer — and after the far end hung up), those two once per
heap placement. The incoming call comes last, so the phases before it are measured as
without it.

A phase's figure is the least, over six heap placements (``PLACEMENTS``), of the
interpreter's live heap after a collection less what the
simulation keeps (its modules, peers, canned DNS answers and the MD5 that stands in for a
board's C ``hashlib.md5``), measured right after it was loaded, before any firmware
module. The qstr pools are counted apart: the simulation's strings sit in the same pools
as the firmware's, and a new pool twice the size of the last is added whenever one fills,
so its 250-odd strings move where the firmware's pools fill up (by ~10 KB, either way). The
phone's figure therefore takes the interpreter's pools out and puts in the pools a board
allocates for the firmware's own qstr count (``pool_bytes``, py/qstr.c's rule):
``phone = alloc - pools - (sim_alloc - sim_pools) + firmware_strings + pool_bytes(n)``.
What the peers keep later (a nonce, counters, an empty buffer per TCP connection) and the
simulated socket objects (a board's sockets are on the heap too) stay in the phone's
figure; nothing is in flight when a phase is measured (the phone has read everything).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIRMWARE = os.path.join(ROOT, "firmware")
BUDGETS = os.path.join(ROOT, "board_configs", "budgets", "heap32.json")
RUNNER = os.path.join(HERE, "run.mjs")
NODE_MODULES = os.path.join(HERE, "node_modules")
PHASES = ("booted", "udp_failover", "tcp_registered", "in_call", "after_call", "refreshes",
          "after_ping", "in_call_in", "after_call_in", "life")
# The same phone with every name interned at boot (app.boot's claim: sipua/names.py, where
# the free heap affords it), measured apart; no budget of its own (see docs/architecture.md,
# "The qstr pool cliff").
CLAIMED = ("booted", "tcp_registered", "in_call", "after_call")
# py/qstr.c: pools of 20, 40 ... 640 entries hold 1260 run-time names; the next one opens
# a pool of 1280 entries, one block (QSTR_ENTRY bytes each)
QSTR_CLIFF, QSTR_CLIFF_POOL = 1260, 1280
# Measured too, without a budget: the moments a board must have room for (the phases above
# are the phone settled): mid-resolution, the DNS code loaded and its last query out
# (tcp_resolving); the moment registration completes (udp_/tcp_registering; the DNS code is
# unloaded by then unless a resolution ended less than agent.DNS_IDLE_MS before); a call
# just set up (call_setup); a call from the far end just answered (call_in_setup), and 5 s
# later (call_in_answered: the server side went with the ACK of the 200; the INVITE's key
# in the stack absorbs its retransmissions until Timer L; in_call_in is the same call once
# that has gone too).
PEAKS = ("tcp_resolving", "udp_registering", "tcp_registering", "call_setup", "call_in_setup",
         "call_in_answered")
DNS_QUERIES = 3  # what resolving the zone below asks: NAPTR, SRV, A (uc1 is in the SRV's)
SETTLE = "simdrive.idle(5000)"
# in_call_in: the call from the far end 70 s after the answer (5 s settled, then this): the
# server side gone with the ACK, the INVITE's absorbed key with Timer L: what a long call
# keeps
LONG_CALL = "simdrive.idle(65000)"
SERVER_SIDE = ("sipua.sip.strans", "sipua.sip.uas")

DOMAIN = "airties.lab"
PHONE_IP = "127.0.9.1"  # addresses inside the simulation only: nothing is sent anywhere
PHONE_PORT = 5062
DNS_IP = "127.0.9.53"
UC2_IP = "127.0.9.27"  # SRV priority 1
UC1_IP = "127.0.9.26"  # SRV priority 2
FAR_IP = "127.0.9.4"
USER, PASSWORD, FAR_USER = "6903", "secret6903", "6904"
TTL = 3600
REFRESH_CHUNK = 25  # refreshes per runPython step (garbage is collected only between steps)
# Heap placements (the runner's pystack, words): each moves where the GC heap sits in the
# WebAssembly memory. The collector is conservative (any word that looks like a heap address
# keeps its block), and at one placement a stale word kept a hung-up call's agent and code:
# +5.5 KB in and after a call, moved by an edit to a function that never ran. Such a word can
# only add, so a phase's figure is the least of its placements. Three were not enough: an
# edit to SipStack.shed (never run here) read after_call +3.8 KB at 2048 and 4096 words and
# +12 KB at 8192 (booted too), and 67 920–67 984 B at 1024, 3072 and 5120.
PLACEMENTS = (1024, 2048, 3072, 4096, 5120, 8192)
for _path in (os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "bench")):
    if _path not in sys.path:
        sys.path.append(_path)  # sipfw.build, and upy_heap's module order


class HarnessError(Exception):
    pass


def node():
    return shutil.which("node") or "/usr/bin/node"


def check_installed():
    pkg = os.path.join(NODE_MODULES, "@micropython", "micropython-webassembly-pyscript")
    if not os.path.isdir(pkg):
        raise HarnessError("MicroPython's WebAssembly port is not installed: run `make setup` "
                           "(npm ci --prefix tools/heap32)")
    if not os.path.exists(node()):
        raise HarnessError("node not found: `make test-deps` installs Debian's nodejs")


def load_budgets(path=BUDGETS):
    with open(path) as f:
        return json.load(f)


# -- what goes into the interpreter's filesystem -----------------------------------------------
def board_tree(root, board="esp32"):
    """The board's files under ``root`` as ``sipfw flash`` lays them out for ``board`` (its
    ``mpy_arch`` and ``mpy_opt``: the ESP32 image, the budget's board); the items."""
    from sipfw import boards, build

    cfg = boards.board_configs()[board]
    return build.write_tree(FIRMWARE, root, cfg.get("mpy_arch", "host"), cfg.get("mpy_opt", 0))


def zone_answers():
    """question bytes -> whole answer (ID 0): the seed-shaped zone. NAPTR → SRV for _sip._tcp
    and _sip._udp → A for uc2 (priority 1) and uc1 (priority 2)."""
    import dns.message
    import dns.rrset

    d = DOMAIN + "."
    records = {
        (d, "NAPTR"): ['2 0 "s" "SIP+D2T" "" _sip._tcp.' + d,
                       '2 0 "s" "SIP+D2U" "" _sip._udp.' + d],
        ("_sip._tcp." + d, "SRV"): ["1 0 5060 uc2." + d, "2 0 5060 uc1." + d],
        ("_sip._udp." + d, "SRV"): ["1 0 5060 uc2." + d, "2 0 5060 uc1." + d],
        ("uc2." + d, "A"): [UC2_IP],
        ("uc1." + d, "A"): [UC1_IP],
    }
    out = {}
    for (name, rtype), rdatas in records.items():
        q = dns.message.make_query(name, rtype, use_edns=False)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        r.answer.append(dns.rrset.from_text_list(name, TTL, "IN", rtype, rdatas))
        wire = r.to_wire()
        end = 12
        while wire[end]:
            end += wire[end] + 1
        out[wire[12 : end + 5].lower()] = b"\0\0" + wire[2:]
    return out


def config(transport):
    return {
        "accounts": [{"label": USER, "user": USER, "register_name": USER,
                      "password": PASSWORD, "server": DOMAIN, "transport": transport,
                      "expires": 300, "redundancy": "successive",
                      "failback": {"mode": "new-requests", "timeout": 3600}}],
        "dns": {"servers": [DNS_IP + ":53"]},
        "sip": {"local_ip": PHONE_IP, "local_port": PHONE_PORT},
        # a handset's full-duplex path: every packet decoded and encoded (the defaults off a
        # board, silence/null, make no PCM at all and read ~2.5 KB less in a call)
        "audio": {"source": "echo", "sink": "echo"},
        "log": {"level": "info"},
    }


def sim_tree(root, transport):
    """The simulation beside the board's files: /lib (sim modules), /simnet.json, /config.json."""
    lib = os.path.join(root, "lib")
    os.makedirs(lib, exist_ok=True)
    for name in os.listdir(os.path.join(HERE, "sim")):
        if name.endswith(".py"):
            shutil.copy(os.path.join(HERE, "sim", name), lib)
    # the firmware's own MD5, under another name: the stand-in for a board's hashlib.md5
    shutil.copy(os.path.join(root, "sipua", "sip", "md5.mpy"), os.path.join(lib, "simmd5.mpy"))
    with open(os.path.join(lib, "simzone.py"), "w") as f:
        f.write("ANSWERS = %r\n" % zone_answers())
    net = {"dns": DNS_IP, "far": FAR_IP, "registrars": [
        {"ip": UC2_IP, "realm": DOMAIN, "password": PASSWORD, "silent_udp": transport == "udp"},
        {"ip": UC1_IP, "realm": DOMAIN, "password": PASSWORD}]}
    with open(os.path.join(root, "simnet.json"), "w") as f:
        json.dump(net, f)
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(config(transport), f)


# -- running ---------------------------------------------------------------------------------
def run(root, steps, timeout=600, pystack=PLACEMENTS[0]):
    """The steps in one fresh interpreter: a list of step records (see run.mjs)."""
    check_installed()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"root": root, "steps": [{"name": n, "code": c} for n, c in steps],
                   "pystack": pystack}, f)
        plan = f.name
    try:
        proc = subprocess.run([node(), RUNNER, plan], capture_output=True, text=True,
                              timeout=timeout, cwd=HERE)
    finally:
        os.unlink(plan)
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    failed = [r for r in records if r["error"]]
    if proc.returncode != 0 or failed or len(records) != len(steps) + 1:
        tail = "\n".join([*failed[0]["out"][-30:], failed[0]["error"]]) if failed else ""
        raise HarnessError("the WebAssembly run failed (exit %s) at step %s:\n%s\n%s" % (
            proc.returncode, failed[0]["step"] if failed else "?", tail, proc.stderr[-2000:]))
    return records


def facts(record):
    """A step's '@@name value' lines -> {name: [value, ...]}."""
    out = {}
    for line in record["out"]:
        if line.startswith("@@"):
            name, _, value = line[2:].partition(" ")
            out.setdefault(name, []).append(value)
    return out


def modules_in_order(items):
    """bench/upy_heap.py's dependency order, then any other module of the board's tree."""
    from upy_heap import MODULES

    names = [it.remote[:-4].replace("/", ".").removesuffix(".__init__") for it in items
             if it.remote.endswith(".mpy")]
    return list(MODULES) + sorted(n for n in names if n not in MODULES)


def import_root(workdir):
    """The board's files with an empty ``socket`` module: a board's is built in (and the
    firmware only names it at import time)."""
    root = os.path.join(workdir, "imports")
    if not os.path.isdir(root):
        shutil.copytree(os.path.join(workdir, "board"), root)
        os.makedirs(os.path.join(root, "lib"))
        open(os.path.join(root, "lib", "socket.py"), "w").close()
    return root


def import_code(mods):
    return "".join("try:\n import %s\nexcept ImportError as e:\n print('@@import_error', e)\n"
                   % m for m in mods)


def measure_imports(workdir, items):
    sizes = {it.remote[:-4].replace("/", ".").removesuffix(".__init__"): len(it.data)
             for it in items if it.remote.endswith(".mpy")}
    steps = [(m, import_code([m])) for m in modules_in_order(items)]
    recs = run(import_root(workdir), [("(socket)", "import socket"), *steps])[1:]
    out, prev = [], recs[0]
    for r in recs[1:]:
        err = facts(r).get("import_error")
        out.append({"module": r["step"], "heap": r["alloc"] - prev["alloc"],
                    "qstr_bytes": r["qstr"]["total_bytes"] - prev["qstr"]["total_bytes"],
                    "mpy": sizes.get(r["step"]), "error": err[0] if err else None})
        prev = r
    return {"modules": out, "total": recs[-1]["alloc"] - recs[0]["alloc"],
            "qstr": recs[-1]["qstr"], "empty": recs[0]["alloc"]}


# qstr pools (py/qstr.c): the strings made at run time go into pools of 20, 40, 80, ...
# entries, each a GC block of a 24-byte header plus a pointer, a 2-byte hash and a length per
# entry on a 32-bit port; a full pool is never grown, a new one twice its size is added.
QSTR_FIRST_POOL = 20
QSTR_ENTRY = 7
QSTR_POOL_HEADER = 24


def pool_block(entries):
    """The GC block (16-byte units) of one qstr pool of ``entries``."""
    return (QSTR_POOL_HEADER + entries * QSTR_ENTRY + 15) // 16 * 16


def pool_bytes(n):
    """The bytes of pools MicroPython allocates to hold ``n`` run-time qstrs."""
    total = cap = 0
    alloc = QSTR_FIRST_POOL
    while cap < n:
        total += pool_block(alloc)
        cap += alloc
        alloc *= 2
    return total


def board_qstr_cost(q, sim_q):
    """What the phone's qstrs would cost without the simulation's in the same pools: its
    strings, and the pools a board allocates for its own count. (Pools never shrink: the
    qstrs of modules loaded and unloaded again stay counted, as on a board.)"""
    n = q["qstrs"] - sim_q["qstrs"]
    return q["data_bytes"] - sim_q["data_bytes"] + pool_bytes(n)


def scenario(workdir, transport, steps, name=None):
    """The phases at each heap placement (``PLACEMENTS``); each step's figure is the least
    of them, its facts the first placement's. ``name``: its run's folder (default the
    transport's)."""
    runs = [placed(workdir, transport, steps, p, name) for p in PLACEMENTS]
    out = runs[0]
    for i, step in enumerate(out["steps"]):
        step["placements"] = [r["steps"][i]["phone"] for r in runs]
        step["phone"] = min(step["placements"])
    return out


def placed(workdir, transport, steps, pystack, name=None):
    root = os.path.join(workdir, "%s-%d" % (name or transport, pystack))
    shutil.copytree(os.path.join(workdir, "board"), root)
    sim_tree(root, transport)
    recs = run(root, [("setup", "import simdrive\nsimdrive.setup()"), *steps], pystack=pystack)
    empty, setup = recs[0], recs[1]
    sim = setup["alloc"] - empty["alloc"]
    sim_q = setup["qstr"]
    out = {"empty": empty["alloc"], "sim": sim, "sim_qstr_bytes": sim_q["total_bytes"],
           "steps": []}
    for r in recs[2:]:
        q = r["qstr"]
        # everything but the qstr pools, less the simulation's; then the phone's own qstrs
        # as a board pools them (see board_qstr_cost)
        rest = r["alloc"] - q["total_bytes"] - (sim - sim_q["total_bytes"])
        qstr = board_qstr_cost(q, sim_q)
        out["steps"].append({"step": r["step"], "phone": rest + qstr, "alloc": r["alloc"],
                             "qstr": {"qstrs": q["qstrs"] - sim_q["qstrs"], "bytes": qstr},
                             "facts": facts(r)})
    return out


def check(step, state=None, server=None, calls=None):
    """Raise unless the firmware's own status says what the phase claims."""
    f = step["facts"]
    got = (f.get("state") or ["?"])[-1]
    if state and got != state:
        raise HarnessError("%s: the phone's state is %s, not %s" % (step["step"], got, state))
    srv = (f.get("server") or ["?"])[-1]
    if server and not srv.startswith(server):
        raise HarnessError("%s: the phone's server is %s, not %s" % (step["step"], srv, server))
    if calls is not None and (f.get("calls") or [""])[-1] != calls:
        raise HarnessError("%s: calls %s, not %s" % (step["step"], f.get("calls"), calls))


def check_gone(step, modules):
    """Raise if any of ``modules`` is loaded in the phase (the phone's module list)."""
    left = sorted(set(modules) & set(step["facts"]["modules"][-1].split()))
    if left:
        raise HarnessError("%s: still loaded: %s" % (step["step"], " ".join(left)))


def check_rtp(call, setup):
    """The settled call carried audio both ways: 5 s of 20 ms packets (250), less slack."""
    rtp = [int(x) for x in call["facts"]["rtp"][-1].split()]
    before = [int(x) for x in setup["facts"]["rtp"][-1].split()]
    if rtp[0] - before[0] < 200 or rtp[3] - before[3] < 200:
        raise HarnessError("%s: RTP did not flow both ways (far end got %d, phone received "
                           "%d)" % (call["step"], rtp[0] - before[0], rtp[3] - before[3]))


def seen(step, ip):
    """(methods the registrar at ``ip`` saw, its REGISTERs answered 200)."""
    for line in step["facts"].get("seen", ()):
        sip, methods, ok = line.split(" ")
        if sip == ip:
            return dict(kv.split("=") for kv in methods.split(",") if kv), int(ok)
    return {}, 0


def split(step, modules):
    """What a phase holds, roughly: the modules loaded then, each at what importing it alone
    kept (its code, objects and new qstrs: ``measure_imports``), and the rest: what the
    running phone made (sockets, buffers, transactions, registrations, calls, config)."""
    cost = {m["module"]: m["heap"] for m in modules}
    loaded = step["facts"]["modules"][-1].split()
    code = sum(cost.get(m, 0) for m in loaded)
    return {"modules": code, "state": step["phone"] - code, "loaded": sorted(loaded)}


def tcp_steps(claim=False):
    """The TCP scenario's steps up to the refreshes: (phase, code run on the port);
    ``claim``: every name interned at boot (sipua/names.py)."""
    return [("booted", "simdrive.boot(claim=%r)" % claim),
            ("tcp_resolving", "simdrive.resolving(%d)" % DNS_QUERIES),
            ("tcp_registering", "simdrive.register()"),
            ("tcp_registered", SETTLE),
            ("call_setup", "simdrive.call(%r)" % FAR_USER),
            ("in_call", SETTLE),
            ("after_call", "simdrive.hangup()"),
            ("after_ping", "simdrive.options_ping(%r, %d)" % (PHONE_IP, PHONE_PORT))]


def loaded_modules(phases=("tcp_registered", "in_call")):
    """{phase: the firmware modules loaded then}, from one run of the TCP scenario at the
    first heap placement (sys.modules as the phone left it: what it keeps)."""
    workdir = tempfile.mkdtemp(prefix="heap32-")
    try:
        board_tree(os.path.join(workdir, "board"))
        steps = placed(workdir, "tcp", tcp_steps(), PLACEMENTS[0])["steps"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    by = {s["step"]: s for s in steps}
    check(by["tcp_registered"], "registered")
    check(by["in_call"], "registered", calls="active")
    return {p: sorted(by[p]["facts"]["modules"][-1].split()) for p in phases}


def measure(refreshes=1000, firmware=FIRMWARE):
    """Every figure: {"phases", "phase_facts", "modules", "mpy_image", "sim", ...}."""
    workdir = tempfile.mkdtemp(prefix="heap32-")
    try:
        items = board_tree(os.path.join(workdir, "board"))
        image = sum(len(it.data) for it in items)
        imports = measure_imports(workdir, items)
        udp = scenario(workdir, "udp", [("booted", "simdrive.boot()"),
                                        ("udp_registering", "simdrive.register()"),
                                        ("udp_failover", SETTLE)])
        chunks = []
        left = refreshes
        while left > 0:
            n = min(REFRESH_CHUNK, left)
            # settled after each chunk: the last refresh may have just re-resolved
            chunks.append(("refreshes", "simdrive.refresh(%d); %s" % (n, SETTLE)))
            left -= n
        tcp = scenario(workdir, "tcp", tcp_steps() + chunks + [
            ("call_in_setup", "simdrive.call_in(%r, %d, %r, %r)"
             % (PHONE_IP, PHONE_PORT, USER, FAR_USER)),
            ("call_in_answered", SETTLE),
            ("in_call_in", LONG_CALL),
            ("after_call_in", "simdrive.far_hangup()"),
            ("life", "simdrive.life()")])
        claimed = scenario(workdir, "tcp", [s for s in tcp_steps(claim=True)
                                            if s[0] != "after_ping"], name="claimed")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    by = {s["step"]: s for s in tcp["steps"]}  # the last refresh chunk wins
    uf = udp["steps"][2]
    check(uf, "registered", "udp:uc1." + DOMAIN)
    silent, _ = seen(uf, UC2_IP)
    if not silent.get("silent"):
        raise HarnessError("udp_failover: the silent server saw no REGISTER")
    if seen(uf, UC1_IP)[1] < 1:
        raise HarnessError("udp_failover: the second server granted no registration")
    check(by["tcp_registered"], "registered", "tcp:uc2." + DOMAIN)
    if "sipua.dns.resolver" not in by["tcp_resolving"]["facts"]["modules"][-1].split():
        raise HarnessError("tcp_resolving: the DNS code is not loaded")
    if by["tcp_registered"]["facts"]["dns_queries"][-1] != str(DNS_QUERIES):
        raise HarnessError("tcp_registered: %s DNS queries, tcp_resolving waits for %d" % (
            by["tcp_registered"]["facts"]["dns_queries"][-1], DNS_QUERIES))
    for call, setup, after in (("in_call", "call_setup", "after_call"),
                               ("in_call_in", "call_in_setup", "after_call_in")):
        check(by[call], "registered", calls="active")
        check_rtp(by[call], by[setup])
        check(by[after], "registered", calls="")  # an ended call is dropped
    check(by["call_in_answered"], "registered", calls="active")
    check_rtp(by["call_in_answered"], by["call_in_setup"])
    # the server side went with the ACK of the 200: gone 5 s in, and in the long call
    check_gone(by["call_in_answered"], SERVER_SIDE)
    check_gone(by["in_call_in"], SERVER_SIDE)
    # the far end's call: the phone rang, answered (the only call then) and took its BYE
    for p, keys in (("in_call_in", ("answered_180_INVITE", "answered_200_INVITE")),
                    ("after_call_in", ("answered_200_BYE",))):
        said = seen(by[p], UC2_IP)[0]
        for key in keys:
            if said.get(key) != "1":
                raise HarnessError("%s: the far end saw %s %s times, not once" % (
                    p, key, said.get(key, 0)))
    if refreshes:
        check(by["refreshes"], "registered", "tcp:uc2." + DOMAIN)
        first, last = seen(by["tcp_registered"], UC2_IP)[1], seen(by["refreshes"], UC2_IP)[1]
        if last - first < refreshes:
            raise HarnessError("refreshes: %d granted, %d asked" % (last - first, refreshes))
    steps = {"booted": by["booted"], "udp_failover": uf}
    check(by["after_ping"], "registered", "tcp:uc2." + DOMAIN)
    if not seen(by["after_ping"], UC2_IP)[0].get("answered_200"):
        raise HarnessError("after_ping: the phone did not answer the registrar's OPTIONS")
    check(by["life"], "registered", "tcp:uc2." + DOMAIN)
    cl = {s["step"]: s for s in claimed["steps"]}
    check(cl["in_call"], "registered", calls="active")
    check(cl["after_call"], "registered", calls="")
    for p in ("tcp_registered", "in_call", "after_call", "refreshes", "after_ping",
              "in_call_in", "after_call_in", "life"):
        if p in by and (p != "refreshes" or refreshes):
            steps[p] = by[p]
    curve = [s for s in tcp["steps"] if s["step"] == "refreshes"]
    return {
        "port": "MicroPython WebAssembly port (32-bit), .mpy files, live heap after a collection",
        "refreshes": refreshes,
        "phases": {p: s["phone"] for p, s in steps.items()},
        "peaks": {"tcp_resolving": by["tcp_resolving"]["phone"],
                  "udp_registering": udp["steps"][1]["phone"],
                  "tcp_registering": by["tcp_registering"]["phone"],
                  "call_setup": by["call_setup"]["phone"],
                  "call_in_setup": by["call_in_setup"]["phone"],
                  "call_in_answered": by["call_in_answered"]["phone"]},
        # phone = alloc - sim, qstr pools as a board has them (see board_qstr_cost)
        "phase_detail": {p: {"alloc": s["alloc"], "qstr": s["qstr"],
                             "modules": len(s["facts"]["modules"][-1].split())}
                         for p, s in steps.items()},
        "phase_split": {p: split(s, imports["modules"]) for p, s in steps.items()},
        "placements": {"pystack_words": PLACEMENTS,
                       "phases": {p: s["placements"] for p, s in steps.items()}},
        "phase_facts": {p: {k: v if k == "seen" else v[-1] for k, v in s["facts"].items()
                            if k != "modules"} for p, s in steps.items()},
        "refresh_curve": [s["phone"] for s in curve],
        # the names: interned per phase (lazily), and the phone with all of them at boot
        "names": {"cliff": QSTR_CLIFF,
                  "next_pool_bytes": pool_block(QSTR_CLIFF_POOL),
                  "qstrs": {p: s["qstr"]["qstrs"] for p, s in steps.items()},
                  "claimed": {p: cl[p]["phone"] for p in CLAIMED},
                  "claimed_qstrs": {p: cl[p]["qstr"]["qstrs"] for p in CLAIMED},
                  "claimed_peak_call_setup": cl["call_setup"]["phone"]},
        "booted_udp_config": udp["steps"][0]["phone"],
        "mpy_image": image,
        "modules": imports["modules"],
        "modules_total": imports["total"],
        "modules_qstr": imports["qstr"],
        "interpreter_empty": imports["empty"],
        "sim": {"tcp": tcp["sim"], "udp": udp["sim"], "qstr_bytes": tcp["sim_qstr_bytes"]},
    }
