"""Shared helpers for the SIP firmware tests (both interpreters)."""

import json


def rfc4475_index():
    with open("tests/data/rfc4475/index.json") as f:
        return json.load(f)["messages"]


def rfc4475(name):
    with open("tests/data/rfc4475/%s.dat" % name, "rb") as f:
        return f.read()


def expectation_met(entry, codes):
    """codes: the final status codes the phone sent (100 Trying left out), in order.

    Returns None when the answer is what index.json says, else a description."""
    exp = entry["expect"]
    final = codes[-1] if codes else None
    if exp == "drop":
        return None if not codes else "expected no answer, got %s" % codes
    if exp == "any":
        return None if codes else "expected an answer"
    if exp == "accept":
        return None if final is not None and final not in (400, 505) else "got %s" % codes
    if final in exp:
        return None
    if entry["liberal_ok"] and final is not None and final not in (400, 505):
        return None
    return "expected %s, got %s" % (exp, codes)


def finals(datas):
    """Status codes of response bytes, 100 Trying left out."""
    out = []
    for d in datas:
        code = int(d[8:11])
        if code != 100:
            out.append(code)
    return out
