"""A config reload is atomic (app.swap): the new agent starts first, on the same SIP port;
only then is the old one stopped. A new agent that cannot start leaves the old one
registered and listening. Real loopback sockets (127.0.78.0/24), virtual time, both
interpreters."""

from fwtest import ListLog, bind_udp, new_sched
from sipfw_helpers import Peer
from sipua import startup
from sipua.agent import Agent
from sipua.console import Console
from sipua.sip.hdr import lookup
from sipua.sip.strans import response

PHONE = "127.0.78.1"
REGISTRAR = "127.0.78.26"
H_CONTACT = lookup(b"contact")  # header ids by their name
H_EXPIRES = lookup(b"expires")


def registrar(sched):
    peer = Peer(sched, REGISTRAR)

    def answer(m):
        if m.method != "REGISTER":
            return None
        exp = m.int(H_EXPIRES)
        contact = [("Contact", "%s;expires=%d" % (m.first(H_CONTACT).decode(), exp))]
        return [response(m, 200, "OK", "r1", contact if exp else None)]

    peer.answer = answer
    return peer


def registers(peer, expires=None):
    """(ms, Contact) of each REGISTER the registrar got (with that Expires, if given)."""
    out = []
    for t, m in peer.got:
        if m.method == "REGISTER" and (expires is None or m.int(H_EXPIRES) == expires):
            out.append((t, m.first(H_CONTACT).decode()))
    return out


def cfg(peer, port, user="6903", **dns):
    return {"accounts": [{"user": user, "server": REGISTRAR, "port": peer.port,
                          "transport": "udp", "expires": 3600, "enabled": True}],
            "sip": {"local_ip": PHONE, "local_port": port},
            "dns": {"servers": dns.get("servers", ["127.0.78.53"]), "static": []}}


def states(agent):
    return [a["state"] for a in agent.status()["accounts"]]


def setup():
    s, _ = new_sched(real_poll=True)
    peer = registrar(s)
    sock, port = bind_udp(PHONE)  # a free port for the phone, the same across the reload
    sock.close()
    out = ListLog()
    console = Console(log=out.logger)
    old = Agent(s, cfg(peer, port), out.logger, None, PHONE)
    old.start()
    for name, (fn, text) in old.console_commands().items():
        console.register(name, fn, text)
    assert s.run_until(lambda: states(old) == ["registered"], 5000), states(old)
    return s, peer, port, console, old, out


def test_a_new_agent_that_cannot_start_leaves_the_old_one_registered():
    s, peer, port, console, old, out = setup()
    try:
        # What the schema refuses now and once let through: a DNS server given by name.
        # And what no schema can know: an address this host does not have (TEST-NET-1).
        bad_ip = cfg(peer, port)
        bad_ip["sip"]["local_ip"] = "192.0.2.1"
        for bad, why in ((cfg(peer, port, servers=["ns.example.com"]), "DnsError"),
                         (bad_ip, "OSError")):
            try:
                startup.swap(old, bad, console, out.logger, None, PHONE)
                raise AssertionError("swap took a config the agent cannot run on")
            except ValueError as e:
                assert why in str(e) and "previous one runs on" in str(e), e
            # the old agent: same port, listening again, still registered, nothing undone
            assert old.stack.tp.udp is not None and old.stack.local_port == port
            assert states(old) == ["registered"]
            assert console.execute("status")["accounts"][0]["label"] == "6903"
            assert registers(peer, 0) == []  # no un-REGISTER went out
            n = len(out.events("registered"))
            console.execute("reg")  # it still works: a refresh is sent and answered
            assert s.run_until(lambda n=n: len(out.events("registered")) > n, 3000)
            assert states(old) == ["registered"]
        assert [e["event"] for e in out.events("reload_failed")] == ["reload_failed"] * 2
    finally:
        old.stop(False)
        peer.close()


def test_a_good_reload_swaps_agents_on_the_same_port():
    s, peer, port, console, old, out = setup()
    try:
        new = startup.swap(old, cfg(peer, port, user="6904"), console, out.logger, None, PHONE)
        assert new is not old and new.stack.local_port == port
        # the new agent runs the commands: the old one's handlers gave way
        assert console.agent is new and not console.commands
        assert console.execute("unreg nobody")["error"] == "no such account"
        t0 = s.now()
        # the old binding goes first, then the new account registers from the same port
        assert s.run_until(lambda: states(new) == ["registered"], 5000), states(new)
        unreg = registers(peer, 0)
        assert [c for _, c in unreg] == ["<sip:6903@%s:%d>" % (PHONE, port)], unreg
        reg_new = [t for t, c in registers(peer, 3600) if c == "<sip:6904@%s:%d>" % (PHONE, port)]
        assert reg_new and reg_new[0] - t0 >= 600 and unreg[0][0] < reg_new[0], reg_new
        assert old.stack.tp.udp is None  # closed
        assert states(old) == ["idle"]
    finally:
        new.stop(False)
        peer.close()
