"""The mutation-fuzz loop `make fuzz` runs for each firmware decoder.

A decoder under test is a function of bytes that either returns or raises its package's one
defined error; anything else escaping is the failure this looks for: the input is saved as
``bench/fuzz-crash-<name>-N.bin`` and the run ends with exit code 1.
"""

import argparse
import os
import random
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def byte_mutation(rng, b, seeds):
    """One generic mutation of bytearray ``b`` in place: flip, cut, insert, delete, splice."""
    n = len(b)
    op = rng.randrange(5)
    if op == 0 and n:
        b[rng.randrange(n)] = rng.randrange(256)
    elif op == 1 and n:
        del b[rng.randrange(n):]
    elif op == 2:
        at = rng.randrange(n + 1)
        b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif op == 3 and n:
        at = rng.randrange(n)
        del b[at:at + rng.randint(1, 8)]
    else:
        other = rng.choice(seeds)
        cut = rng.randrange(len(other) + 1)
        b[rng.randrange(n + 1):] = other[cut:]


def args_parser(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--inputs", type=int, default=1_000_000)
    ap.add_argument("--max-seconds", type=float, default=900)
    ap.add_argument("--seed", type=int, default=1)
    return ap


def run(name, seeds, mutate, decode, defined_error, args, check=None):
    """Fuzz ``decode`` with ``mutate(rng, seeds)`` inputs; 0 when nothing else escaped."""
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    done = accepted = 0
    while done < args.inputs and time.monotonic() - t0 < args.max_seconds:
        data = mutate(rng, seeds)
        done += 1
        try:
            out = decode(data)
        except defined_error:
            continue
        except Exception as e:  # noqa: BLE001 - the one thing this run looks for
            path = os.path.join(HERE, "fuzz-crash-%s-%d.bin" % (name, done))
            with open(path, "wb") as f:
                f.write(data)
            print("ESCAPED %r on input %d, saved %s" % (e, done, path))
            return 1
        accepted += 1
        if check is not None:
            check(out)
        if done % 200_000 == 0:
            print("  %d inputs, %.0f s" % (done, time.monotonic() - t0), flush=True)
    took = time.monotonic() - t0
    print("fuzz_%s: %d inputs in %.0f s (%.0f/s): %d decoded, %d rejected with %s, "
          "0 other exceptions" % (name, done, took, done / took, accepted, done - accepted,
                                  defined_error.__name__))
    if done < args.inputs:
        print("stopped by --max-seconds before %d inputs" % args.inputs)
    return 0
