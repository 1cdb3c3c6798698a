"""tools/typecheck.py must fail on a call a board's port does not have (it once printed
"ok" for years of nothing checked: mypy refused its arguments and only stdout was read)."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def typecheck(firmware):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "typecheck.py"),
                           "--firmware", firmware, "esp32"],
                          capture_output=True, text=True, timeout=300)


def test_a_call_the_port_lacks_fails_the_check(tmp_path):
    fw = str(tmp_path / "firmware")
    shutil.copytree(os.path.join(ROOT, "firmware"), fw,
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(os.path.join(fw, "sipua", "sched.py"), "a") as f:
        f.write("\n\ndef _probe():\n    import machine\n\n    machine.NoSuchThing()\n")
    bad = typecheck(fw)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert 'sipua/sched.py' in bad.stdout and 'has no attribute "NoSuchThing"' in bad.stdout
    assert "typecheck esp32: 1 error(s)" in bad.stdout
