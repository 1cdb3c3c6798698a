# Runs ON the MicroPython unix port (tests/host/test_dns_dnsmasq.py starts it): the firmware's
# resolver and locator over real UDP, in real time, against the server named on the command
# line. Prints one JSON line: {"targets": [...], "error": ..., "ttl": ..., "heap": bytes}.
#   micropython upy_locate.py HOST:PORT TARGET
import gc
import json
import sys

from sipua.dns.locator import Locator, as_dict, locate_blocking
from sipua.dns.resolver import Resolver
from sipua.sched import Scheduler

server, target = sys.argv[1], sys.argv[2]
sched = Scheduler()
loc = Locator(sched, Resolver(sched, [server]))
gc.collect()
gc.disable()  # measure what one resolution allocates, not what the collector left
before = gc.mem_alloc()
targets, err = locate_blocking(sched, loc, target, 15000)
heap = gc.mem_alloc() - before
gc.enable()
print(json.dumps({"targets": [as_dict(t) for t in targets], "error": err, "ttl": targets.ttl,
                  "heap": heap}))
