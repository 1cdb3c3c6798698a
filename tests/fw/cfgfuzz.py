"""Generated configs for the config path's property test (both interpreters).

``gen(rng)`` builds a config the way a person might write one: known keys with values drawn
from pools of good, odd and wrong ones (wrong types, bad hosts, IPv6 where SIP is IPv4-only,
control characters, out-of-range numbers), sometimes an unknown key. ``check(cfg)`` then
holds the property: ``config.validate`` refuses it with every error naming a key, or an
``Agent`` built on it starts and runs in virtual time without an exception escaping.

Every address a generated config can reach is on 127.0.77.0/24 or ::1, and nobody listens
there: the agent's packets meet closed ports, as a phone's meet a dead network.
``rng`` needs only ``getrandbits`` (MicroPython's ``random`` module, or a
``random.Random`` from hypothesis).
"""

from sipua import config

NET = "127.0.77."  # the fuzz's addresses; the lab and the other tests use other ones

# Each pool: (good values, bad ones); a bad one is drawn now and then (see Gen.s).
HOSTS = (["airties.lab", "uc1.airties.lab", "UC2.Airties.LAB", NET + "2", "ns.example.com",
          "_sip._udp.airties.lab", "a.lab.", "x" * 63 + ".lab"],
         ["::1", "[::1]", "1:2", "300.1.1.1", "1", "a..b", "-a.lab", "a b", "", "\u00e9.lab",
          "a\r\nb.lab", "x" * 64 + ".lab"])
HOSTPORTS = (["", NET + "2:5060", "airties.lab:5070", NET + "3", "proxy.lab"],
             HOSTS[1] + ["airties.lab:0", "a.lab:99999", "[::1]:5060", NET + "3:", "a.lab:x",
                         "[" + NET + "2]:5060"])
IPPORTS = ([NET + "53", NET + "53:53", NET + "54:5353", "[::1]:53", "::1"],
           ["ns.example.com", "1:2", NET + "53:0", "[::1]", "::ffff:1.2.3.4", "[ns.lab]:53",
            "", NET + "53:x"])
STRS = (["6903", "Alice", "x;y=z", "%41", "a" * 200, "\u00fc"],
        ["", "a b", "6903@x", "user\r\nX-Evil: 1", "<x>", '"q"', "\t"])
BAD_INTS = [-1, 65536, 10 ** 9, True, None, "5", 2.5, 2, 30, 604800]
PORTS = ([0, 5060, 5070, 65535], BAD_INTS)
EXPIRES = ([30, 60, 3600, 604800], BAD_INTS)
TIMEOUTS = ([0, 1, 30, 3600, 86400], BAD_INTS)
RETRIES = ([0, 1, 3, 10], BAD_INTS)
T1 = ([50, 500, 1000], BAD_INTS)
T2 = ([1000, 4000, 60000], BAD_INTS)
T4 = ([100, 5000], BAD_INTS)
U16 = ([0, 1, 10, 65535], BAD_INTS)
TTLS = ([0, 1, 300, 86400], [-1, None, "5"])
BOOLS = ([True, False], [0, 1, None, "true"])
IPS = (["", NET + "1"], ["::1", "300.1.1.1", "1:2", "x", NET + "1:5060"])
HEX = (["", "0" * 32, "A" * 32], ["xyz", "0" * 31, "0" * 33])
WRONG = [None, 1, "x", [], {}, True]  # a value of the wrong type for any key

ENUMS = {
    "transport": (config.TRANSPORTS, ["sctp", ""]),
    "mode": (config.FAILBACK_MODES, ["never"]),
    "redundancy": (config.REDUNDANCY, ["both"]),
    "level": (config.LOG_LEVELS, ["loud"]),
}
BAD = 60  # one value in BAD is a bad one, one in 4*BAD of the wrong type


