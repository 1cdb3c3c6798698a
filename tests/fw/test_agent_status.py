"""The agent's `status` console answer, without a network (both interpreters)."""

import gc

from fwtest import ListLog, new_sched
from sipua.agent import Agent


def make_agent(heap_free):
    s, _ = new_sched()
    return Agent(s, {}, ListLog(), heap_free=heap_free)


def test_status_gc_reports_the_heap_after_a_collection():
    # `status` alone reports free heap minus the garbage since the last collection; `status
    # gc` collects first, which is what a "heap back to its baseline" check must compare.
    if not hasattr(gc, "mem_free"):  # CPython: no heap figure, the answer is still whole
        st = make_agent(lambda: -1).status(["gc"])
        assert st["heap_free"] == -1 and st["accounts"] == [] and st["calls"] == []
        return
    a = make_agent(gc.mem_free)
    gc.collect()
    gc.disable()
    try:
        junk = [bytearray(64) for _ in range(400)]  # ~30 KB that becomes garbage
        junk = None
        plain = a.status()["heap_free"]
        collected = a.status(["gc"])["heap_free"]
    finally:
        gc.enable()
    assert junk is None
    assert collected > plain + 20000, (plain, collected)
