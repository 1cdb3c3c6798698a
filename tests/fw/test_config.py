"""Config schema: defaults, every error names its key, atomic save with .bak, redaction, HA1."""

import json
import os

from fwtest import make_tmpdir, raises, remove_tmpdir
from sipua import config

SEED = {
    "accounts": [
        {
            "label": "6903",
            "display_name": "6903",
            "register_name": "6903",
            "user": "6903",
            "password": "6903",
            "server": "airties.com",
            "transport": "dns-srv",
            "expires": 180,
        }
    ],
    "sip": {"local_port": 5062},
}


def errors_of(obj):
    return raises(config.ConfigError, config.validate, obj).errors


def test_empty_accounts_is_valid_and_defaults_are_filled():
    cfg = config.validate({"accounts": []})
    assert cfg["accounts"] == []
    assert cfg["sip"]["retry_count"] == 3
    assert (cfg["sip"]["t1"], cfg["sip"]["t2"], cfg["sip"]["t4"]) == (500, 4000, 5000)
    assert cfg["dns"] == {"servers": [], "static": []}
    assert cfg["log"] == {"level": "info", "areas": {}, "debug_commands": False}
    assert cfg["network"]["ssid"] == ""
    assert config.validate({}) == cfg == config.default()


def test_seed_account_normalized():
    cfg = config.validate(SEED)
    acc = cfg["accounts"][0]
    assert acc["transport"] == "dns-srv" and acc["server"] == "airties.com"
    assert acc["failback"] == {"mode": "new-requests", "timeout": 3600}
    assert acc["redundancy"] == "successive" and acc["enabled"] is True
    assert acc["auto_answer"] is False and acc["port"] == 0 and acc["ha1"] == ""
    assert cfg["sip"]["local_port"] == 5062
    # normalizing twice changes nothing
    assert config.validate(cfg) == cfg


def test_label_and_register_name_default_to_user():
    cfg = config.validate({"accounts": [{"user": "6904", "server": "airties.lab"}]})
    acc = cfg["accounts"][0]
    assert acc["label"] == "6904" and acc["register_name"] == "6904"


def test_bad_enum_names_the_key_path():
    obj = {"accounts": [{"user": "1", "server": "a.b", "transport": "xyz"}]}
    assert errors_of(obj) == [
        "accounts[0].transport: must be one of udp, tcp, tls, dns-srv, got 'xyz'"
    ]


def test_unknown_keys_are_refused_by_name():
    obj = {"acounts": [], "sip": {"t3": 1},
           "accounts": [{"user": "1", "server": "x", "pasword": ""}]}
    errs = errors_of(obj)
    assert "acounts: unknown key" in errs
    assert "sip.t3: unknown key" in errs
    assert "accounts[0].pasword: unknown key" in errs


def test_types_and_ranges():
    errs = errors_of({
        "accounts": [{"user": "1", "server": "x", "port": 70000, "expires": "60",
                      "enabled": 1, "failback": {"mode": "sometimes", "timeout": -1}}],
        "sip": {"t1": True, "local_port": 5.5},
        "dns": {"servers": ["127.0.0.53:99999", "ok.example", 5]},
        "log": {"level": "loud", "areas": {"sip": "debug", "dns": "chatty"}},
        "network": [],
    })
    want = [
        "accounts[0].port: must be 0..65535, got 70000",
        "accounts[0].expires: must be an integer, got a string",
        "accounts[0].enabled: must be true or false, got a number",
        "accounts[0].failback.mode: must be one of new-requests, dns-ttl, registration, "
        "duration, got 'sometimes'",
        "accounts[0].failback.timeout: must be 0..86400, got -1",
        "sip.t1: must be an integer, got a boolean",
        "sip.local_port: must be an integer, got a number",
        "dns.servers[0]: must be an IP address[:port], got '127.0.0.53:99999'",
        "dns.servers[1]: must be an IP address[:port], got 'ok.example'",
        "dns.servers[2]: must be a string, got a number",
        "log.level: must be one of debug, info, warn, error, off, got 'loud'",
        "log.areas.dns: must be one of debug, info, warn, error, off, got 'chatty'",
        "network: must be an object, got a list",
    ]
    for w in want:
        assert w in errs, (w, errs)
    assert len(errs) == len(want), errs


