"""The locator driven to an answer in one call, for the host side only (``sipfw resolve``,
tests): a phone never blocks. Not put on a board (``build.HOST_ONLY``).
"""

from . import Targets


def locate_blocking(sched, locator, target, timeout_ms=60000, **kw):
    """Run the scheduler until ``target`` is located: (targets, error)."""
    box = []
    job = locator.locate(target, lambda t, e: box.append((t, e)), **kw)
    if not sched.run_until(lambda: box, timeout_ms):
        job.cancel()
        return Targets(), "timed out"
    return box[0]


def as_dict(t):
    """A Target as plain data (``sipfw resolve --json``)."""
    return {"transport": t.transport, "host": t.host, "ip": t.ip, "port": t.port,
            "priority": t.priority, "weight": t.weight, "source": t.source}
