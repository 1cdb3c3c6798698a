"""Static records from the config (``dns.static``): the phone's "static DNS cache".

Used when DNS has nothing for a question (no server answered, or NXDOMAIN / no data), so a
phone still finds its servers when the name server is down. One record per string, in zone
file order: ``NAME [TTL] TYPE RDATA``::

    "airties.com NAPTR 2 0 s SIP+D2T \\"\\" _sip._tcp.airties.com"
    "_sip._tcp.airties.com 3600 SRV 1 0 5060 uc2.airties.com"
    "uc2.airties.com A 91.220.65.27"

Imported only when the config has static records.
"""

from ..addr import is_ip
from . import AAAA, NAPTR, SRV, A, DnsError

_TYPES = {"A": A, "AAAA": AAAA, "SRV": SRV, "NAPTR": NAPTR}


class Static:
    def __init__(self, lines, ttl=3600):
        self._d = {}  # type: dict # (lower name, type) -> [ttl, [data, ...]]
        for i, line in enumerate(lines):
            try:
                name, t, rttl, data = parse_record(line)
            except DnsError as err:
                raise DnsError("dns.static[%d]: %s" % (i, err)) from None
            ent = self._d.setdefault((name.lower(), t), [ttl if rttl is None else rttl, []])
            if rttl is not None and rttl < ent[0]:
                ent[0] = rttl
            ent[1].append(data)

    def lookup(self, name, qtype):
        """(ttl, [data, ...]) for the question, or None."""
        e = self._d.get((name.lower().rstrip("."), qtype))
        return (e[0], e[1]) if e is not None else None

    def __len__(self):
        return len(self._d)


def parse_record(line):
    """One zone-style line -> (name, type, ttl or None, data); data shaped like decode's."""
    if not isinstance(line, str):
        raise DnsError("a record must be a string like 'NAME TYPE RDATA'")
    parts = line.split()
    if len(parts) < 3:
        raise DnsError("%r: want NAME [TTL] TYPE RDATA" % line)
    name = parts[0].rstrip(".")
    i = 2 if parts[1].isdigit() else 1
    ttl = int(parts[1]) if i == 2 else None
    t = _TYPES.get(parts[i].upper())
    if t is None:
        raise DnsError("%r: type %s cannot be static (A, AAAA, SRV, NAPTR)" % (line, parts[i]))
    rd = parts[i + 1 :]
    try:
        if t == A or t == AAAA:
            if len(rd) != 1 or not is_ip(rd[0]) or (t == A) == (":" in rd[0]):
                raise ValueError
            return name, t, ttl, rd[0]
        if t == SRV:
            if len(rd) != 4:
                raise ValueError
            return name, t, ttl, (_u16(rd[0]), _u16(rd[1]), _u16(rd[2]), rd[3].rstrip(".") or ".")
        if t == NAPTR:
            if len(rd) != 6:
                raise ValueError
            flags, svc, rx = [x.strip('"').encode() for x in rd[2:5]]
            return name, t, ttl, (_u16(rd[0]), _u16(rd[1]), flags, svc, rx,
                                  rd[5].rstrip(".") or ".")
    except ValueError:
        pass
    raise DnsError("%r: bad %s data" % (line, parts[i]))


def _u16(s):
    v = int(s)
    if not 0 <= v <= 65535:
        raise ValueError
    return v
