# Runs ON the MicroPython unix port (bench_dns.py starts it): decode rate of the firmware's
# DNS codec over a corpus file of 2-byte-length-prefixed responses. Prints one JSON line.
#   micropython upy_decode.py CORPUS PASSES
import json
import sys
import time

from sipua.dns.wire import decode

with open(sys.argv[1], "rb") as f:
    blob = f.read()
msgs = []
p = 0
while p < len(blob):
    n = blob[p] << 8 | blob[p + 1]
    msgs.append(blob[p + 2 : p + 2 + n])
    p += 2 + n
passes = int(sys.argv[2])
t0 = time.ticks_us()
for _ in range(passes):
    for m in msgs:
        decode(m)
us = time.ticks_diff(time.ticks_us(), t0)
print(json.dumps({"messages": len(msgs) * passes, "us": us}))
