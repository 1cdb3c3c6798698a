"""The config path, fuzzed with hypothesis: a generated config is refused by
``sipua.config.validate`` with every error naming its key, or the agent built on it starts
and runs in virtual time (loopback only) with no exception escaping. The generator and the
property are tests/fw/cfgfuzz.py, which tests/fw/test_config_fuzz.py also runs on
MicroPython. ``SIPFW_FUZZ_EXAMPLES`` raises the count (``make fuzz``)."""

from __future__ import annotations

import os

import cfgfuzz
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sipua import config
from sipua.dns import DnsError

EXAMPLES = int(os.environ.get("SIPFW_FUZZ_EXAMPLES", "1000"))


def test_generated_configs_are_refused_by_key_or_run():
    seen = {"refused": 0, "runs": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.randoms(use_true_random=False))
    def prop(rng):
        seen[cfgfuzz.check(cfgfuzz.gen(rng))] += 1

    prop()
    # both sides of the property were exercised, not only refusals
    assert seen["refused"] > EXAMPLES // 10 and seen["runs"] > EXAMPLES // 10, seen


def test_the_property_catches_an_agent_that_dies_on_a_valid_config(monkeypatch):
    # The bug this fuzz was written for: a DNS server given by name passed validate, then
    # Agent.start raised. The schema refuses it by key now...
    obj = {"dns": {"servers": ["ns.example.com"]}}
    assert cfgfuzz.check(obj) == "refused"
    # ...and with the old, lenient check in its place, the property fails on it.
    good = config.validate({})
    good["dns"]["servers"] = ["ns.example.com"]
    monkeypatch.setattr(config, "validate", lambda obj: good)
    with pytest.raises(DnsError, match="must be an IP address"):
        cfgfuzz.check(obj)
