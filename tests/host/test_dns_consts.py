"""The DNS modules keep protocol numbers as private consts (``_HEADER_LEN = const(12)``:
MicroPython inlines them and keeps no name, so no qstr and no dict entry). Where a module
keeps a copy of another's value, it must say the same; the response codes must be RFC 1035's
(as dnspython numbers them)."""

import ast
import os

import dns.rcode

DNS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "firmware", "sipua", "dns")


def consts(name):
    """{name: value} of every ``NAME = const(<int>)`` at module level of dns/<name>."""
    with open(os.path.join(DNS, name)) as f:
        tree = ast.parse(f.read())
    out = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", "") == "const"
                and isinstance(node.value.args[0], ast.Constant)):
            out[node.targets[0].id] = node.value.args[0].value
    return out


def test_resolver_copies_match_wire_and_cache():
    wire, cache, res = consts("wire.py"), consts("cache.py"), consts("resolver.py")
    for k in ("_HEADER_LEN", "_EDNS_PAYLOAD"):
        assert res[k] == wire[k], k
    for k in ("_EXPIRES", "_RCODE", "_RECORDS", "_EXTRA"):
        assert res[k] == cache[k], k
    assert wire["_HEADER_LEN"] == 12 and wire["_EDNS_PAYLOAD"] == 1232


def test_cache_entry_fields_follow_put():
    """Cache.put stores (expires, rcode, records, extra, ttl): the field consts name them."""
    c = consts("cache.py")
    fields = ("_EXPIRES", "_RCODE", "_RECORDS", "_EXTRA", "_TTL_S")
    assert [c[k] for k in fields] == [0, 1, 2, 3, 4]
    with open(os.path.join(DNS, "cache.py")) as f:
        assert "d[key] = (now + ttl * 1000, rcode, records, extra, ttl)" in f.read()


def test_response_codes_are_rfc_1035s():
    res = consts("resolver.py")
    assert res["_NOERROR"] == dns.rcode.NOERROR
    assert res["_FORMERR"] == dns.rcode.FORMERR
    assert res["_SERVFAIL"] == dns.rcode.SERVFAIL
    assert res["_NXDOMAIN"] == dns.rcode.NXDOMAIN
