"""The resolver's memory: positive answers by TTL, negative answers by the SOA (RFC 2308).

Bounded twice, because a board has ~100 KB of heap and answers come from strangers: at most
``max_entries`` entries (the one expiring first goes when full) and no TTL above ``max_ttl``.
Time is the scheduler's ``now()`` in ms, so tests expire entries in virtual time.
"""

from ..compat import const
from .wire import SOA

# Entry fields (private consts: no names at run time; resolver.py reads entries with its own
# copies, checked by tests/host/test_dns_consts.py).
_EXPIRES = const(0)
_RCODE = const(1)
_RECORDS = const(2)
_EXTRA = const(3)
_TTL_S = const(4)


class Cache:
    def __init__(self, max_entries=32, max_ttl=86400):
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self._d = {}

    def __len__(self):
        return len(self._d)

    def get(self, key, now):
        """The live entry for key, or None; its TTL counts down from when it was stored."""
        e = self._d.get(key)
        if e is None:
            return None
        if e[_EXPIRES] - now <= 0:
            del self._d[key]
            return None
        return e

    def put(self, key, now, ttl, rcode, records, extra=()):
        """Store for ttl seconds; a zero TTL means "use once, do not keep" (RFC 1035 §3.2.1)."""
        if ttl > self.max_ttl:
            ttl = self.max_ttl
        if ttl <= 0 or self.max_entries <= 0:
            return
        d = self._d
        if key not in d and len(d) >= self.max_entries:
            self._evict(now)
        d[key] = (now + ttl * 1000, rcode, records, extra, ttl)

    def _evict(self, now):
        d = self._d
        for k in [k for k, e in d.items() if e[_EXPIRES] - now <= 0]:
            del d[k]
        if len(d) >= self.max_entries:
            first = None
            for k, e in d.items():
                if first is None or e[_EXPIRES] < d[first][_EXPIRES]:
                    first = k
            del d[first]

    def clear(self):
        self._d = {}


def negative_ttl(msg):
    """RFC 2308 §5: min(SOA TTL, SOA MINIMUM) of the authority SOA; None if there is none."""
    for rr in msg.authority:
        if rr[1] == SOA:
            m = rr[4][6]
            return rr[3] if rr[3] < m else m
    return None