def test_required_and_cross_key_rules():
    assert errors_of({"accounts": [{"server": "x"}]}) == ["accounts[0].user: is required"]
    assert errors_of([]) == ["config: must be an object, got a list"]
    errs = errors_of({"accounts": [
        {"user": "1", "server": "x", "password": "p", "ha1": "0" * 32},
        {"user": "1", "server": "x", "failback": {"mode": "duration", "timeout": 0}},
    ], "sip": {"t1": 800, "t2": 600}, "network": {"psk": "short"}})
    assert "accounts[0]: give password or ha1, not both" in errs
    assert "accounts[1].failback.timeout: must be > 0 when mode is duration" in errs
    assert "accounts[1].label: duplicate of accounts[0].label '1'" in errs
    assert "sip.t2: must be >= sip.t1 (800), got 600" in errs
    assert "network.psk: must be 8..63 characters (WPA2), got 5" in errs
    assert "network.ssid: is required when network.psk is set" in errs


def test_hosts_addresses_and_ha1_format():
    errs = errors_of({"accounts": [{"user": "1", "server": "bad host", "ha1": "xyz",
                                    "outbound_proxy": "[::1:5060"}],
                      "sip": {"local_ip": "300.1.1.1"}})
    assert "accounts[0].server: must be a host name or IPv4 address, got 'bad host'" in errs
    assert "accounts[0].ha1: must be 32 hex digits (an MD5 digest)" in errs
    assert "accounts[0].outbound_proxy: must be host[:port]: unclosed '[' in '[::1:5060'" in errs
    assert "sip.local_ip: must be an IPv4 address, got '300.1.1.1'" in errs
    cfg = config.validate({"accounts": [{"user": "1", "server": "UC1.Airties.LAB",
                                         "outbound_proxy": "127.0.0.26:5070"}],
                           "dns": {"servers": ["127.0.0.53", "[::1]:5353", "::1", "fe80::1"]}})
    assert cfg["accounts"][0]["server"] == "uc1.airties.lab"
    assert cfg["dns"]["servers"][1] == "[::1]:5353"


def test_dns_static_records():
    static = [
        {"name": "airties.lab", "type": "NAPTR", "order": 2, "preference": 0, "flags": "s",
         "service": "SIP+D2T", "replacement": "_sip._tcp.airties.lab"},
        {"name": "_sip._tcp.airties.lab", "type": "SRV", "priority": 1, "weight": 0,
         "port": 5060, "target": "uc2.airties.lab", "ttl": 60},
        {"name": "uc2.airties.lab", "type": "A", "address": "127.0.0.12"},
        {"name": "uc2.airties.lab", "type": "AAAA", "address": "::1"},
    ]
    cfg = config.validate({"dns": {"static": static}})
    got = cfg["dns"]["static"]
    assert got[0]["regexp"] == "" and got[0]["ttl"] == 300
    assert got[1]["ttl"] == 60 and got[2]["address"] == "127.0.0.12"
    errs = errors_of({"dns": {"static": [
        {"name": "x", "type": "MX"},
        {"name": "x", "type": "SRV", "priority": 1, "port": 5060, "target": "y", "extra": 1},
        {"name": "x", "type": "A", "address": "nope"},
    ]}})
    assert errs == [
        "dns.static[0].type: must be one of A, AAAA, SRV, NAPTR, got 'MX'",
        "dns.static[1].extra: unknown key",
        "dns.static[1].weight: is required",
        "dns.static[2].address: must be an IPv4 address, got 'nope'",
    ], errs
    # What the static cache and the resolver cannot take is refused here, by name.
    errs = errors_of({"dns": {"static": [
        {"name": "x", "type": "A", "address": "::1"},
        {"name": "x", "type": "AAAA", "address": "127.0.0.1"},
        {"name": "x", "type": "NAPTR", "order": 1, "preference": 1, "flags": "s",
         "service": "SIP D2U", "regexp": '"!x!"', "replacement": "y"},
    ]}})
    assert errs == [
        "dns.static[0].address: must be an IPv4 address, got '::1'",
        "dns.static[1].address: must be an IPv6 address, got '127.0.0.1'",
        "dns.static[2].service: must not contain spaces or quotes, got 'SIP D2U'",
        "dns.static[2].regexp: must not contain spaces or quotes, got '\"!x!\"'",
    ], errs


