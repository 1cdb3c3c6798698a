"""`sipfw config validate | push | pull | show` against virtual boards."""

from __future__ import annotations

import hashlib
import json
import time

from hostfix import ROOT, agent_main, firmware_tree, sipfw
from sipfw.paths import use_firmware

EXAMPLES = ROOT / "examples"


def test_examples_validate():
    for name in ("airties-seed.json", "lab.json"):
        r = sipfw("config", "validate", str(EXAMPLES / name))
        assert r.returncode == 0, r.stderr
        assert "ok" in r.stdout
    r = sipfw("config", "validate", "-v", str(EXAMPLES / "lab.json"))
    assert '"password": "***"' in r.stdout and '"6903"' in r.stdout
    lab = json.loads((EXAMPLES / "lab.json").read_text())
    assert lab["dns"]["servers"] == ["127.0.0.53:53"]
    assert [a["user"] for a in lab["accounts"]] == ["6903", "6904"]
    assert {a["server"] for a in lab["accounts"]} == {"airties.lab"}
    assert {a["transport"] for a in lab["accounts"]} == {"dns-srv"}
    assert {a["failback"]["mode"] for a in lab["accounts"]} == {"new-requests"}


def test_every_error_names_its_key(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"accounts": [{"user": "6903", "server": "airties.lab",
                                             "transport": "xyz", "expires": 5}],
                               "sip": {"t9": 1}}))
    r = sipfw("config", "validate", str(bad))
    assert r.returncode == 4
    lines = r.stderr.strip().splitlines()
    assert lines == [
        "sipfw config: %s: accounts[0].transport: must be one of udp, tcp, tls, dns-srv, "
        "got 'xyz'" % bad,
        "%s: accounts[0].expires: must be 30..604800, got 5" % bad,
        "%s: sip.t9: unknown key" % bad,
    ]
    bad.write_text('{"accounts": [')
    r = sipfw("config", "validate", str(bad))
    assert r.returncode == 4 and "not valid JSON" in r.stderr
    r = sipfw("config", "validate", str(tmp_path / "missing.json"))
    assert r.returncode == 4 and "cannot read" in r.stderr


def test_a_dns_server_given_by_name_is_refused_by_key(tmp_path):
    # It once passed validate and push, then killed the agent at start (issue 16).
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dns": {"servers": ["127.0.0.53", "ns.example.com"]}}))
    r = sipfw("config", "validate", str(bad))
    assert r.returncode == 4
    assert r.stderr.strip() == ("sipfw config: %s: dns.servers[1]: must be an IP "
                                "address[:port], got 'ns.example.com'" % bad), r.stderr


def agent_board(tmp_path, vboards, main=None, heap=None, **files):
    """A board running the flashed firmware with a main.py that logs the config it loaded
    (and, by default, runs no console: the push goes through the REPL and a reset)."""
    if main is None:
        main = ("from sipua import config\n"
                "cfg, err = config.load('/config.json')\n"
                "print('0 INFO app start version=t accounts=%d err=%s' % (len(cfg['accounts']), "
                "err is not None))\nprint('1 INFO app ready ip=127.0.0.1')\n")
    src = firmware_tree(tmp_path / "fw", main=main)
    board = vboards(files=files, heap=heap)
    r = sipfw("flash", "--port", board.device, "--source", str(src))
    assert r.returncode == 0, r.stderr
    return board


