"""What differs between MicroPython and CPython, in one place.

The firmware runs on MicroPython; the host tools (``sipfw resolve``) and the CPython test
suite import the same modules, so the few MicroPython-only names fall back to ``_cpython``.
"""

import sys

try:
    from micropython import const
except ImportError:  # CPython
    from ._cpython import const  # type: ignore

try:
    from time import ticks_add, ticks_diff, ticks_ms
except ImportError:  # CPython
    from ._cpython import ticks_add, ticks_diff, ticks_ms  # type: ignore

try:
    print_exception = sys.print_exception
except AttributeError:  # CPython
    from ._cpython import print_exception  # type: ignore

IS_MICROPYTHON = sys.implementation.name == "micropython"

if IS_MICROPYTHON:

    def readinto(sock, buf):
        """Read what the socket has (one datagram) into ``buf`` without allocating: the byte
        count, or None when nothing is there (non-blocking). CPython spells it recv_into."""
        return sock.readinto(buf)

else:
    from ._cpython import readinto  # type: ignore


def urandom_u32():
    """A 32-bit random number for DNS IDs, SIP tags and branches."""
    import os

    b = os.urandom(4)
    return b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]
