"""Link loss and a new address on the wire (issue 13): the agent on a virtual board against
the lab, its address really taken away and given back, or replaced by another.

Inside the test's private network namespace the loopback's 127.0.0.0/8 local route is
replaced by the lab's own 127.0.0.0/24 and one /32 for the board, so removing the board's
address is a link loss for it (``hal.unix.link``: its address can no longer be bound) while
the lab keeps running. Restored at the end. Those tests (marked ``own_netns``) never run
in the host's namespace: ``test_own_netns_tests`` runs them in a new one (``unshare --net``)
with a lab of its own, and passes only if they all pass there.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import labctl
import pytest
from agentboard import AgentBoard, board_config
from test_hostile import UC2, contacts, registered_on_uc2

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]

BOARD_IP = "127.0.7.50"
NEW_IP = "127.0.7.51"
PORT = 5070


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@pytest.fixture
def own_loopback():
    # a new namespace (unshare --net) has lo alone: never rewire the host's loopback
    assert ip("-o", "link").stdout.count("\n") == 1, "only in a private network namespace"
    ip("route", "add", "local", "127.0.0.0/24", "dev", "lo", "table", "local")
    ip("route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
    ip("addr", "add", BOARD_IP + "/32", "dev", "lo")
    yield
    ip("addr", "del", BOARD_IP + "/32", "dev", "lo", check=False)
    ip("addr", "del", NEW_IP + "/32", "dev", "lo", check=False)
    ip("route", "add", "local", "127.0.0.0/8", "dev", "lo", "table", "local", check=False)
    ip("route", "del", "local", "127.0.0.0/24", "dev", "lo", "table", "local", check=False)


def test_own_netns_tests(lab):
    """Runs this file's own_netns tests in a new network namespace with a lab of its own
    (its own run dir: the host's lab stays as it is) and passes only if they all pass."""
    from conftest import OWN_NETNS_ENV
    from sipfw.bench.pbx import stop_lab_dir

    run_dir = tempfile.mkdtemp(prefix="sipfw-own-netns-lab-")
    env = dict(os.environ, **{OWN_NETNS_ENV: "1", "SIPFW_LAB_RUN_DIR": run_dir})
    cmd = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
           sys.executable, "-m", "pytest", "-q", "-s", "-m", "own_netns", __file__]
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        stop_lab_dir(run_dir)
    print(p.stdout[-3000:], p.stderr[-2000:])
    assert p.returncode == 0 and "3 passed" in p.stdout, p.stdout[-3000:]  # the three below


@pytest.mark.own_netns
def test_link_down_20_s_then_up_registers_again_within_2_s(healthy, own_loopback, tmp_path):
    lab = healthy
    b = AgentBoard(tmp_path / "board", board_config(lab, BOARD_IP, PORT), heap="512k")
    b.start()
    try:
        registered_on_uc2(b)
        assert b.status()["link"] == "up"
        since = b.mark()
        down_at = time.monotonic()
        ip("addr", "del", BOARD_IP + "/32", "dev", "lo")
        e = b.wait("net", "link_down", 4, since=since, ip=BOARD_IP)
        noticed = e["host_t"] - down_at
        time.sleep(20 - noticed)
        st = b.status()
        assert (st["link"], st["link_lost"]) == ("down", 1), st
        since = b.mark()
        up_at = time.monotonic()
        ip("addr", "add", BOARD_IP + "/32", "dev", "lo")
        up = b.wait("net", "link_up", 4, since=since, ip=BOARD_IP)
        reg = registered_on_uc2(b, since=since, timeout=6)
        took = reg["host_t"] - up_at
        st = b.status()
        print("\nlink down noticed after %d ms; re-registered %d ms after the link came back;"
              " outage_ms=%s" % (noticed * 1000, took * 1000, st["outage_ms"]))
        assert noticed <= 2.0 and took <= 2.0, (noticed, took)
        assert (st["link"], st["link_lost"]) == ("up", 1), st
        assert 19000 <= int(up["outage_ms"]) <= 23000 and st["outage_ms"] == int(up["outage_ms"])
        assert st["accounts"][0]["state"] == "registered"
        assert len(contacts(lab, "uc2", BOARD_IP)) == 1
        assert UC2 in st["accounts"][0]["server"]["ip"]
        assert not b.events("sched", "callback_error") and not b.events("app", "agent_failed")
    finally:
        b.retire()


