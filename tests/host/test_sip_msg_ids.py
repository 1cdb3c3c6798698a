"""Modules on the registration path keep hdr.py's header ids as private consts (``_H_VIA =
const(1)``: MicroPython drops the name, no dict entry, no import). Each copy must say what
hdr.py says."""

import ast
import os

SIP = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "firmware", "sipua", "sip")


def consts(path):
    """{name: value} of every ``NAME = const(<int>)`` at module level."""
    with open(path) as f:
        tree = ast.parse(f.read())
    out = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", "") == "const"
                and isinstance(node.value.args[0], ast.Constant)):
            out[node.targets[0].id] = node.value.args[0].value
    return out


def test_private_header_ids_match_hdr():
    hdr = {k.lstrip("_"): v for k, v in consts(os.path.join(SIP, "hdr.py")).items()}
    assert hdr["H_VIA"] == 1 and len(hdr) == 43 and len(set(hdr.values())) == 43
    checked = 0
    for name in sorted(os.listdir(SIP)):
        if not name.endswith(".py") or name == "hdr.py":
            continue
        for k, v in consts(os.path.join(SIP, name)).items():
            if k.startswith("_H_"):
                assert hdr.get(k[1:]) == v, "%s: %s = %d, hdr.py says %s" % (
                    name, k, v, hdr.get(k[1:]))
                checked += 1
    assert checked >= 15  # msg, auth, register


def test_reason_numbers_name_their_text():
    """``_R_BAD_VIA_HOST = const(8)``: reason 8 of sip/reasons.py's table reads "Bad Via host"."""
    import re
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(SIP), ".."))
    from sipua.sip import SipError

    checked = 0
    for name in sorted(os.listdir(SIP)):
        if not name.endswith(".py"):
            continue
        for k, v in consts(os.path.join(SIP, name)).items():
            if k.startswith("_R_"):
                text = SipError(400, v).reason
                assert "_R_" + re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_") == k, (
                    name, k, v, text)
                checked += 1
    assert checked >= 29  # scan and msg
