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

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(os.path.dirname(HERE), "firmware"), HERE]

from bench_dns import corpus  # noqa: E402
from fuzzlib import args_parser, byte_mutation, run  # noqa: E402
from sipua.dns import DnsError  # noqa: E402
from sipua.dns.wire import _decode as decode  # noqa: E402


def mutate(rng, seeds):
    b = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        n = len(b)
        if op == 5 and n > 2:  # a compression pointer anywhere, to anywhere
            at = rng.randrange(n - 1)
            ptr = rng.randrange(max(n, 1) + 64)
            b[at] = 0xC0 | (ptr >> 8) & 0x3F
            b[at + 1] = ptr & 0xFF
        elif op == 6 and n >= 12:  # header counts
            at = rng.choice((4, 6, 8, 10))
            b[at + 1] = rng.choice((0, 1, 2, 3, 255, (b[at + 1] + 1) & 0xFF))
            b[at] = rng.choice((0, 0, 0, 255))
        else:
            byte_mutation(rng, b, seeds)
    return bytes(b)


def well_formed(m):
    for sec in (m.answers, m.authority, m.additional):
        for rr in sec:
            assert len(rr) == 5 and isinstance(rr[0], str) and 0 <= rr[3] <= 0x7FFFFFFF


def main():
    args = args_parser("mutation fuzz of the DNS decoder").parse_args()
    return run("dns", corpus(300, seed=args.seed), mutate, decode, DnsError, args, well_formed)


if __name__ == "__main__":
    sys.exit(main())