def test_push_pull_show_round_trip(tmp_path, vboards):
    board = agent_board(tmp_path, vboards, **{"config.json": '{"accounts": []}'})
    t0 = time.monotonic()
    r = sipfw("config", "push", str(EXAMPLES / "lab.json"), "--port", board.device,
              "--wait-for", "accounts=2 err=False")
    push_s = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "agent ready in" in r.stdout
    sent = (board.root / "config.json").read_bytes()
    assert json.loads(sent) == json.loads((EXAMPLES / "lab.json").read_text())
    assert (board.root / "config.json.bak").read_text() == '{"accounts": []}'
    assert not (board.root / "config.json.tmp").exists()
    assert hashlib.sha256(sent).hexdigest()[:12] in r.stdout

    r = sipfw("config", "pull", "--port", board.device)
    assert r.returncode == 0, r.stderr
    pulled = json.loads(r.stdout)
    assert pulled["accounts"][0]["password"] == "***"
    r = sipfw("config", "pull", "--port", board.device, "--show-secrets")
    assert json.loads(r.stdout)["accounts"][1]["password"] == "6904"
    r = sipfw("config", "show", "--port", board.device)
    shown = json.loads(r.stdout)
    assert shown["sip"]["t1"] == 500 and shown["accounts"][0]["password"] == "***"

    # a redacted pull pushed back would lock the phone out: refused, nothing sent
    red = tmp_path / "red.json"
    assert sipfw("config", "pull", "--port", board.device, "-o", str(red)).returncode == 0
    r = sipfw("config", "push", str(red), "--port", board.device)
    assert r.returncode == 4 and "redaction placeholder" in r.stderr
    assert (board.root / "config.json").read_bytes() == sent
    print("config push %.2f s" % push_s)


def test_store_ha1_uses_the_server_domain_as_realm(tmp_path, vboards):
    board = agent_board(tmp_path, vboards)
    r = sipfw("config", "push", str(EXAMPLES / "airties-seed.json"), "--port", board.device,
              "--store-ha1")
    assert r.returncode == 0, r.stderr
    acc = json.loads((board.root / "config.json").read_text())["accounts"][0]
    assert "password" not in acc
    assert acc["ha1"] == hashlib.md5(b"6903:airties.com:6903").hexdigest()
    r = sipfw("config", "push", str(EXAMPLES / "airties-seed.json"), "--port", board.device,
              "--store-ha1", "--realm", "pbx.example", "--no-reset")
    acc = json.loads((board.root / "config.json").read_text())["accounts"][0]
    assert acc["ha1"] == hashlib.md5(b"6903:pbx.example:6903").hexdigest()
    use_firmware()
    from sipua import config

    assert acc["ha1"] == config.ha1("6903", "pbx.example", "6903")


def test_interrupted_push_keeps_the_old_config(tmp_path, vboards):
    board = agent_board(tmp_path, vboards, **{"config.json": '{"accounts": []}'})
    r = sipfw("config", "push", str(EXAMPLES / "lab.json"), "--port", board.device,
              env={"SIPFW_FAILPOINT": "push-staged"})
    assert r.returncode == -9
    assert (board.root / "config.json").read_text() == '{"accounts": []}'
    assert not (board.root / "config.json.bak").exists()
    # the agent boots on the old config; the next push goes through
    r = sipfw("config", "push", str(EXAMPLES / "airties-seed.json"), "--port", board.device,
              "--wait-for", "accounts=1 err=False")
    assert r.returncode == 0, r.stderr
    assert (board.root / "config.json.bak").read_text() == '{"accounts": []}'
    assert not (board.root / "config.json.tmp").exists()


def test_bad_config_is_never_sent(tmp_path, vboards):
    board = vboards(files={"config.json": "{}"})
    bad = tmp_path / "bad.json"
    bad.write_text('{"accounts": [{"user": "1", "server": "x", "transport": "carrier-pigeon"}]}')
    r = sipfw("config", "push", str(bad), "--port", board.device)
    assert r.returncode == 4 and "accounts[0].transport" in r.stderr
    assert (board.root / "config.json").read_text() == "{}"
    r = sipfw("config", "pull", "--port", "/dev/does-not-exist")
    assert r.returncode == 3


def test_pull_without_a_config(tmp_path, vboards):
    board = vboards()
    r = sipfw("config", "pull", "--port", board.device)
    assert r.returncode == 4 and "no config.json on the board" in r.stderr


