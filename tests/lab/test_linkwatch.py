"""Link loss on the wire (issue 13): the agent on a virtual board against the lab, its
address really taken away and given back.

Inside the test's private network namespace the loopback's 127.0.0.0/8 local route is
replaced by the lab's own 127.0.0.0/24 and one /32 for the board, so removing the board's
address is a link loss for it (``hal.unix.link``: its address can no longer be bound) while
the lab keeps running. Restored at the end. Refuses to run in the host's namespace.
"""

import subprocess
import time

import pytest
from agentboard import AgentBoard, board_config
from test_hostile import UC2, contacts, registered_on_uc2

pytestmark = pytest.mark.lab

BOARD_IP = "127.0.7.50"
PORT = 5070


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@pytest.fixture
def own_loopback():
    if ip("-o", "link").stdout.count("\n") != 1:  # a new namespace (unshare --net): lo alone
        pytest.skip("rewires the loopback: only inside a private network namespace "
                    "(unshare --net)")
    ip("route", "add", "local", "127.0.0.0/24", "dev", "lo", "table", "local")
    ip("route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
    ip("addr", "add", BOARD_IP + "/32", "dev", "lo")
    yield
    ip("addr", "del", BOARD_IP + "/32", "dev", "lo", check=False)
    ip("route", "add", "local", "127.0.0.0/8", "dev", "lo", "table", "local", check=False)
    ip("route", "del", "local", "127.0.0.0/24", "dev", "lo", "table", "local", check=False)


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
