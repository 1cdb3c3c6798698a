"""RFC 5626 instance id: one ``urn:uuid`` per board, made once and kept in ``instance.id``
beside the config (start-up's ``load_config``, at boot and every reload), sent on every
REGISTER's Contact as ``+sip.instance`` with a ``reg-id`` per registration leg (and
``Supported: outbound``), so a registrar replaces the binding of a rebooted phone, or one
with a new address, instead of keeping two."""

import json

from fwtest import ListLog, make_tmpdir, new_sched, remove_tmpdir
from sipua.agent import Agent
from sipua.config import validate
from sipua.sip.hdr import lookup
from sipua.sip.reg import REGISTERED, Registration
from sipua.startup import load_config
from test_reg import UC1, UC2, Rig

H_CONTACT = lookup(b"contact")
H_SUPPORTED = lookup(b"supported")
HEX = "0123456789abcdef"


def is_v4_urn(u):
    parts = u[9:].split("-")
    return (u.startswith("urn:uuid:") and [len(p) for p in parts] == [8, 4, 4, 4, 12]
            and all(c in HEX for c in "".join(parts)) and parts[2][0] == "4"
            and parts[3][0] in "89ab")


def boot_id(d):
    """The id start-up's load_config hands the agent for a config in folder ``d``."""
    return load_config(d + "/config.json")[0]["instance"]


def test_made_once_kept_beside_the_config_and_remade_when_broken():
    d = make_tmpdir("inst")
    try:
        with open(d + "/config.json", "w") as f:
            json.dump({"sip": {"local_port": 0}}, f)
        cfg, err = load_config(d + "/config.json")
        u = cfg["instance"]
        assert err is None and is_v4_urn(u), u
        with open(d + "/instance.id") as f:
            assert f.read() == u
        assert boot_id(d) == u  # the next boot (or a reload) reads it back
        with open(d + "/instance.id", "w") as f:
            f.write("garbage")
        v = boot_id(d)
        assert is_v4_urn(v) and v != u
        assert boot_id(d) == v
        # a board that cannot write it (read-only; here: no such folder, so no config
        # either): this boot's id, another one next boot
        w = boot_id(d + "/no/such/dir")
        assert is_v4_urn(w) and w != boot_id(d + "/no/such/dir")
    finally:
        remove_tmpdir(d)


def test_register_contact_carries_the_instance_and_a_reg_id_per_leg():
    rig = Rig(redundancy="concurrent")
    inst = "urn:uuid:0a1b2c3d-0000-4000-8000-00112233aabb"
    rig.account.instance = ';+sip.instance="<%s>";reg-id=' % inst  # start_accounts' value
    backup = Registration(rig.s, rig.stack, rig.locator, rig.account, rig.log, rig.servers,
                          leg=1, avoid=lambda: rig.reg.server.ip if rig.reg.server else UC2)
    rig.legs.append(backup)
    try:
        rig.reg.start()
        rig.s.call_later(200, backup.start)
        assert rig.run_until(lambda: rig.reg.state == REGISTERED and
                             backup.state == REGISTERED, 5000)
        for peer, reg_id in ((rig.uc2.peer, 1), (rig.uc1.peer, 2)):
            regs = [m for _, m in peer.got if m.method == "REGISTER"]
            assert regs
            for m in regs:
                c = m.first(H_CONTACT).decode()
                assert c.endswith('>;+sip.instance="<%s>";reg-id=%d' % (inst, reg_id)), c
                assert m.first(H_SUPPORTED) == b"outbound"
        # The 200 lists the Contact with its parameters: the granted interval is still ours.
        # (the fake asks for 300 with a 423 first: the resent REGISTER keeps its parameters)
        assert rig.reg.granted == 300 and backup.granted == 300
        assert rig.registered_on(UC2) and rig.registered_on(UC1, backup)
    finally:
        rig.close()


def test_without_an_instance_no_contact_parameters_and_no_supported():
    rig = Rig()
    try:
        rig.reg.start()
        assert rig.run_until(lambda: rig.reg.state == REGISTERED, 5000)
        m = [m for _, m in rig.uc2.peer.got if m.method == "REGISTER"][-1]
        assert m.first(H_CONTACT).decode().endswith(">") and m.first(H_SUPPORTED) is None
    finally:
        rig.close()


def test_the_agent_gives_its_accounts_the_boards_instance():
    # start-up's load_config puts the board's id in the config it hands every agent it
    # starts, reloads included; the lab's reboot test runs that on a virtual board.
    inst = "urn:uuid:0a1b2c3d-0000-4000-8000-00112233aabb"
    for instance in (inst, None):
        cfg = validate({"accounts": [{"user": "6903", "server": "inst.test"}],
                        "sip": {"local_ip": "127.0.4.4", "local_port": 0}})
        if instance:
            cfg["instance"] = instance
        s, _ = new_sched(real_poll=True)
        a = Agent(s, cfg, ListLog().logger)
        a.start()
        try:
            acc = a.registrations[0].account
            if instance:
                assert acc.instance == ';+sip.instance="<%s>";reg-id=' % inst
            else:
                assert acc.instance is None  # tools and tests: no +sip.instance sent
        finally:
            a.stop(False)
