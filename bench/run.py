"""`make bench`: run every bench/bench_*.py, print each one's table, merge the figures.

Contract for a bench script: it prints its own table on stdout and, given ``--json PATH``,
writes its figures there as one JSON object. This runner stores each object in
``bench/results.json`` under the script's name without the ``bench_`` prefix (``dns`` for
``bench_dns.py``), keeping the other benches' figures as they were.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results.json")


def main(argv):
    only = set(argv)
    names = sorted(f for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py"))
    try:
        with open(RESULTS) as f:
            results = json.load(f)
    except (OSError, ValueError):
        results = {}
    failed = []
    for fname in names:
        key = fname[len("bench_") : -3]
        if only and key not in only:
            continue
        print("== %s ==" % fname, flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            path = tmp.name
        try:
            rc = subprocess.call([sys.executable, os.path.join(HERE, fname), "--json", path])
            with open(path) as f:
                text = f.read()
            if rc == 0 and text.strip():
                results[key] = json.loads(text)
            else:
                failed.append(fname)
        finally:
            os.unlink(path)
        print(flush=True)
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write("\n")
    print("figures merged into %s" % os.path.relpath(RESULTS))
    if failed:
        print("failed: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
