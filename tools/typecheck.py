"""Type-check firmware/ against the MicroPython esp32 and rp2 port stubs.

A call that does not exist on a board's port (``machine.NoSuchThing()``, ``time.monotonic``)
fails here, before it fails on a board. Each port's stubs live in their own folder
(.venv/stubs/<port>, installed by `make setup`) because both ship ``machine.pyi``; the stubs
also replace CPython's standard library (``--custom-typeshed-dir``), so CPython-only modules
are caught too. ``sipua/_cpython.py`` holds the CPython stand-ins and is left out.
"""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
PORTS = ("esp32", "rp2")

CONFIG = """[mypy]
check_untyped_defs = True
warn_unused_ignores = False
# Port checking is the point, not annotating firmware: empty-list inference is noise here.
disable_error_code = var-annotated

[mypy-_mpy_shed.*,stdlib.*,stubs.*,sipua._cpython]
ignore_errors = True
"""


def targets():
    out = []
    for name in ("boot.py", "main.py"):
        if os.path.exists(os.path.join(FIRMWARE, name)):
            out.append(name)
    return [*out, "-p", "sipua"]


def check(port, config_path):
    stubs = os.path.join(ROOT, ".venv", "stubs", port)
    if not os.path.isdir(os.path.join(stubs, "stdlib")):
        print("typecheck: no stubs for %s in %s: run `make setup`" % (port, stubs))
        return 2
    env = dict(os.environ, MYPYPATH=stubs)
    cmd = [sys.executable, "-m", "mypy", "--config-file", config_path,
           "--custom-typeshed-dir", stubs, "--no-incremental", *targets()]
    proc = subprocess.run(cmd, cwd=FIRMWARE, env=env, capture_output=True, text=True)
    # Errors inside the stubs themselves are not ours; keep only lines about firmware files.
    lines = [x for x in proc.stdout.splitlines() if not x.startswith(stubs)]
    mine = [x for x in lines if ": error:" in x]
    for line in lines:
        if not line.startswith("Found ") and not line.startswith("Success"):
            print("[%s] %s" % (port, line))
    print("typecheck %s: %s" % (port, "%d error(s)" % len(mine) if mine else "ok"))
    return 1 if mine else 0


def main():
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
        f.write(CONFIG)
    try:
        results = [check(port, f.name) for port in PORTS]
    finally:
        os.unlink(f.name)
    return max(results)


if __name__ == "__main__":
    sys.exit(main())
