"""The config path under generated configs, on both interpreters: ``validate`` refuses a
config with every error naming its key, or the agent built on it starts and runs (virtual
time, loopback only) without an exception escaping. The generator is cfgfuzz.py; the
host suite drives the same property with hypothesis (tests/host/test_config_hypothesis.py)."""

import random

from cfgfuzz import check, gen

SEEDS = 100  # a second or two; tests/host runs 1000, `make fuzz` more


def test_generated_configs_are_refused_by_key_or_run():
    seen = {"refused": 0, "runs": 0}
    for seed in range(SEEDS):
        random.seed(seed)
        obj = gen(random)
        try:
            seen[check(obj, run_ms=20000)] += 1
        except Exception as e:
            raise AssertionError("seed %d: %r on %r" % (seed, e, obj)) from e
    assert seen["refused"] and seen["runs"], seen  # both sides of the property were reached
