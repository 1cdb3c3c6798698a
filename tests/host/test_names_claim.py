"""The qstr pool cliff (sipua/names.py): where the heap affords it, start-up interns every
name of the firmware at boot, so no code path run later has to open a new qstr pool, which
needs one large block. Run on MicroPython's unix port against the board's .mpy files."""

from __future__ import annotations

import re
import subprocess

from hostfix import BIN
from sipfw import build
from sipfw.paths import FIRMWARE_DIR

_NAMES = """\
import gc, micropython, sys
sys.path[:] = [sys.argv[1]]
from sipua.log import log
def names():
    micropython.qstr_info()
gc.collect()
base = gc.mem_alloc()
names()
if sys.argv[2] == 'claim':
    from sipua import names as claimer
    print('claimed', claimer.claim(log))
    del sys.modules['sipua.names']
    print('left', ' '.join(sorted(m for m in sys.modules if m.startswith('sipua'))))
gc.collect()
print('kept', gc.mem_alloc() - base)
names()
for m in open(sys.argv[3]).read().split(','):
    try:
        __import__(m)
    except (ImportError, MemoryError):  # MemoryError: the small heap's test
        pass
names()
"""


def _upy(tmp_path, script: str, how: str, heap: str) -> str:
    """The unix port running ``script`` with the board's .mpy tree, ``how`` and a file that
    names every module of the package (a file: this port dies at start on an argument of
    256 bytes or more); its output."""
    tree, mods = tmp_path / "tree", tmp_path / "mods.txt"
    if not mods.exists():
        items = build.write_tree(FIRMWARE_DIR, str(tree))
        mods.write_text(",".join(it.remote[:-4].replace("/__init__", "").replace("/", ".")
                                 for it in items
                                 if it.remote.startswith("sipua/") and it.remote.endswith(".mpy")))
    path = tmp_path / "script.py"
    path.write_text(script)
    r = subprocess.run([str(BIN / "micropython"), "-X", "heapsize=" + heap, str(path),
                        str(tree), how, str(mods)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _run(tmp_path, how: str, heap: str = "4M") -> tuple[str, list[int]]:
    out = _upy(tmp_path, _NAMES, how, heap)
    counts = [int(n) for n in re.findall(r"n_qstr=(\d+)", out)]
    assert len(counts) == 3, out
    return out, counts


def test_claim_interns_every_name_and_keeps_no_code(tmp_path):
    out, (before, claimed, after_all) = _run(tmp_path, "claim")
    n = int(re.search(r"claimed (\d+)", out).group(1))
    assert n > 60  # every module of the package but the few loaded already
    assert "INFO app names_claimed modules=%d ms=" % n in out
    # the modules were forgotten: only what was loaded before (and the claimer) is left
    left = re.search(r"left (.*)", out).group(1).split()
    assert left == ["sipua", "sipua.compat", "sipua.log"], left
    assert claimed - before > 1000  # the firmware's names are in
    # importing every module afterwards finds each name there already: no new pool later
    assert after_all == claimed, (before, claimed, after_all)
    kept = int(re.search(r"kept (\d+)", out).group(1))
    _, (_, _, lazily) = _run(tmp_path / "lazy", "lazy")
    assert lazily - before > 1000  # without the claim, the same imports add the names
    # the claim keeps the names (and their pools), not the bytecode: well under what
    # importing every module keeps (~200 KB on this 64-bit port)
    assert kept < 80_000, kept


_FRAGMENTED = """\
import gc, sys
sys.path[:] = [sys.argv[1]]
from sipua.compat import forget
from sipua.log import log
if sys.argv[2] == 'claim':
    from sipua import names
    names.claim(log)
    forget('sipua.names')
# fill the heap with 4 KB blocks, then free every other one: half of it free, no hole larger
# than 4 KB (a long-running phone's heap is worse: 237 KB free, largest hole 6.6 KB)
blocks = []
try:
    while True:
        blocks.append(bytearray(4000))
except MemoryError:
    pass
for i in range(0, len(blocks), 2):
    blocks[i] = None
gc.collect()
print('free', gc.mem_free())
had = set(sys.modules)
for m in open(sys.argv[3]).read().split(','):
    try:
        __import__(m)
    except MemoryError as e:
        print('failed', m, e)
    except ImportError:
        pass
    for k in list(sys.modules):
        if k not in had:
            forget(k)
"""


def test_on_a_fragmented_heap_only_claimed_names_keep_imports_working(tmp_path):
    """The cliff itself: on a heap with half its room free in 4 KB holes, the first imports
    that need a new qstr pool (one block larger than any hole) fail with MemoryError while
    small allocations still work; with the names claimed first, every import succeeds."""
    out = {}
    for how in ("lazy", "claim"):
        text = _upy(tmp_path, _FRAGMENTED, how, "1M")
        assert int(re.search(r"free (\d+)", text).group(1)) > 400_000
        out[how] = re.findall(r"failed (\S+) (.*)", text)
    assert len(out["lazy"]) > 10, out["lazy"]  # the pool's block is nowhere
    assert all("memory allocation failed" in why for _, why in out["lazy"])
    assert out["claim"] == []


def test_a_claim_the_heap_cannot_hold_stops_and_leaves_no_module_behind(tmp_path):
    out, (before, claimed, _) = _run(tmp_path, "claim", heap="80k")
    assert re.search(r"WARN app names_unclaimed module=sipua\.\S+", out), out
    assert re.search(r"left (.*)", out).group(1).split() == ["sipua", "sipua.compat",
                                                             "sipua.log"]
    assert before < claimed  # the names claimed so far stay


def _boot(tmp_path, heap: str) -> str:
    items = build.write_tree(FIRMWARE_DIR, str(tmp_path / "tree"))
    assert items
    code = ("import sys\nsys.path[:] = [%r]\nfrom sipua import app\n"
            "app.boot('/nonexistent/config.json', start=False)\n" % str(tmp_path / "tree"))
    r = subprocess.run([str(BIN / "micropython"), "-X", "heapsize=" + heap, "-c", code],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "INFO app start " in r.stdout
    return r.stdout


def test_startup_claims_where_the_heap_affords_it(tmp_path):
    # 64-bit port: the threshold is 1.4 x 128 KB free at boot
    assert "INFO app names_claimed" in _boot(tmp_path / "big", "512k")
    small = _boot(tmp_path / "small", "160k")
    assert "names_claimed" not in small and "config_error" in small
