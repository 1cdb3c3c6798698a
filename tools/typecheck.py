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
# Optional narrowing is not the point either: attributes set in start(), lists used as
# small structs (one allocation instead of an object) would need casts everywhere.
strict_optional = False

[mypy-_mpy_shed.*,stdlib.*,stubs.*,sipua._cpython]
ignore_errors = True
"""


def targets(firmware):
    out = []
    for name in ("boot.py", "main.py"):
        if os.path.exists(os.path.join(firmware, name)):
            out.append(name)
    return [*out, "sipua"]  # files and a package folder: mypy refuses `-p` beside files


def check(port, config_path, firmware=FIRMWARE):
    stubs = os.path.join(ROOT, ".venv", "stubs", port)
    if not os.path.isdir(os.path.join(stubs, "stdlib")):
        print("typecheck: no stubs for %s in %s: run `make setup`" % (port, stubs))
        return 2
    env = dict(os.environ, MYPYPATH=stubs)
    # No cache: it would be written into firmware/ (the working directory).
    cmd = [sys.executable, "-m", "mypy", "--config-file", config_path,
           "--custom-typeshed-dir", stubs, "--no-incremental", "--cache-dir", os.devnull,
           *targets(firmware)]
    proc = subprocess.run(cmd, cwd=firmware, env=env, capture_output=True, text=True)
    # Errors inside the stubs themselves are not ours; keep only lines about firmware files.
    lines = [x for x in proc.stdout.splitlines() if not x.startswith(stubs)]
    mine = [x for x in lines if ": error:" in x]
    for line in lines:
        if not line.startswith("Found ") and not line.startswith("Success"):
            print("[%s] %s" % (port, line))
    if proc.returncode not in (0, 1):  # mypy itself failed (bad arguments, a crash): not "ok"
        print("[%s] mypy exited %d: %s" % (port, proc.returncode, proc.stderr.strip()))
        return 2
    print("typecheck %s: %s" % (port, "%d error(s)" % len(mine) if mine else "ok"))
    return 1 if mine else 0


def main(argv):
    """``typecheck.py [--firmware DIR] [PORT ...]``: every port of PORTS by default."""
    firmware = FIRMWARE
    if argv[:1] == ["--firmware"]:
        firmware, argv = os.path.abspath(argv[1]), argv[2:]
    ports = argv or PORTS
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
        f.write(CONFIG)
    try:
        results = [check(port, f.name, firmware) for port in ports]
    finally:
        os.unlink(f.name)
    return max(results)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
