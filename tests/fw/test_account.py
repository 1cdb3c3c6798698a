"""Account fields as the phone's account page means them."""

from sipua.account import Account
from sipua.sip.regdns import locate_plan

SEED = {"label": "6903", "display_name": "6903", "register_name": "6903", "user": "6903",
        "password": "6903", "server": "airties.com", "transport": "dns-srv", "expires": 180}


def test_seed_account():
    a = Account(SEED)
    assert a.aor == "sip:6903@airties.com" and a.registrar_uri == "sip:airties.com"
    assert a.transport is None and a.port is None and a.expires == 180
    assert locate_plan(a) == [("airties.com", None, None)]
    assert a.failback_mode == "new-requests" and a.redundancy == "successive"


def test_register_name_is_the_digest_user():
    cfg = dict(SEED, register_name="auth-6903")
    assert Account(cfg).auth_user == "auth-6903"


def test_outbound_proxy_and_backup_are_the_next_hops():
    cfg = dict(SEED, transport="udp", outbound_proxy="sbc1.example.com:5070",
               backup_outbound_proxy="[::1]:5080")
    assert locate_plan(Account(cfg)) == [("sbc1.example.com", 5070, "udp"), ("::1", 5080, "udp")]


def test_tls_account_uses_sips():
    a = Account(dict(SEED, transport="tls"))
    assert a.aor == "sips:6903@airties.com" and locate_plan(a) == [("airties.com", None, "tls")]


def test_port_is_ignored_with_dns_srv_and_pins_an_explicit_transport():
    assert locate_plan(Account(dict(SEED, port=5060))) == [("airties.com", None, None)]
    a = Account(dict(SEED, port=5070, transport="udp"))
    assert locate_plan(a) == [("airties.com", 5070, "udp")]
    assert Account(dict(SEED, password="")).password is None
