"""baresip 1.0 (Debian baresip-core) in the same lab and the same scenarios as
bench_failover.py: start → registered, uc2 stopped, uc2 silent. Not run by `make bench`
(the silent case alone takes ~96 s); run by hand as root:

    python3 bench/compare_baresip.py [--json PATH]

baresip's DNS client binds 0.0.0.0/:: (docs/architecture.md, "Agent"), so the script runs
itself in a fresh network namespace (`unshare -n`, only `lo` in it) with a lab of its own:
nothing it does can leave loopback, and it cannot disturb a lab running outside. Times are
host wall clock from process start to baresip's "200 OK ... [1 binding]" line.
"""

import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sipfw.procs import stop_process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))

# Expires 180 as the seed (and the board's lab config), so the 423 step happens; no outbound
# proxy: baresip finds the servers by NAPTR/SRV, as the board does.
CONFIG = dict(sip_port=5080, modules=("g711",), apps=("account", "menu"))
ACCOUNT = dict(user="6903", regint=180)
SCENARIOS = (("boot_to_registered_ms", None, 20), ("failover_refused_ms", "stop", 30),
             ("failover_silent_ms", "silence", 150))


def one(lab, labctl, conf_dir, fault, timeout):
    for name in labctl.SERVERS:
        lab.unsilence(name)
        lab.start(name)
    if fault:
        getattr(lab, fault)("uc2")
    t0 = time.monotonic()
    p = subprocess.Popen(["baresip", "-f", conf_dir], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.PIPE, text=True)
    took = None
    try:
        while time.monotonic() < t0 + timeout:
            ready, _, _ = select.select([p.stdout], [], [], 0.2)
            if not ready:
                continue
            line = p.stdout.readline()
            if not line:
                break
            if re.search(r"200 OK .*\[\d+ binding", line):
                took = time.monotonic() - t0
                break
    finally:
        stop_process(p, grace_s=5)  # baresip unregisters on SIGTERM
        for name in labctl.SERVERS:
            lab.unsilence(name)
    return None if took is None else int(took * 1000)


def inside(json_path):
    import baresipctl
    import labctl

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        lab = labctl.Lab(run_dir=Path(tmp) / "run")
        lab.up()
        conf = baresipctl.write_config(Path(tmp) / "baresip", baresipctl.config_text(**CONFIG),
                                       baresipctl.account_line(**ACCOUNT))
        out = {}
        try:
            for name, fault, timeout in SCENARIOS:
                out[name] = one(lab, labctl, str(conf), fault, timeout)
                print("%-24s %s ms" % (name, out[name]), flush=True)
        finally:
            lab.down()
    out["client"] = "baresip 1.0 (baresip-core), TCP via NAPTR"
    print(json.dumps(out, sort_keys=True))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, sort_keys=True)


def main():
    json_path = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    if os.environ.get("SIPFW_IN_NETNS") == "1":
        inside(json_path)
        return 0
    if os.geteuid() != 0:
        print("compare_baresip needs root (a network namespace, the lab)", file=sys.stderr)
        return 1
    env = dict(os.environ, SIPFW_IN_NETNS="1")
    return subprocess.call(["unshare", "-n", sys.executable, *sys.argv], env=env)


if __name__ == "__main__":
    sys.exit(main())
