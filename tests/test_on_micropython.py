"""Every firmware test module in tests/fw, run again ON the MicroPython unix port.

Each module runs once in a fresh ``micropython`` process (the real interpreter the boards
use); every ``test_*`` function becomes one pytest item here, so a firmware change that breaks
only on MicroPython fails ``make test`` with that interpreter's traceback.
"""

import ast
import functools
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FW_TESTS = os.path.join(HERE, "fw")
HEAP = "2M"  # the suites' data needs room; the ESP32 budget is held in `make bench`
TIMEOUT_S = 600


def micropython_cmd():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else shutil.which("micropython")


def collect():
    items = []
    for fname in sorted(os.listdir(FW_TESTS)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        with open(os.path.join(FW_TESTS, fname)) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                items.append((fname[:-3], node.name))
    return items


@functools.cache
def run_module(module):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([os.path.join(ROOT, "firmware"), FW_TESTS, ".frozen"])
    proc = subprocess.run(
        [micropython_cmd(), "-X", "heapsize=" + HEAP, os.path.join(HERE, "upy_runner.py"), module],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=ROOT,
        env=env,
    )
    results, current, lines = {}, None, []
    for line in proc.stdout.splitlines():
        if line.startswith("@@PASS "):
            results[line.split()[2]] = ("pass", "")
        elif line.startswith("@@FAIL ") or line.startswith("@@IMPORTFAIL "):
            current, lines = line.split(), []
        elif line == "@@END" and current:
            key = current[2] if current[0] == "@@FAIL" else "*import*"
            results[key] = ("fail", "\n".join(lines))
            current = None
        elif current is not None:
            lines.append(line)
    if "@@DONE" not in proc.stdout:
        results["*crash*"] = ("fail", "exit %s\n%s\n%s" % (proc.returncode, proc.stdout[-3000:],
                                                          proc.stderr[-3000:]))
    return results


@pytest.mark.parametrize("module,name", collect(), ids=lambda v: v)
def test_on_micropython(module, name):
    assert micropython_cmd(), "the micropython command is missing: run `make setup`"
    results = run_module(module)
    for key in ("*import*", "*crash*"):
        if key in results:
            pytest.fail("%s on MicroPython: %s" % (module, results[key][1]))
    status, detail = results.get(name, ("missing", "test did not report"))
    if status != "pass":
        pytest.fail("MicroPython: %s\n%s" % (status, detail), pytrace=False)