@pytest.mark.own_netns
def test_a_new_address_replaces_the_binding_within_2_s(healthy, own_loopback, tmp_path):
    """The unix port keeps its configured ``sip.local_ip`` (it cannot tell which of a
    host's addresses is meant): the old one going is a link loss, and the new one comes
    with the config that names it (``config reload``). Registered from the new address at
    once, and the instance id makes uc2 replace the binding: only the new one is left."""
    lab = healthy
    cfg = board_config(lab, BOARD_IP, PORT)
    b = AgentBoard(tmp_path / "board", cfg, heap="512k")
    b.start()
    try:
        registered_on_uc2(b)
        assert len(contacts(lab, "uc2", BOARD_IP)) == 1
        since = b.mark()
        ip("addr", "add", NEW_IP + "/32", "dev", "lo")
        ip("addr", "del", BOARD_IP + "/32", "dev", "lo")
        b.wait("net", "link_down", 4, since=since, ip=BOARD_IP)
        cfg["sip"]["local_ip"] = NEW_IP
        (b.root / "config.json").write_text(json.dumps(cfg))
        t0 = time.monotonic()
        assert b.cmd("config reload")["accounts"] == 1
        reg = registered_on_uc2(b, since=since, timeout=6)
        took = reg["host_t"] - t0
        time.sleep(0.5)  # the old agent's un-REGISTER (from the vanished address) is over
        new, old = contacts(lab, "uc2", NEW_IP), contacts(lab, "uc2", BOARD_IP)
        urn = (b.root / "instance.id").read_text()
        sock = "unix:%s" % (lab.run_dir / "uc2" / "kamailio_ctl")
        out = labctl.run(["kamcmd", "-s", sock, "ul.lookup", "location", "s:6903"]).stdout
        print("\nnew address: registered with the new Contact %d ms after the config named "
              "it; uc2 bindings: new %d, old %d" % (took * 1000, len(new), len(old)))
        assert took <= 2.0, took
        assert len(new) == 1 and old == [], (new, old)
        assert out.count(urn) == 1 and out.count("Contact:") == 1, out
        st = b.status()
        assert st["link"] == "up" and st["accounts"][0]["state"] == "registered", st
        assert not b.events("sched", "callback_error") and not b.events("app", "agent_failed")
    finally:
        b.retire()


@pytest.mark.own_netns
def test_the_address_the_os_gives_is_followed_within_2_s(healthy, own_loopback, tmp_path):
    """Without ``sip.local_ip`` the unix port takes the source address the OS picks toward
    the DNS server (here a route naming BOARD_IP as its source, as a DHCP client's route
    names the leased address) and follows it. Renumbered as DHCP does (the new address
    added, the route moved to it, the old address removed), the phone notices by itself,
    re-registers from the new address within 2 s, and uc2 keeps one binding, the new one."""
    lab = healthy
    cfg = board_config(lab, BOARD_IP, PORT)
    del cfg["sip"]["local_ip"]
    dns = labctl.DNS_IP + "/32"
    ip("route", "add", "local", dns, "dev", "lo", "table", "local", "src", BOARD_IP)
    b = AgentBoard(tmp_path / "board", cfg, heap="512k")
    try:
        b.start()
        assert b.events("net", "up")[-1]["ip"] == BOARD_IP  # learnt, not configured
        registered_on_uc2(b)
        assert len(contacts(lab, "uc2", BOARD_IP)) == 1
        since = b.mark()
        t0 = time.monotonic()
        ip("addr", "add", NEW_IP + "/32", "dev", "lo")
        ip("route", "replace", "local", dns, "dev", "lo", "table", "local", "src", NEW_IP)
        ip("addr", "del", BOARD_IP + "/32", "dev", "lo")
        moved = b.wait("net", "address_changed", 4, since=since, new=NEW_IP)
        reg = registered_on_uc2(b, since=since, timeout=6)
        noticed, took = moved["host_t"] - t0, reg["host_t"] - t0
        time.sleep(0.5)
        new, old = contacts(lab, "uc2", NEW_IP), contacts(lab, "uc2", BOARD_IP)
        print("\nOS renumbered the board: noticed after %d ms, registered with the new Contact "
              "%d ms after the change; uc2 bindings: new %d, old %d"
              % (noticed * 1000, took * 1000, len(new), len(old)))
        assert moved["old"] == BOARD_IP and took <= 2.0, (moved, took)
        assert len(new) == 1 and old == [], (new, old)
        st = b.status()
        assert st["link"] == "up" and st["accounts"][0]["state"] == "registered", st
        assert not b.events("sched", "callback_error") and not b.events("app", "agent_failed")
    finally:
        b.retire()
        ip("route", "del", "local", dns, "dev", "lo", "table", "local", check=False)
