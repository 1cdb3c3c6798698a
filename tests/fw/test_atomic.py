"""sipua.atomic: the one board-side file replacement (config saves; sent as source by
``sipfw flash`` and ``sipfw config push``)."""

import os

from fwtest import make_tmpdir, raises, remove_tmpdir
from sipua import atomic


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _read(path):
    with open(path) as f:
        return f.read()


def test_replace_keeps_the_old_file_as_bak():
    d = make_tmpdir("sipfw-atomic")
    try:
        p = d + "/c.json"
        _write(p + ".tmp", "one")
        atomic.replace(p + ".tmp", p)
        assert sorted(os.listdir(d)) == ["c.json"] and _read(p) == "one"
        for text in ("two", "three"):  # the second time an old .bak is there to go over
            _write(p + ".tmp", text)
            atomic.replace(p + ".tmp", p)
        assert sorted(os.listdir(d)) == ["c.json", "c.json.bak"]
        assert _read(p) == "three" and _read(p + ".bak") == "two"
    finally:
        remove_tmpdir(d)


def test_a_missing_source_raises_and_keeps_the_target():
    d = make_tmpdir("sipfw-atomic")
    try:
        p = d + "/c.json"
        _write(p, "kept")
        raises(OSError, atomic.move, p + ".tmp", p)
        assert _read(p) == "kept" and atomic.exists(p) and not atomic.exists(p + ".tmp")
    finally:
        remove_tmpdir(d)
