"""Static records from the config (``dns.static``): the phone's "static DNS cache".

Used when DNS has nothing for a question (no server answered, or NXDOMAIN / no data), so a
phone still finds its servers when the name server is down. One record per string, in zone
file order: ``NAME [TTL] TYPE RDATA``::

    "airties.com NAPTR 2 0 s SIP+D2T \\"\\" _sip._tcp.airties.com"
    "_sip._tcp.airties.com 3600 SRV 1 0 5060 uc2.airties.com"
    "uc2.airties.com A 91.220.65.27"

Imported only when the config has static records.
"""

from . import AAAA, NAPTR, SRV, A, DnsError, type_code
from .resolver import is_ip


class Static:
    def __init__(self, lines, ttl=3600):
        self.ttl = ttl  # reported for records without their own TTL
        self._d = {}  # type: dict # (lower name, type) -> [data, ...]
        for i, line in enumerate(lines):
            try:
                name, t, data = parse_record(line)
            except DnsError as e:
                raise DnsError("dns.static[%d]: %s" % (i, e))
            self._d.setdefault((name.lower(), t), []).append(data)

    def lookup(self, name, qtype):
        return self._d.get((name.lower().rstrip("."), qtype))

    def __len__(self):
        return len(self._d)


def parse_record(line):
    """One zone-style line -> (name, type, data) with data shaped like wire.decode's."""
    if not isinstance(line, str):
        raise DnsError("a record must be a string like 'NAME TYPE RDATA'")
    parts = line.split()
    if len(parts) < 3:
        raise DnsError("%r: want NAME [TTL] TYPE RDATA" % line)
    name = parts[0].rstrip(".")
    i = 2 if parts[1].isdigit() else 1
    t = type_code(parts[i])
    rd = parts[i + 1 :]
    try:
        if t == A or t == AAAA:
            if len(rd) != 1 or not is_ip(rd[0]) or (t == A) == (":" in rd[0]):
                raise ValueError
            return name, t, rd[0]
        if t == SRV:
            if len(rd) != 4:
                raise ValueError
            return name, t, (_u16(rd[0]), _u16(rd[1]), _u16(rd[2]), rd[3].rstrip(".") or ".")
        if t == NAPTR:
            if len(rd) != 6:
                raise ValueError
            flags, svc, rx = [x.strip('"').encode() for x in rd[2:5]]
            return name, t, (_u16(rd[0]), _u16(rd[1]), flags, svc, rx, rd[5].rstrip(".") or ".")
    except ValueError:
        raise DnsError("%r: bad %s data" % (line, parts[i]))
    raise DnsError("%r: type %s cannot be static" % (line, parts[i]))


def _u16(s):
    v = int(s)
    if not 0 <= v <= 65535:
        raise ValueError
    return v
