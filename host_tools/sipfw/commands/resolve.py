"""``sipfw resolve DOMAIN``: the firmware's own RFC 3263 locator, run on the host.

The same ``sipua.dns`` code the board runs, on CPython in real time: NAPTR -> SRV -> A/AAAA,
printed as the seed's table (or as JSON, best target first).
"""

import json
import sys

from ..errors import SipfwError, UsageError

COLUMNS = ("SIP server", "NAPTR", "SRV host", "priority", "weight", "port", "IP", "transport")
_TYPES = {1: "A", 28: "AAAA", 33: "SRV", 35: "NAPTR", 5: "CNAME"}


def add_parser(sub):
    p = sub.add_parser("resolve", help="resolve a SIP domain as the phone does (RFC 3263)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("domain", metavar="DOMAIN", help="SIP domain, host or sip:/sips: URI")
    p.add_argument("--dns", metavar="HOST[:PORT]", action="append",
                   help="name server to ask (repeatable; default: /etc/resolv.conf)")
    p.add_argument("--transport", choices=("udp", "tcp", "tls"), help="only this transport")
    p.add_argument("--port", type=int, help="explicit port: A/AAAA lookup only (RFC 3263 §4.2)")
    p.add_argument("--ipv6", action="store_true", help="also ask AAAA records")
    p.add_argument("--timeout", type=float, default=15.0, metavar="S",
                   help="give up after S seconds (default 15)")
    p.add_argument("--json", action="store_true", help="print one JSON list, best first")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="show every query and its round-trip time (on stderr)")
    p.set_defaults(func=run)


def run(args):
    from ..paths import use_firmware

    use_firmware()
    from sipua.dns import DnsError
    from sipua.dns.host import as_dict, locate_blocking
    from sipua.dns.locator import Locator
    from sipua.dns.resolver import Resolver, parse_server
    from sipua.sched import Scheduler

    try:
        servers = [parse_server(s) for s in args.dns] if args.dns else None
    except DnsError as e:
        raise UsageError(str(e)) from e
    sched = Scheduler()
    res = Resolver(sched, servers)
    if not res.servers:
        return _fail(args, "no DNS server: give --dns HOST[:PORT]")
    if args.verbose:
        res.trace = _trace
    loc = Locator(sched, res, ("udp", "tcp", "tls"), ipv6=args.ipv6)
    try:
        targets, err = locate_blocking(sched, loc, args.domain, int(args.timeout * 1000),
                                       transport=args.transport, port=args.port)
    except (DnsError, OSError, ValueError) as e:
        return _fail(args, str(e))
    if not targets:
        return _fail(args, err or "nothing found")
    if args.json:
        print(json.dumps([as_dict(t) for t in targets]))
    else:
        print(table(args.domain, targets))
        if targets.ttl is not None:
            print("(re-resolve in %d s: smallest TTL used)" % targets.ttl)
    return 0


def _fail(args, why):
    if args.json:
        print("[]")
    raise SipfwError("%s: %s" % (args.domain, why))


def _trace(server, proto, name, qtype, rtt_ms, outcome):
    print(";; %-5s %-28s @%s:%d/%s  %d ms  %s" % (
        _TYPES.get(qtype, qtype), name, server[0], server[1], proto, rtt_ms, outcome),
        file=sys.stderr)


def table(domain, targets):
    rows = [COLUMNS]
    last = None
    for i, t in enumerate(targets):
        via = t.naptr if t.source == "naptr" else "-"
        srv = t.source != "a"
        rows.append((domain if i == 0 else "",
                     via if via != last else "",
                     t.host if srv else "-",
                     str(t.priority) if srv else "-",
                     str(t.weight) if srv else "-",
                     str(t.port), t.ip, t.transport.upper()))
        last = via
    widths = [max(len(r[c]) for r in rows) for c in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
