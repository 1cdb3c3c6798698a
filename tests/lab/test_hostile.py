"""A hostile network, on the wire (issue 13): the agent on a virtual board against the lab.

- ``sip.accept_from: servers`` (the default): a stranger (sipp on another loopback address,
  not a registrar) sends OPTIONS and INVITE straight to the board: no answer, no ring, the
  drops counted in ``status`` and logged; the registrar's own INVITE still rings.
  ``accept_from: any`` answers the stranger again.
- TLS: uc2's certificate made wrong three ways (unknown CA, wrong name, expired): refused,
  ``tls_refused`` with the reason, registered on uc1 over TLS; no plain TCP.
- A power cut, then a reboot on another address: the RFC 5626 instance id replaces the
  binding (one in uc2's location table, not two).
- A wrong password: two REGISTERs (401, our answer, 401 again), ``state: "auth_failed"``,
  one ERROR line, a back-off of minutes; no loop.
"""

import re
import subprocess
import threading
import time

import labctl
import pytest
from agentboard import board_config
from pki import issue, make_ca

pytestmark = pytest.mark.lab

UC2 = labctl.SERVERS["uc2"].ip
_next_ip = [0]


def next_addr():
    _next_ip[0] += 1
    return "127.0.7.%d" % (10 + _next_ip[0]), 5070


def config(lab, **sip):
    ip, port = next_addr()
    cfg = board_config(lab, ip, port)
    cfg["sip"].update(sip)
    return cfg


def registered_on_uc2(board, since=0, timeout=10):
    return board.wait("reg", "registered", timeout, since=since,
                      server=re.compile(re.escape(UC2) + ":"))


def stranger(lab, ip, port, user="6903"):
    """sipp as a scanner on FAREND_IP (127.0.0.1, no server's address): OPTIONS, then INVITE
    (CANCELled if it rings), straight to the board. Returns what sipp received."""
    sport = labctl.free_port()
    msg = lab.run_dir / ("sipp-stranger-%d.msg" % sport)
    cmd = ["sipp", "%s:%d" % (ip, port), "-sf", str(labctl.SIPP_DIR / "stranger.xml"),
           *labctl.SIPP_LOOPBACK, "-p", str(sport), "-t", "u1", "-m", "1", "-s", user,
           "-nostdin", "-timeout", "20s", "-timeout_error", "-trace_msg",
           "-message_file", str(msg)]
    labctl.run(cmd, timeout=25, check=False, stdin=subprocess.DEVNULL)
    log = msg.read_text(errors="replace")
    msg.unlink()
    return labctl.SippResult(labctl.received_codes(log), log)


def sent(result, method):
    return result.log.count("message sent") and result.log.count("\n%s sip:" % method)


def test_a_stranger_gets_no_answer_and_no_ring_while_the_registrar_still_rings(healthy,
                                                                                 boards):
    lab = healthy
    cfg = config(lab)
    ip, port = cfg["sip"]["local_ip"], cfg["sip"]["local_port"]
    b = boards(cfg)
    registered_on_uc2(b)
    mark = b.mark()
    t0 = time.monotonic()
    r = stranger(lab, ip, port)
    waited = time.monotonic() - t0
    assert sent(r, "OPTIONS") == 1 and sent(r, "INVITE") == 1, r.log[-2000:]
    assert r.codes == [], r.codes  # not a 200, not a 100 Trying, not a 180
    assert waited >= 4.5  # sipp waited out both answers (2 s + 3 s) and got none
    assert b.events("call", "incoming", since=mark) == []
    drops = b.events("sip", "stranger_dropped", since=mark)
    assert [d["method"] for d in drops] == ["OPTIONS"], drops  # once per source per minute
    assert drops[0]["src"].startswith(labctl.FAREND_IP + ":") and drops[0]["level"] == "WARN"
    st = b.status()
    assert st["strangers"] == 2 and st["calls"] == [], st
    # The registrar's own INVITE (6905 calls 6903 through uc2) rings, and is answered.
    mark = b.mark()
    result = {}
    caller = threading.Thread(target=lambda: result.update(
        r=lab.sipp_call("uc2", caller="6905", callee="6903", hold_ms=500, timeout=15)))
    caller.start()
    try:
        inc = b.wait("call", "incoming", 10, since=mark)
        assert "6905" in inc["remote"]
        assert b.status()["calls"][0]["state"] == "ringing"
        b.cmd("answer")
        b.wait("call", "ended", 10, since=mark)
    finally:
        caller.join(timeout=20)
    assert result["r"].codes[-2:] == [200, 200], result["r"].codes
    assert b.status()["strangers"] == 2


def test_accept_from_any_answers_the_stranger_and_rings(healthy, boards):
    lab = healthy
    cfg = config(lab, accept_from="any")
    ip, port = cfg["sip"]["local_ip"], cfg["sip"]["local_port"]
    b = boards(cfg)
    registered_on_uc2(b)
    mark = b.mark()
    r = stranger(lab, ip, port)
    assert r.codes[0] == 200 and 180 in r.codes and r.codes[-1] == 487, r.codes
    inc = b.wait("call", "incoming", 5, since=mark)
    assert "scanner" in inc["remote"]
    assert b.events("sip", "stranger_dropped") == []
    assert b.status()["strangers"] == 0


