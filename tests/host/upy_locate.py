# Runs ON the MicroPython unix port (tests/host/test_dns_dnsmasq.py starts it): the firmware's
# resolver and locator over real UDP, in real time, against the server named on the command
# line. Prints one JSON line: {"targets": [...], "error": ..., "ttl": ..., "heap": bytes}.
#   micropython upy_locate.py HOST:PORT TARGET
import gc
import json
import sys

from sipua.dns.locator import Locator
from sipua.dns.resolver import Resolver
from sipua.sched import Scheduler

server, target = sys.argv[1], sys.argv[2]
sched = Scheduler()
loc = Locator(sched, Resolver(sched, [server]))
box = []  # the board tree has no sipua/dns/host.py (host only): its locate_blocking, inline
gc.collect()
gc.disable()  # measure what one resolution allocates, not what the collector left
before = gc.mem_alloc()
loc.locate(target, lambda t, e: box.append((t, e)))
sched.run_until(lambda: box, 15000)
heap = gc.mem_alloc() - before
gc.enable()
targets, err = box[0] if box else ([], "timed out")
print(json.dumps({"targets": [{"transport": t.transport, "host": t.host, "ip": t.ip,
                               "port": t.port, "priority": t.priority, "weight": t.weight,
                               "source": t.source} for t in targets],
                  "error": err, "ttl": getattr(targets, "ttl", None), "heap": heap}))
