"""`sipfw ports`: list attached boards (USB serial and virtual)."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("ports", help="list attached boards",
                       description="USB serial ports whose VID:PID matches a board config, "
                       "and running virtual boards. --port auto picks the one board here.")
    p.add_argument("--all", action="store_true", help="also serial ports of unknown boards")
    p.add_argument("--json", action="store_true", help="one JSON object per port")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import json
    import os

    from .. import boards

    ports = boards.list_ports(only_known=not args.all)
    if args.json:
        for port in ports:
            print(json.dumps(port.as_dict(), sort_keys=True))
        return 0
    if not ports:
        print("no boards found (plug one in, or start `sipfw vboard`)")
        return 0
    chosen = os.environ.get(boards.ENV_PORT)
    for port in ports:
        mark = "*" if chosen and boards._matches(port, chosen) else " "
        print("%s %-14s %-8s %-10s %-24s %s" % (mark, port.device, port.board or "?",
                                                port.vid_pid or "-", port.serial_number or "-",
                                                port.description))
    return 0