def test_wrong_password_is_auth_failed_after_two_registers_no_loop(healthy, boards):
    lab = healthy
    cfg = config(lab)
    cfg["accounts"][0]["password"] = "wrong"
    b = boards(cfg)
    failed = b.wait("reg", "auth_failed", 10)
    assert failed["level"] == "ERROR" and UC2 in failed["server"], failed
    assert 240000 <= int(failed["retry_in_ms"]) <= 480000, failed
    time.sleep(3)  # a loop would show here as more REGISTERs
    regs = b.events("reg", "register")
    assert len(regs) == 2 and all(UC2 in e["server"] for e in regs), regs
    rx = [e["status"] for e in b.events("sip", "rx")]
    assert rx == ["401", "401"], rx
    acc = b.account()
    assert acc["state"] == "auth_failed" and acc["last_error"] == "401 Unauthorized", acc
    assert b.events("reg", "auth_failed")[1:] == [] and b.events("reg", "all_failed") == []


def contacts(lab, name, ip):
    return [c for c in lab.registered("6903").get(name, []) if ip in c["contact"]]


def test_reboot_onto_a_new_address_replaces_the_binding(healthy, boards):
    """The board goes down without un-REGISTERing (power cut) and comes back with another
    address (DHCP): its instance id (kept in instance.id beside config.json) tells uc2 it
    is the same phone, so the old binding is replaced, not left to expire beside the new."""
    import copy

    lab = healthy
    cfg = config(lab)
    old_ip = cfg["sip"]["local_ip"]
    b = boards(cfg)
    registered_on_uc2(b)
    bind = contacts(lab, "uc2", old_ip)
    assert len(bind) == 1, bind
    urn = (b.root / "instance.id").read_text()
    assert urn.startswith("urn:uuid:") and len(urn) == 45, urn
    b.stop()  # the power goes: no un-REGISTER
    assert len(contacts(lab, "uc2", old_ip)) == 1  # uc2 still holds it
    cfg2 = copy.deepcopy(cfg)
    new_ip = cfg2["sip"]["local_ip"] = next_addr()[0]
    b2 = boards(cfg2, root=b.root)
    registered_on_uc2(b2)
    assert (b.root / "instance.id").read_text() == urn  # the same phone
    assert len(contacts(lab, "uc2", new_ip)) == 1
    assert contacts(lab, "uc2", old_ip) == []  # replaced, not two
    # uc2's own view: one binding carrying this instance, reg-id 1
    sock = "unix:%s" % (lab.run_dir / "uc2" / "kamailio_ctl")
    out = labctl.run(["kamcmd", "-s", sock, "ul.lookup", "location", "s:6903"]).stdout
    assert out.count(urn) == 1, out
    block = out[out.rfind("Address:", 0, out.index(urn)):]
    assert new_ip in block.split("\n")[0] and "Reg-Id: 1" in block, block


def wrong_certificate(lab, flaw, d):
    """(cert, key) for uc2 with ``flaw``: signed by a CA the board does not know, for another
    name, or expired (2020-01-01 .. 2020-01-02); made with openssl in ``d``."""
    ca_crt, ca_key = lab.ca_file, lab.tls_dir / "ca.key"
    if flaw == "unknown_ca":
        make_ca(d, "x", "not the lab CA")
        ca_crt, ca_key = d / "x.pem", d / "x.key"
    name = "other.airties.lab" if flaw == "wrong_name" else "uc2.airties.lab"
    issue(d, "srv", name, ca_crt, ca_key, expired=flaw == "expired")
    return (d / "srv.pem").read_bytes(), (d / "srv.key").read_bytes()


@pytest.mark.parametrize("flaw", ["unknown_ca", "wrong_name", "expired"])
def test_uc2_with_a_wrong_certificate_is_refused_and_uc1_registers_over_tls(
        healthy, boards, tmp_path, flaw):
    lab = healthy
    crt, key = lab.tls_dir / "uc2.crt", lab.tls_dir / "uc2.key"
    saved = crt.read_bytes(), key.read_bytes()
    bad = wrong_certificate(lab, flaw, tmp_path)
    try:
        crt.write_bytes(bad[0])
        key.write_bytes(bad[1])
        lab.stop("uc2")
        lab.start("uc2")
        ip, port = next_addr()
        cfg = board_config(lab, ip, port, transport="tls")
        root = tmp_path / "board"  # the lab CA goes on the board, as a person would put it
        root.mkdir()
        (root / "ca.crt").write_bytes(lab.ca_file.read_bytes())
        cfg["sip"]["ca_file"] = "/ca.crt"
        b = boards(cfg, root=root)
        reg = b.wait("reg", "registered", 15)
        assert reg["server"] == "tls:uc1.airties.lab/%s:5061" % labctl.SERVERS["uc1"].ip, reg
        refused = b.events("sip", "tls_refused")
        assert len(refused) == 1 and refused[0]["level"] == "WARN", refused
        assert refused[0]["reason"] == flaw and refused[0]["host"] == "uc2.airties.lab"
        assert refused[0]["server"] == "%s:5061" % UC2
        fo, = b.events("reg", "failover")
        assert fo["reason"] == "transport_error" and "uc1" in fo["next"], fo
        # every REGISTER over TLS: the refused server is not asked again over plain TCP
        regs = b.events("reg", "register")
        assert all(e["server"].startswith("tls:") for e in regs), regs
        assert [e for e in b.events("sip", "tx") if e["proto"] != "tls"] == []
        bind = [c for c in lab.registered("6903").get("uc1", []) if ip in c["contact"]]
        assert len(bind) == 1 and "transport=tls" in bind[0]["contact"], bind
    finally:
        crt.write_bytes(saved[0])
        key.write_bytes(saved[1])
        lab.stop("uc2")
        lab.start("uc2")
