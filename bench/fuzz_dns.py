"""`make fuzz`: a long mutation fuzz of the firmware's DNS decoder (bounded in count and time).

Seeds are realistic responses (bench_dns.corpus: NAPTR, SRV with glue, A, AAAA, CNAME,
NXDOMAIN+SOA); each input is a seed with 1-6 random mutations: byte flips, cuts, inserts,
deletes, compression pointers written at random offsets, header counts changed, two seeds
spliced. Anything but ``DnsError`` escaping ``decode`` is a failure: the input is saved to
``bench/fuzz-crash-N.bin`` and the run exits 1. It calls ``wire._decode``, the parser behind
``decode``'s last-resort catch-all, so a bound check that is missing shows up here instead of
being hidden by the safety net. A decoded message must also be well-formed
(records are 5-tuples of the documented shapes).

    python bench/fuzz_dns.py [--inputs 1000000] [--max-seconds 900] [--seed 1]
"""

import argparse
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(os.path.dirname(HERE), "firmware"), HERE]

from bench_dns import corpus  # noqa: E402
from sipua.dns import DnsError  # noqa: E402
from sipua.dns.wire import _decode as decode  # noqa: E402


def mutate(rng, seeds):
    b = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        n = len(b)
        if op == 0 and n:
            b[rng.randrange(n)] = rng.randrange(256)
        elif op == 1 and n:
            del b[rng.randrange(n) :]
        elif op == 2:
            at = rng.randrange(n + 1)
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and n:
            at = rng.randrange(n)
            del b[at : at + rng.randint(1, 8)]
        elif op == 4 and n > 2:  # a compression pointer anywhere, to anywhere
            at = rng.randrange(n - 1)
            ptr = rng.randrange(max(n, 1) + 64)
            b[at] = 0xC0 | (ptr >> 8) & 0x3F
            b[at + 1] = ptr & 0xFF
        elif op == 5 and n >= 12:  # header counts
            at = rng.choice((4, 6, 8, 10))
            b[at + 1] = rng.choice((0, 1, 2, 3, 255, (b[at + 1] + 1) & 0xFF))
            b[at] = rng.choice((0, 0, 0, 255))
        else:
            other = rng.choice(seeds)
            cut = rng.randrange(len(other) + 1)
            b[rng.randrange(n + 1) :] = other[cut:]
    return bytes(b)


def well_formed(m):
    for sec in (m.answers, m.authority, m.additional):
        for rr in sec:
            assert len(rr) == 5 and isinstance(rr[0], str) and 0 <= rr[3] <= 0x7FFFFFFF


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=1_000_000)
    ap.add_argument("--max-seconds", type=float, default=900)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    seeds = corpus(300, seed=args.seed)
    t0 = time.monotonic()
    done = accepted = 0
    while done < args.inputs and time.monotonic() - t0 < args.max_seconds:
        data = mutate(rng, seeds)
        done += 1
        try:
            m = decode(data)
        except DnsError:
            continue
        except Exception as e:  # the one thing this run looks for
            path = os.path.join(HERE, "fuzz-crash-%d.bin" % done)
            with open(path, "wb") as f:
                f.write(data)
            print("ESCAPED %r on input %d, saved %s" % (e, done, path))
            return 1
        accepted += 1
        well_formed(m)
        if done % 200_000 == 0:
            print("  %d inputs, %.0f s" % (done, time.monotonic() - t0), flush=True)
    took = time.monotonic() - t0
    print("fuzz_dns: %d inputs in %.0f s (%.0f/s): %d decoded, %d rejected with DnsError, "
          "0 other exceptions" % (done, took, done / took, accepted, done - accepted))
    if done < args.inputs:
        print("stopped by --max-seconds before %d inputs" % args.inputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
