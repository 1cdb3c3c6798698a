"""The 32-bit heap guard: the board's .mpy firmware on MicroPython's WebAssembly port,
driven through its phases over the simulated network (tools/heap32), must stay under each
phase's guard in board_configs/budgets/heap32.json (`make bench` runs 1000 refreshes; a few
here)."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(ROOT, "tools", "heap32")]

import harness  # noqa: E402

REFRESHES = 25


@pytest.fixture(scope="module")
def figures():
    return harness.measure(refreshes=REFRESHES)


def test_budgets_file_names_every_phase_with_a_guard_at_or_above_its_budget():
    b = harness.load_budgets()
    assert b["unit"] == "bytes"
    assert set(b["phases"]) == set(harness.PHASES)
    for name, entry in [*b["phases"].items(), ("mpy_image", b["mpy_image"])]:
        assert isinstance(entry["budget"], int) and entry["budget"] > 0, name
        assert isinstance(entry["guard"], int) and entry["guard"] >= entry["budget"], name


def test_every_phase_within_its_guard(figures):
    b = harness.load_budgets()
    rows = [(p, figures["phases"][p], b["phases"][p]) for p in harness.PHASES]
    rows.append(("mpy_image", figures["mpy_image"], b["mpy_image"]))
    print("\n%-16s %9s %9s %9s" % ("phase", "bytes", "guard", "budget"))
    for name, got, entry in rows:
        print("%-16s %9d %9d %9d" % (name, got, entry["guard"], entry["budget"]))
    over = ["%s: %d bytes > guard %d (budget %d)" % (n, got, e["guard"], e["budget"])
            for n, got, e in rows if got > e["guard"]]
    assert not over, "32-bit heap over its guard: " + "; ".join(over)


def test_the_phases_really_happened(figures):
    """A figure counts only if the phone got there: its own status and the peers agree."""
    facts = figures["phase_facts"]
    assert facts["udp_failover"]["server"].startswith("udp:uc1.")  # the fallback server
    udp_seen = " ".join(facts["udp_failover"]["seen"])
    assert "127.0.9.27 silent=" in udp_seen  # the first server got REGISTERs, said nothing
    assert facts["tcp_registered"]["state"] == "registered"
    assert facts["tcp_registered"]["server"].startswith("tcp:uc2.")
    assert facts["in_call"]["calls"] == "active"
    assert facts["after_call"]["calls"] == ""
    granted = int(facts["refreshes"]["seen"][0].split()[-1])
    assert granted >= REFRESHES + 1  # the first registration and every refresh: 200 OK
    assert "BYE=1" in facts["after_call"]["seen"][0]
    # the registrar's OPTIONS ping reached the phone over its connection and was answered
    assert facts["after_ping"]["state"] == "registered"
    assert "answered_200=1" in facts["after_ping"]["seen"][0]
    # a call from the far end: the phone rang (180), answered (200, ACKed), carried audio
    # both ways for 70 s, took the far end's BYE and dropped the call
    assert facts["in_call_in"]["calls"] == "active"
    call_in = facts["in_call_in"]["seen"][0]
    assert "answered_180_INVITE=1" in call_in and "answered_200_INVITE=1" in call_in
    got, sent, _, received = (int(x) for x in facts["in_call_in"]["rtp"].split())
    assert got - 3000 >= int(facts["after_ping"]["rtp"].split()[0])  # 70 s of 20 ms packets
    assert received >= 3000 and sent == got
    assert facts["after_call_in"]["calls"] == ""
    assert "answered_200_BYE=1" in facts["after_call_in"]["seen"][0]
    # the server side an incoming call loads is forgotten with the ACK of the 200: the call
    # keeps what a call to the far end does, 5 s in (the harness checks it has gone then)
    # as 70 s in, so the first seconds fit the one-call guard too
    split = figures["phase_split"]
    for p in ("in_call_in", "after_call_in"):
        assert not {"sipua.sip.strans", "sipua.sip.uas"} & set(split[p]["loaded"]), p
    assert split["in_call_in"]["loaded"] == split["in_call"]["loaded"]
    guard = harness.load_budgets()["phases"]["in_call_in"]["guard"]
    assert figures["peaks"]["call_in_answered"] <= guard
    # the live heap is measured, not assumed: the firmware is most of it
    assert figures["phases"]["tcp_registered"] > figures["phases"]["booted"] > 8192
    assert len(figures["refresh_curve"]) == 1


def test_names_claimed_at_boot_are_every_name_a_long_life_interns(figures):
    """The qstr pool cliff (sipua/names.py): a phone that has run every code path holds the
    names of every module; claimed at boot, they are all in before the first REGISTER and a
    call interns nothing new but the few names made at run time."""
    n = figures["names"]
    assert figures["phase_facts"]["life"]["state"] == "registered"
    assert n["qstrs"]["life"] > n["qstrs"]["after_ping"] + 100  # the paths not run before
    assert n["claimed_qstrs"]["booted"] >= n["qstrs"]["life"] - 10
    assert n["claimed_qstrs"]["in_call"] - n["claimed_qstrs"]["booted"] <= 10
    # up front, the claim keeps no more than what a long life keeps anyway
    assert n["claimed"]["after_call"] <= figures["phases"]["life"]
    assert n["claimed"]["booted"] > figures["phases"]["booted"] + 10_000


def test_a_call_without_audio_both_ways_fails_the_run():
    setup = {"step": "call_in_setup", "facts": {"rtp": ["10 10 0 10"]}}
    call = {"step": "in_call_in", "facts": {"rtp": ["260 260 1 10"]}}  # the phone got none
    with pytest.raises(harness.HarnessError, match="in_call_in: RTP did not flow both ways"):
        harness.check_rtp(call, setup)
    call["facts"]["rtp"] = ["260 260 1 260"]
    harness.check_rtp(call, setup)


def test_a_server_side_still_loaded_in_the_long_call_fails_the_run():
    step = {"step": "in_call_in", "facts": {"modules": ["sipua sipua.sip.call sipua.sip.uas"]}}
    with pytest.raises(harness.HarnessError, match=r"in_call_in: still loaded: sipua\.sip\.uas$"):
        harness.check_gone(step, harness.SERVER_SIDE)
    step["facts"]["modules"] = ["sipua sipua.sip.call"]
    harness.check_gone(step, harness.SERVER_SIDE)


def test_a_phase_that_did_not_happen_fails_the_run():
    step = {"step": "tcp_registered", "facts": {"state": ["registering"], "server": ["?"]}}
    with pytest.raises(harness.HarnessError, match="registering, not registered"):
        harness.check(step, "registered")
