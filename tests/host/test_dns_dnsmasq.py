"""The seed's airties walk against a real DNS server (dnsmasq on 127.0.1.53), three ways:
the firmware code on CPython, the `sipfw resolve` CLI, and the firmware on MicroPython."""

import json
import os
import subprocess
import sys

import pytest
from dnsmasq_zone import DOMAIN, EXPECTED, Dnsmasq

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def dns():
    d = Dnsmasq().start()
    yield d
    d.cleanup()


def test_firmware_locator_on_cpython(dns):
    from sipua.dns.host import as_dict, locate_blocking
    from sipua.dns.locator import Locator
    from sipua.dns.resolver import Resolver
    from sipua.sched import Scheduler

    sched = Scheduler()
    res = Resolver(sched, [dns.server])
    seen = []
    res.trace = lambda *a: seen.append((a[2], a[3]))
    targets, err = locate_blocking(sched, Locator(sched, res), "sip:6903@" + DOMAIN, 10000)
    assert err is None
    assert [as_dict(t) for t in targets] == EXPECTED
    assert targets.ttl == 60  # local-ttl=60 on every record
    # dnsmasq sends the A records as glue with the SRVs: no A queries needed.
    assert sorted(seen) == sorted([(DOMAIN, 35), ("_sip._tcp." + DOMAIN, 33),
                                   ("_sip._udp." + DOMAIN, 33)])


def sipfw(*args):
    return subprocess.run([os.path.join(BIN, "sipfw"), "resolve", *args], capture_output=True,
                          text=True, timeout=60)


def test_cli_json(dns):
    p = sipfw("--json", "--dns", dns.server, DOMAIN)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == EXPECTED


def test_cli_table_and_verbose(dns):
    p = sipfw("--verbose", "--dns", dns.server, DOMAIN)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["SIP", "server", "NAPTR", "SRV", "host", "priority", "weight",
                                "port", "IP", "transport"]
    assert lines[2].split() == [DOMAIN, "_sip._tcp." + DOMAIN, "uc2." + DOMAIN, "1", "0",
                                "5060", "127.0.1.27", "TCP"]
    assert lines[4].split() == ["_sip._udp." + DOMAIN, "uc2." + DOMAIN, "1", "0", "5060",
                                "127.0.1.27", "UDP"]
    queries = [x for x in p.stderr.splitlines() if x.startswith(";;")]
    assert len(queries) == 3 and all(" ms " in q for q in queries)


def test_cli_nothing_found_prints_empty_list_and_fails(dns):
    p = sipfw("--json", "--dns", dns.server, "nowhere." + DOMAIN)
    assert p.returncode != 0 and p.stdout.strip() == "[]"
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_cli_silent_server_and_bad_arguments_never_trace():
    p = sipfw("--json", "--timeout", "1", "--dns", "127.0.1.54:9", DOMAIN)
    assert p.returncode != 0 and p.stdout.strip() == "[]" and "Traceback" not in p.stderr
    p = sipfw("--json", "--dns", "not-an-ip", DOMAIN)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_firmware_locator_on_micropython(dns, tmp_path):
    # Compiled as `sipfw flash` puts it on a board: run from source, the compiler's own
    # heap counted too, and the margin at 100K came to depend on the checkout path's length
    # (every module's file name is kept as a string).
    from sipfw.build import write_tree

    write_tree(os.path.join(ROOT, "firmware"), str(tmp_path))
    upy = os.path.join(BIN, "micropython")
    env = dict(os.environ, MICROPYPATH=str(tmp_path))
    p = subprocess.run([upy, "-X", "heapsize=100K", os.path.join(ROOT, "tests", "host",
                                                                  "upy_locate.py"),
                        dns.server, DOMAIN], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["error"] is None and out["targets"] == EXPECTED and out["ttl"] == 60
