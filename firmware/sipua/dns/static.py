"""Static records from the config (``dns.static``): the phone's "static DNS cache".

Used when DNS has nothing for a question (no server answered, or NXDOMAIN / no data), so a
phone still finds its servers when the name server is down. Built straight from the
validated config's records (``config.validate`` checked every field)::

    {"name": "airties.com", "type": "NAPTR", "order": 2, "preference": 0, "flags": "s",
     "service": "SIP+D2T", "replacement": "_sip._tcp.airties.com"}
    {"name": "uc2.airties.com", "type": "A", "address": "91.220.65.27", "ttl": 3600}

Imported only when the config has static records, with the rest of the DNS code.
"""

from .wire import AAAA, NAPTR, SRV, A

_TYPES = {"A": A, "AAAA": AAAA, "SRV": SRV, "NAPTR": NAPTR}


def _host(s):
    return s.rstrip(".").lower() or "."


class Static:
    def __init__(self, records):
        self._d = {}  # type: dict # (lower name, type) -> [ttl, [data, ...]]
        for r in records:
            t = r["type"]
            data = r.get("address")  # type: object
            if t == "SRV":  # data shaped like wire.decode's
                data = (r["priority"], r["weight"], r["port"], _host(r["target"]))
            elif t == "NAPTR":
                data = (r["order"], r["preference"], r.get("flags", "").encode(),
                        r["service"].encode(), r.get("regexp", "").encode(),
                        _host(r["replacement"]))
            ttl = r.get("ttl", 300)
            ent = self._d.setdefault((_host(r["name"]), _TYPES[t]), [ttl, []])
            if ttl < ent[0]:
                ent[0] = ttl
            ent[1].append(data)

    def lookup(self, name, qtype):
        """(ttl, [data, ...]) for the question, or None."""
        e = self._d.get((_host(name), qtype))
        return (e[0], e[1]) if e is not None else None

    def __len__(self):
        return len(self._d)
