"""The filter plugin interface."""

from __future__ import annotations


class Filter:
    name = "filter"

    def __call__(self, ev):
        """Return ev (possibly changed), None to drop it, or a list of events."""
        return ev


def chain(filters, ev) -> list:
    """Run ev through every filter in order; the events left to print."""
    evs = [ev]
    for f in filters:
        out = []
        for e in evs:
            r = f(e)
            if r is None:
                continue
            out.extend(r if isinstance(r, list) else [r])
        evs = out
        if not evs:
            break
    return evs