def test_push_to_a_running_agent_reloads_without_a_reset(tmp_path, vboards):
    board = agent_board(tmp_path, vboards, main=agent_main(reload=True),
                        **{"config.json": '{"accounts": []}'})
    boots = board.wait_file("boots.txt")
    t0 = time.monotonic()
    r = sipfw("config", "push", str(EXAMPLES / "lab.json"), "--port", board.device)
    live_s = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "through the agent's console" in r.stdout
    assert 'agent reloaded the config: {"accounts": 2}' in r.stdout
    assert (board.root / "boots.txt").read_text() == boots  # no reset
    assert json.loads((board.root / "config.json").read_text())["accounts"][1]["user"] == "6904"
    assert (board.root / "config.json.bak").read_text() == '{"accounts": []}'
    r = sipfw("console", "--port", board.device, "status")
    assert json.loads(r.stdout)["accounts"] == 2
    # --reset forces the other way: REPL write, then a soft reset
    r = sipfw("config", "push", str(EXAMPLES / "airties-seed.json"), "--port", board.device,
              "--reset", "--wait-for", "app start .*accounts=1")
    assert r.returncode == 0, r.stderr
    assert "agent ready in" in r.stdout
    assert len((board.root / "boots.txt").read_text()) == len(boots) + 1
    print("config push live %.2f s" % live_s)


def test_push_to_an_agent_that_cannot_reload_reboots_it(tmp_path, vboards):
    board = agent_board(tmp_path, vboards, main=agent_main(reload=False))
    boots = board.wait_file("boots.txt")
    r = sipfw("config", "push", str(EXAMPLES / "lab.json"), "--port", board.device,
              "--wait-for", "app start .*accounts=2")
    assert r.returncode == 0, r.stderr
    assert "agent ready in" in r.stdout
    assert len((board.root / "boots.txt").read_text()) == len(boots) + 1


def test_live_push_killed_half_way_keeps_the_old_config(tmp_path, vboards):
    board = agent_board(tmp_path, vboards, main=agent_main(reload=True),
                        **{"config.json": '{"accounts": []}'})
    board.wait_file("boots.txt")
    r = sipfw("config", "push", str(EXAMPLES / "lab.json"), "--port", board.device,
              env={"SIPFW_FAILPOINT": "push-live-data:2"})
    assert r.returncode == -9
    assert (board.root / "config.json").read_text() == '{"accounts": []}'
    assert not (board.root / "config.json.bak").exists()
    # the agent still runs, on the old config, and takes the next push
    r = sipfw("console", "--port", board.device, "status")
    assert json.loads(r.stdout)["accounts"] == 0
    r = sipfw("config", "push", str(EXAMPLES / "lab.json"), "--port", board.device)
    assert r.returncode == 0, r.stderr
    assert not (board.root / "config.json.tmp").exists()


def test_push_the_agent_cannot_start_on_fails_and_keeps_the_old_agent(tmp_path, vboards):
    # The real app on a vboard, booted by the board's own main.py (which lets app.py go and
    # runs the loop: a reload must not need it): no accounts, a port of its own on
    # 127.0.0.1 (no lab). The heap is the unix port's: the firmware does not fit the
    # ESP32's 100 KB yet.
    old = {"sip": {"local_ip": "127.0.0.1", "local_port": 0},
           "dns": {"servers": ["127.0.0.1:9"]}}
    board = agent_board(tmp_path, vboards, main=(ROOT / "firmware" / "main.py").read_text(),
                        heap="2M", **{"config.json": json.dumps(old)})
    r = sipfw("console", "--port", board.device, "status")
    assert r.returncode == 0 and json.loads(r.stdout)["accounts"] == [], (r.stdout, r.stderr)
    # Valid by the schema, but this host has no such address: the new stack cannot bind.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sip": {"local_ip": "192.0.2.1", "local_port": 0},
                               "dns": {"servers": ["127.0.0.1:9"]}}))
    assert sipfw("config", "validate", str(bad)).returncode == 0
    r = sipfw("config", "push", str(bad), "--port", board.device)
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "could not start on the new config" in r.stderr and "OSError" in r.stderr, r.stderr
    assert "agent reloaded" not in r.stdout
    assert json.loads((board.root / "config.json").read_text()) == old
    r = sipfw("console", "--port", board.device, "status")
    assert r.returncode == 0 and "uptime_ms" in json.loads(r.stdout), (r.stdout, r.stderr)
    # and a good one is taken
    good = tmp_path / "good.json"
    good.write_text(json.dumps(dict(old, log={"level": "debug"})))
    r = sipfw("config", "push", str(good), "--port", board.device)
    assert r.returncode == 0 and "agent reloaded the config" in r.stdout, (r.stdout, r.stderr)
