"""The scheduler's rare paths, loaded when one happens and forgotten after it: rebasing the
clock (after ~3 days of uptime), compacting the timer heap (when cancelled timers pile up)
and containing an I/O callback that keeps raising (``sched.IO_FAIL_LIMIT``)."""

from .compat import const
from .sched import IO_FAIL_LIMIT, _name

IO_BACKOFF_MS = const(250)  # a parked socket's first back-off, doubling up to the max
IO_BACKOFF_MAX_MS = const(8000)

# sched.py's I/O entry fields: [obj, fn, events, fails, resume timer, on_error]
_OBJ = const(0)
_FN = const(1)
_EV = const(2)
_FAILS = const(3)
_PARKED = const(4)
_ONERR = const(5)
_COMPACT_MIN = const(64)  # sched.py's


def rebase(s):
    base = s._now
    for _, _, tm in s._heap:
        tm.due -= base
    if s.media is not None:
        s.media.rebase(base)
    s._now = 0
    _renumber(s, s._heap)


def compact(s):
    _renumber(s, [e for e in s._heap if e[2].fn is not None])
    s._compact_at = max(_COMPACT_MIN, 2 * len(s._heap))


def _renumber(s, entries):
    """The heap rebuilt from ``entries`` (any order) with fresh sequence numbers.

    A sorted list is a valid heap, and numbering in sorted order keeps the order of ties,
    so ``_seq`` restarts small and never grows into a long int on a 32-bit board."""
    entries.sort()  # by (due, seq): seq is unique, the timers are never compared
    # In place: the loop that runs due timers holds this list while a callback (which
    # may schedule, and so compact) runs.
    s._heap[:] = [(tm.due, i, tm) for i, (_, _, tm) in enumerate(entries)]
    s._seq = len(entries)


def io_failed(s, entry, err):
    """An I/O callback raised ``IO_FAIL_LIMIT`` times or more in a row: with an
    ``on_error`` the socket is unwatched and handed to it; without, it leaves the poll set
    for a back-off that doubles up to ``IO_BACKOFF_MAX_MS``."""
    fails = entry[_FAILS]
    obj = entry[_OBJ]
    on_error = entry[_ONERR]
    if on_error is not None:
        s.unwatch(obj)
        _log(s, "io_error", entry, fails, 0, err)
        s._call(on_error, (obj, err))
        return
    shift = fails - IO_FAIL_LIMIT
    wait = IO_BACKOFF_MAX_MS if shift > 5 else IO_BACKOFF_MS << shift
    if wait > IO_BACKOFF_MAX_MS:
        wait = IO_BACKOFF_MAX_MS
    try:
        s._poller.unregister(obj)
    except (OSError, KeyError, ValueError):
        pass
    entry[_PARKED] = s.call_later(wait, resume, s, entry)
    _log(s, "io_backoff", entry, fails, wait, err)


def resume(s, entry):
    entry[_PARKED] = None
    if s._io.get(entry[_OBJ]) is entry:
        s._poller.register(entry[_OBJ], entry[_EV])


def _log(s, event, entry, fails, wait, err):
    if s._log:
        try:
            s._log.warn("sched", event, fn=_name(entry[_FN]), fails=fails, ms=wait,
                        err=type(err).__name__)
        except MemoryError:
            pass
