"""Replacing a file so a reset at any point leaves a whole one: the config (``config.py``)
and, sent as source in their board-side code, ``sipfw flash`` and ``sipfw config push``
(``sipfw.flash.MV``; a board being flashed the first time has no ``sipua`` to import).

Call with paths relative to the current folder where the host drives it: the unix port's
VfsPosix mounted with a root folder (the virtual board) can "succeed" at renaming absolute
paths without renaming anything. So a rename that leaves its source is an error, never a
silent success. FAT will not rename over an existing file: the target goes first."""

import os


def exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


def move(a, b):
    try:
        os.rename(a, b)
    except OSError:
        if not exists(a):
            raise
        os.remove(b)
        os.rename(a, b)
    if exists(a):
        raise OSError("rename %s -> %s left the source" % (a, b))


def replace(tmp, path):
    """``tmp`` in place of ``path``, the old ``path`` kept as ``path.bak``. Between the two
    moves only the ``.bak`` exists, which ``config.load`` falls back to."""
    if exists(path):
        move(path, path + ".bak")
    move(tmp, path)
