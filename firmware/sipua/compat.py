"""What differs between MicroPython and CPython, in one place.

The firmware runs on MicroPython; the host tools (``sipfw resolve``) and the CPython test
suite import the same modules, so the few MicroPython-only names fall back to ``_cpython``.
"""

import sys

# The fallbacks are spelled ``name as name``: an explicit re-export (for ruff and mypy), free
# at run time.
try:
    from micropython import const
except ImportError:  # CPython
    from ._cpython import const as const  # type: ignore

try:
    from time import ticks_add, ticks_diff, ticks_ms
except ImportError:  # CPython
    from ._cpython import ticks_add as ticks_add  # type: ignore
    from ._cpython import ticks_diff as ticks_diff  # type: ignore
    from ._cpython import ticks_ms as ticks_ms  # type: ignore

try:
    print_exception = sys.print_exception
except AttributeError:  # CPython
    from ._cpython import print_exception as print_exception  # type: ignore

IS_MICROPYTHON = sys.implementation.name == "micropython"

if IS_MICROPYTHON:

    def readinto(sock, buf):
        """Read what the socket has (one datagram) into ``buf`` without allocating: the byte
        count, or None when nothing is there (non-blocking). CPython spells it recv_into."""
        return sock.readinto(buf)

else:
    from ._cpython import readinto as readinto  # type: ignore


def urandom_u32():
    """A 32-bit random number for DNS IDs, SIP tags and branches."""
    import os

    b = os.urandom(4)
    return b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]


def drop(d, key):
    """``del d[key]`` for a key that is there, its value set to None first: a MicroPython
    dict keeps a deleted entry's value in its slot until the slot is used again, and the
    collector scans it, so whatever that value holds (a transaction, a callback, a module
    through it) would stay alive."""
    d[key] = None
    del d[key]


def forget(*names):
    """Unload modules (``"sipua.config"``) so the heap their bytecode and tables take can be
    collected: for modules a board needs once at boot and rarely again. The next import
    loads them afresh. A no-op on CPython, where heap does not matter and tests hold the
    modules' classes."""
    if not IS_MICROPYTHON:
        return
    mods = sys.modules
    for name in names:
        if name in mods:
            drop(mods, name)
        parent, _, child = name.rpartition(".")
        pkg = mods.get(parent)
        if pkg is not None and child in pkg.__dict__:  # a package keeps its submodules
            drop(pkg.__dict__, child)
