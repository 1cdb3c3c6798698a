"""CPython stand-ins for MicroPython built-ins, for the host tools and the CPython tests.

Never imported on a board (compat.py only falls back to it when an import fails), never
flashed, and left out of the port type check.
"""

import time

_TICKS_PERIOD = 1 << 30  # as on the 32-bit ports, so CPython tests meet the wrap too
_TICKS_MAX = _TICKS_PERIOD - 1
_TICKS_HALF = _TICKS_PERIOD >> 1


def const(value):
    return value


def ticks_ms():
    return int(time.monotonic() * 1000) & _TICKS_MAX


def ticks_add(ticks, delta):
    return (ticks + delta) & _TICKS_MAX


def ticks_diff(end, start):
    return ((end - start + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF


def print_exception(err):
    import traceback

    traceback.print_exception(err)


def readinto(sock, buf):
    try:
        return sock.recv_into(buf)
    except BlockingIOError:
        return None  # as MicroPython's readinto on a non-blocking socket with nothing there