def test_what_the_agent_cannot_use_is_refused_by_name():
    # The firmware's resolver takes IP addresses only; its SIP transports are IPv4.
    errs = errors_of({"dns": {"servers": ["ns.example.com", "1:2", "[ns.example.com]:53",
                                          "::ffff:1.2.3.4", "127.0.0.53:0", ""]}})
    assert errs == ["dns.servers[0]: must be an IP address[:port], got 'ns.example.com'",
                    "dns.servers[1]: must be an IP address[:port], got '1:2'",
                    "dns.servers[2]: must be an IP address[:port], got '[ns.example.com]:53'",
                    "dns.servers[3]: must be an IP address[:port], got '::ffff:1.2.3.4'",
                    "dns.servers[4]: must be an IP address[:port], got '127.0.0.53:0'",
                    "dns.servers[5]: must be an IP address[:port], got ''"], errs
    errs = errors_of({"accounts": [{"user": "6903", "server": "::1",
                                    "outbound_proxy": "[::1]:5060",
                                    "backup_outbound_proxy": "300.1.1.1"}],
                      "sip": {"local_ip": "::1"}})
    assert sorted(errs) == [
        "accounts[0].backup_outbound_proxy: must be host[:port]: bad host in '300.1.1.1'",
        "accounts[0].outbound_proxy: must be host[:port]: bad host in '[::1]:5060'",
        "accounts[0].server: must be a host name or IPv4 address, got '::1'",
        "sip.local_ip: must be an IPv4 address, got '::1'"], errs
    # a CR LF in a value that lands in a SIP header would start a header of its own
    errs = errors_of({"accounts": [{"user": "6903\r\nX-Evil: 1", "server": "a.lab",
                                    "display_name": "A\x00"}]})
    assert sorted(errs) == [
        "accounts[0].display_name: must not contain control characters, got 'A\\x00'",
        "accounts[0].user: must not contain control characters, got '6903\\r\\nX-Evil: 1'",
    ], errs


def test_bad_json_is_a_config_error():
    e = raises(config.ConfigError, config.parse, '{"accounts": [}')
    assert str(e).startswith("config: not valid JSON")


def test_save_atomic_keeps_bak_and_load_falls_back():
    d = make_tmpdir("sipfw-cfgtest")
    try:
        path = d + "/config.json"
        cfg, err = config.load(path)
        assert cfg == config.default() and "cannot read" in err and "using defaults" in err
        config.save_atomic(path, SEED)
        assert sorted(os.listdir(d)) == ["config.json"]
        second = {"accounts": [], "log": {"level": "debug"}}
        config.save_atomic(path, second)
        assert sorted(os.listdir(d)) == ["config.json", "config.json.bak"]
        cfg, err = config.load(path)
        assert err is None and cfg["log"]["level"] == "debug"
        with open(path + ".bak") as f:
            assert json.loads(f.read()) == SEED
        # a bad config is refused before anything is written
        raises(config.ConfigError, config.save_atomic, path, {"accounts": 1})
        assert config.load(path)[0]["log"]["level"] == "debug"
        # a reset between the two renames: only the .bak is there
        os.remove(path)
        cfg, err = config.load(path)
        assert cfg["accounts"][0]["user"] == "6903" and err.endswith("using %s.bak" % path)
        # a truncated main file: the .bak again
        with open(path, "w") as f:
            f.write('{"accounts": [')
        cfg, err = config.load(path)
        assert "not valid JSON" in err and cfg["accounts"][0]["user"] == "6903"
        # an oversized file is refused by its size, before any of it is read
        with open(path, "w") as f:
            f.write(" " * 20000)
        cfg, err = config.load(path)
        assert "file larger than 16384 bytes" in err and cfg["accounts"][0]["user"] == "6903"
    finally:
        remove_tmpdir(d)


def test_redacted_hides_secrets_only():
    cfg = config.validate({"accounts": [{"user": "6903", "password": "pw", "server": "x"},
                                        {"user": "6904", "ha1": "a" * 32, "server": "x"}],
                           "network": {"ssid": "lab", "psk": "12345678"}})
    red = config.redacted(cfg)
    assert red["accounts"][0]["password"] == "***" and red["accounts"][1]["ha1"] == "***"
    assert red["accounts"][1]["password"] == ""  # empty stays empty: nothing to hide
    assert red["network"]["psk"] == "***" and red["network"]["ssid"] == "lab"
    assert cfg["accounts"][0]["password"] == "pw"  # the original is untouched


