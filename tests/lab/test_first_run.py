"""A new user's first run, with no option beyond the README's three commands:

    sipfw vboard
    sipfw flash
    sipfw config push examples/lab.json

and the board registers both lab accounts. The vboard's folder and registry are private to
the test (XDG_DATA_HOME, SIPFW_VBOARD_DIR), so `sipfw flash` finds it as the one attached
board, as it would on a person's desk.
"""

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SIPFW = str(Path(sys.executable).parent / "sipfw")
REGISTER_TIMEOUT_S = 20


def run(env, *args, timeout=60):
    return subprocess.run([SIPFW, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def test_vboard_flash_and_config_push_with_no_options_register(lab, tmp_path):
    env = dict(os.environ, SIPFW_VBOARD_DIR=str(tmp_path / "registry"),
               XDG_DATA_HOME=str(tmp_path / "data"))
    env.pop("SIPFW_PORT", None)
    vb = subprocess.Popen([SIPFW, "vboard"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        ready, _, _ = select.select([vb.stdout], [], [], 10)
        assert ready, "the vboard printed nothing"
        device = vb.stdout.readline().strip()
        heap = vb.stdout.readline().strip()
        assert device.startswith("/dev/pts/"), device
        assert heap.startswith("heap 512k (524288 bytes;"), heap
        assert str(tmp_path / "data" / "sipfw" / "vboard") in heap

        r = run(env, "flash")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "agent ready in" in r.stdout, r.stdout
        print(r.stdout)

        r = run(env, "config", "push", "examples/lab.json")
        assert r.returncode == 0, r.stdout + r.stderr
        print(r.stdout)

        end = time.monotonic() + REGISTER_TIMEOUT_S
        while True:
            r = run(env, "console", "status")
            st = json.loads(r.stdout) if r.returncode == 0 else {}
            states = {a["label"]: a["state"] for a in st.get("accounts", [])}
            if states == {"6903": "registered", "6904": "registered"}:
                break
            assert time.monotonic() < end, "not registered: %s %s" % (r.stdout, r.stderr)
            time.sleep(0.5)
        print(r.stdout)
        # and the registrar agrees: the board's contact is bound
        bound = [c["contact"] for binds in lab.registered("6903").values() for c in binds]
        assert any("127.0.0.1:5062" in c for c in bound), bound
    finally:
        run(env, "console", "unreg", timeout=10)  # leave no binding behind in the lab
        time.sleep(0.3)
        vb.terminate()
        vb.wait(10)
        vb.stdout.close()