class Gen:
    def __init__(self, rng):
        self.rng = rng

    def n(self, k):
        return self.rng.getrandbits(16) % k

    def pick(self, pool):
        return pool[self.n(len(pool))]

    def maybe(self, p=2):
        """True one time in ``p``."""
        return self.n(p) == 0

    def obj(self, keys, required=()):
        """A dict with a random subset of ``keys`` (name -> value maker; the ``required``
        ones missing only now and then), now and then one unknown key or a value of the
        wrong type."""
        out = {}
        for name in keys:
            if self.maybe(BAD if name in required else 3):
                continue
            out[name] = self.pick(WRONG) if self.maybe(4 * BAD) else keys[name]()
        if self.maybe(4 * BAD):
            out["nonsense"] = 1
        return out

    def lst(self, item, most=3):
        return [item() for _ in range(self.n(most + 1))]

    def s(self, pool):
        return lambda: self.pick(pool[1] if pool[1] and self.maybe(BAD) else pool[0])

    def account(self):
        s = self.s
        return self.obj({
            "label": s(STRS), "display_name": s(STRS), "register_name": s(STRS),
            "user": s(STRS), "password": s(STRS), "ha1": s(HEX), "server": s(HOSTS),
            "port": s(PORTS), "transport": s(ENUMS["transport"]), "expires": s(EXPIRES),
            "outbound_proxy": s(HOSTPORTS), "backup_outbound_proxy": s(HOSTPORTS),
            "failback": lambda: self.obj({"mode": s(ENUMS["mode"]), "timeout": s(TIMEOUTS)}),
            "redundancy": s(ENUMS["redundancy"]), "auto_answer": s(BOOLS),
            "enabled": s(BOOLS)}, ("user", "server"))

    def record(self):
        s = self.s
        t = self.s((("A", "AAAA", "SRV", "NAPTR"), ("MX", None)))()
        fields = {"name": s(HOSTS), "ttl": s(TTLS)}
        if t in ("A", "AAAA"):
            fields["address"] = s(([NET + "9"] if t == "A" else ["::1"], ["", NET + "1", "::1"]))
        elif t == "SRV":
            fields.update({"priority": s(U16), "weight": s(U16), "port": s(PORTS),
                           "target": s(HOSTS)})
        elif t == "NAPTR":
            words = (["s", "a", "", "SIP+D2U", "SIP+D2T", "SIPS+D2T", "!^.*$!x!"],
                     ["SIP D2U", '"'])
            fields.update({"order": s(U16), "preference": s(U16), "flags": s(words),
                           "service": s(words), "regexp": s(words),
                           "replacement": s(HOSTS)})
        rec = self.obj(fields, [k for k in fields if k != "ttl"])
        if t is not None:
            rec["type"] = t
        return rec

    def config(self):
        s = self.s
        return self.obj({
            "accounts": lambda: self.lst(self.account, 2),
            "dns": lambda: self.obj({"servers": lambda: self.lst(s(IPPORTS)),
                                     "static": lambda: self.lst(self.record, 4)}),
            "sip": lambda: self.obj({"local_ip": s(IPS), "local_port": s(PORTS),
                                     "retry_count": s(RETRIES), "t1": s(T1), "t2": s(T2),
                                     "t4": s(T4), "ca_file": s((["", "/nonexistent.pem"], [])),
                                     "user_agent": s(STRS)}),
            "log": lambda: self.obj({"level": s(ENUMS["level"]),
                                     "areas": lambda: {self.pick(("sip", "dns", "")):
                                                       s(ENUMS["level"])()}}),
            "network": lambda: self.obj({"ssid": s(STRS), "psk": s((["", "p" * 8], ["p"])),
                                         "hostname": s((["phone", ""], ["a.b", "-x"]))}),
        })


def gen(rng):
    return Gen(rng).config()


def _key_named(msg):
    """An error line names its key path (``accounts[0].user: ...``, ``config: ...`` for the
    whole file), then says why."""
    head, sep, why = msg.partition(": ")
    return bool(sep and head and why) and " " not in head


def check(obj, run_ms=40000):
    """The property for one config: "refused" (every error names its key) or "runs".
    Returns which; raises (AssertionError, or whatever escaped the agent) otherwise."""
    from fwtest import ListLog, new_sched
    from sipua.agent import Agent
    from sipua.log import log as global_log

    try:
        cfg = config.validate(obj)
    except config.ConfigError as e:
        assert e.errors, obj
        for msg in e.errors:
            assert _key_named(msg), (msg, obj)
        return "refused"
    # Keep the agent's own sockets off fixed ports: the port is any free one, the address
    # the fuzz's (a board takes hal's). With no servers the resolver would ask the host's.
    cfg["sip"]["local_port"] = 0
    if not cfg["dns"]["servers"]:
        cfg["dns"]["servers"] = [NET + "53"]
    s, _ = new_sched(real_poll=True, real_wait_ms=0)  # no log: an escaping error raises
    out = ListLog()
    saved = global_log.level, global_log.areas, global_log._write
    global_log.level, global_log.areas = 10, {}
    global_log.set_output(out.lines.append)
    agent = Agent(s, cfg, out.logger, None, NET + "1")
    try:
        agent.start()
        s.run_until(lambda: False, run_ms // 2)
        agent.status()
        agent.console_commands()["dns"][0](["airties.lab"])
        for r in agent.registrations:
            r.register_now()
        s.run_until(lambda: False, run_ms // 2)
        agent.stop()
        s.run_until(lambda: False, 1000)
        assert agent.stack.tp.udp is None, "the stack is still listening after stop"
    finally:
        if agent.stack is not None:
            agent.stack.stop()
        global_log.level, global_log.areas = saved[0], saved[1]
        global_log.set_output(saved[2])
    return "runs"