def test_ha1_matches_rfc2617_example():
    # RFC 2617 section 3.5: Mufasa / testrealm@host.com / Circle Of Life
    assert config.ha1("Mufasa", "testrealm@host.com", "Circle Of Life") == (
        "939e7578ed9e3c518a452acee763bce9"
    )


def test_keepalive_interval_default_zero_off_and_bad_values_name_the_key():
    cfg = config.validate({"accounts": [{"user": "1", "server": "x"}]})
    assert cfg["sip"]["keepalive_s"] == 25
    off = config.validate({"accounts": [{"user": "1", "server": "x"}], "sip": {"keepalive_s": 0}})
    assert off["sip"]["keepalive_s"] == 0
    assert errors_of({"sip": {"keepalive_s": -1}}) == [
        "sip.keepalive_s: must be 0..3600, got -1"]
    assert errors_of({"sip": {"keepalive_s": 3601}}) == [
        "sip.keepalive_s: must be 0..3600, got 3601"]
    assert errors_of({"sip": {"keepalive_s": "25"}}) == [
        "sip.keepalive_s: must be an integer, got a string"]


def test_audio_keys_defaults_and_bad_values_name_the_key():
    import sys

    a = config.validate({})["audio"]
    mcu = sys.platform in ("esp32", "rp2")
    assert a == {"source": "i2s" if mcu else "silence", "sink": "i2s" if mcu else "null",
                 "codecs": ["PCMU", "PCMA"], "ptime": 20, "rtp_ports": [40000, 40100],
                 "jitter_ms": 40}
    a["codecs"].append("X")  # the default is a copy: the schema's own list is untouched
    assert config.validate({})["audio"]["codecs"] == ["PCMU", "PCMA"]
    good = {"source": "tone:1000", "sink": "wav:/rec.wav", "codecs": ["PCMA"], "ptime": 30,
            "rtp_ports": [41001, 41003], "jitter_ms": 120}
    assert config.validate({"audio": good})["audio"] == good
    assert config.validate({"audio": {"source": "wav:/a.wav", "sink": "echo"}})
    cases = (
        ({"source": "tone:x"}, "audio.source: must be i2s, echo, silence, wav:PATH, "
                               "tone:HZ (1..3999), got 'tone:x'"),
        ({"source": "tone:4000"}, "audio.source: "),
        ({"source": "null"}, "audio.source: "),
        ({"sink": "silence"}, "audio.sink: must be i2s, echo, null, wav:PATH, got 'silence'"),
        ({"sink": "tone:440"}, "audio.sink: "),
        ({"sink": "wav:"}, "audio.sink: "),
        ({"codecs": []}, "audio.codecs: must list PCMU and/or PCMA once each, got []"),
        ({"codecs": ["PCMU", "PCMU"]}, "audio.codecs: "),
        ({"codecs": ["G729"]}, "audio.codecs[0]: must be one of PCMU, PCMA, got 'G729'"),
        ({"codecs": "PCMU"}, "audio.codecs: must be a list, got a string"),
        ({"ptime": 5}, "audio.ptime: must be 10..60, got 5"),
        ({"ptime": 61}, "audio.ptime: must be 10..60, got 61"),
        ({"rtp_ports": [40000]}, "audio.rtp_ports: must be [first, last] with room"),
        ({"rtp_ports": [40001, 40002]}, "audio.rtp_ports: must be [first, last] with room"),
        ({"rtp_ports": [40100, 40000]}, "audio.rtp_ports: "),
        ({"rtp_ports": [80, 90]}, "audio.rtp_ports[0]: must be 1024..65535, got 80"),
        ({"jitter_ms": 10}, "audio.jitter_ms: must be 20..120, got 10"),
        ({"jitter_ms": True}, "audio.jitter_ms: must be an integer, got a boolean"),
        ({"volume": 3}, "audio.volume: unknown key"),
    )
    for bad, msg in cases:
        errs = errors_of({"audio": bad})
        assert errs and errs[0].startswith(msg), (bad, errs)
