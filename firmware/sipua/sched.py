"""One cooperative loop: a timer heap on a wrap-safe millisecond clock plus poll readiness.

Everything in the agent runs as short callbacks from here, so there is exactly one place
that sleeps. The clock and the poller are injectable: tests pass ``vtime.VirtualClock`` and
``vtime.VirtualPoller`` and 32 s of RFC 3261 timers run in a few milliseconds of wall time.

Time inside the scheduler is ``now()``: milliseconds since the scheduler started, kept as a
small int. The board clock (``ticks_ms``) wraps every 2**30 ms; only differences of it are
ever taken (``ticks_diff``), so the wrap is invisible here. Heap keys are rebased before they
could outgrow a small int, which keeps the hot path free of long-int allocation.
"""

import heapq
import select

from .compat import const, drop, forget, ticks_diff, ticks_ms

POLLIN = select.POLLIN
POLLOUT = select.POLLOUT
POLLERR = select.POLLERR
POLLHUP = select.POLLHUP

_REBASE_AT = const(1 << 28)  # ~3 days of uptime: rebase long before small ints run out
_MAX_WAIT_MS = const(1000)  # wake at least this often, to feed the watchdog
# A cancelled timer stays in the heap until it comes due (a server transaction's Timer J:
# 32 s). Under a request flood that is thousands of dead entries — it ran a 384 KB heap
# dry at 200 OPTIONS/s — so the heap is compacted whenever it has doubled since the last
# compaction: amortised O(1) per timer, and dead entries never outnumber live ones by
# much more than 2:1.
_COMPACT_MIN = const(64)
SLOW_CALLBACK_MS = 200  # a callback that runs longer than this is logged
# An I/O callback that raises before it reads leaves its socket ready, and poll() would hand
# it back at once, forever (seen: MemoryError in a reader at 224 KB of heap, thousands of
# log lines a second). After this many failures in a row the socket is taken out of the
# poll set for a back-off (schedslow.IO_BACKOFF_MS doubling), or handed to its owner.
IO_FAIL_LIMIT = 3

# One I/O entry is a list (no object per socket): [obj, fn, events, fails, resume timer,
# on_error]. What a turning loop never needs (rebasing the clock, compacting the timer heap,
# parking a failing socket) is in schedslow.py, loaded when it happens.
_OBJ = const(0)
_FN = const(1)
_EV = const(2)
_FAILS = const(3)
_PARKED = const(4)
_ONERR = const(5)


class Timer:
    """A handle for a scheduled call; ``cancel()`` makes it a no-op."""

    __slots__ = ("due", "fn", "args")

    def __init__(self, due, fn, args):
        self.due = due
        self.fn = fn
        self.args = args

    def cancel(self):
        # Drop the references now so a retired callback cannot keep objects alive.
        self.fn = None
        self.args = None

    @property
    def active(self):
        return self.fn is not None


class Scheduler:
    def __init__(self, clock=None, poller=None, log=None):
        self._clock = clock or ticks_ms
        self._last = self._clock()
        self._now = 0
        self._heap = []
        self._seq = 0  # ties in the heap run in the order they were added
        self._compact_at = _COMPACT_MIN
        self._soon = []
        self._poller = poller if poller is not None else select.poll()
        # MicroPython's ipoll() hands back one reused tuple per ready object; poll() builds a
        # list and a tuple per turn (~100 B of garbage for each RTP packet). CPython: poll().
        self._ipoll = getattr(self._poller, "ipoll", None)
        self._io = {}  # key (object or fd) -> entry list, see _OBJ.._ONERR
        self._log = log
        self.running = False
        self._stopping = False
        self.watchdog = None  # a callable fed once per loop turn (hal's WDT)
        # The media clock while a call carries audio (media/rtp.py): ``due`` (ms) and
        # ``tick(now)``. Not a timer: a Timer and its heap entry per RTP packet would be
        # garbage 50 times a second.
        self.media = None

    # -- time ------------------------------------------------------------------------------
    def now(self):
        t = self._clock()
        d = ticks_diff(t, self._last)
        if d > 0:
            self._now += d
            self._last = t
        if self._now >= _REBASE_AT:
            from .schedslow import rebase

            rebase(self)
            forget("sipua.schedslow")
        return self._now

    # -- timers ----------------------------------------------------------------------------
    def call_later(self, delay_ms, fn, *args):
        due = self.now() + (delay_ms if delay_ms > 0 else 0)
        tm = Timer(due, fn, args)
        if len(self._heap) >= self._compact_at:
            from .schedslow import compact

            compact(self)
            forget("sipua.schedslow")
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, tm))
        return tm

    def call_soon(self, fn, *args):
        tm = Timer(self._now, fn, args)
        self._soon.append(tm)
        return tm

    def next_due_in(self):
        """Milliseconds until the next live timer, or None."""
        heap = self._heap
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        if not heap:
            return None
        d = heap[0][0] - self.now()
        return d if d > 0 else 0

    # -- I/O -------------------------------------------------------------------------------
    def watch(self, obj, events, fn, on_error=None):
        """Call ``fn(obj, events)`` whenever ``obj`` is ready for ``events`` (POLLIN/POLLOUT).

        If ``fn`` keeps raising (IO_FAIL_LIMIT times in a row) the socket leaves the poll
        set: with ``on_error`` given it is unwatched and ``on_error(obj, err)`` is called
        (the owner closes it, fails over); without, it is polled again after a back-off.
        """
        entry = self._io.get(obj)
        if entry is None:
            entry = [obj, fn, events, 0, None, on_error]
            self._io[obj] = entry
            # CPython's poll answers with file descriptors, MicroPython's with the object.
            fileno = getattr(obj, "fileno", None)
            if fileno is not None:
                try:
                    self._io[fileno()] = entry
                except OSError:
                    pass
            self._poller.register(obj, events)
        else:
            entry[_FN] = fn
            entry[_EV] = events
            entry[_ONERR] = on_error
            if entry[_PARKED] is None:  # a parked socket gets its events back on resume
                self._poller.modify(obj, events)

    def unwatch(self, obj):
        io = self._io
        entry = io.get(obj)
        if entry is None:
            return
        for key in [k for k, e in io.items() if e is entry]:
            drop(io, key)  # not del: the slot would keep the entry (its callback) alive
        if entry[_PARKED] is not None:
            entry[_PARKED].cancel()
            entry[_PARKED] = None
            return  # already out of the poll set
        try:
            self._poller.unregister(obj)
        except (OSError, KeyError, ValueError):
            pass  # already closed: the kernel forgot it first

    # -- the loop --------------------------------------------------------------------------
    def _run(self, tm):
        fn = tm.fn
        if fn is None:
            return
        tm.fn = None  # a fired timer is no longer active
        args = tm.args
        tm.args = None
        self._call(fn, args)

    def _call(self, fn, args, report=True, ev=-1):
        """Run one callback, ``fn(*args)`` (an I/O one: ``fn(args, ev)``, no tuple built);
        the exception it raised (logged if ``report``), or None."""
        start = self._clock()
        err = None
        try:
            if ev < 0:
                fn(*args)
            else:
                fn(args, ev)
        except Exception as e:  # one broken callback must not stop the phone
            if not self._log:
                raise
            err = e
            if not report:
                return err
            try:
                self._log.exc("sched", "callback_error", e, fn=_name(fn))
            except MemoryError:
                pass  # no heap even for the line: the error is contained all the same
        took = ticks_diff(self._clock(), start)
        if took > SLOW_CALLBACK_MS and self._log:
            self._log.warn("sched", "slow_callback", fn=_name(fn), ms=took)
        return err

    def run_once(self, max_wait_ms=_MAX_WAIT_MS):
        """One turn: wait for I/O up to the next timer, then due timers, then call-soon work."""
        if self._soon or self._stopping:
            wait = 0
        else:
            wait = self.next_due_in()
            if wait is None or wait > max_wait_ms:
                wait = max_wait_ms
            m = self.media
            if m is not None and m.due - self._now < wait:
                wait = m.due - self._now
                if wait < 0:
                    wait = 0
        ipoll = self._ipoll
        for ev in ipoll(wait) if ipoll is not None else self._poller.poll(wait):
            entry = self._io.get(ev[0])
            if entry is None or entry[_PARKED] is not None:
                continue
            # Only the first failure of a run prints its traceback: a repeat is one line.
            err = self._call(entry[_FN], entry[_OBJ], entry[_FAILS] == 0, ev[1])
            if err is None:
                entry[_FAILS] = 0
            else:
                entry[_FAILS] += 1
                if entry[_FAILS] >= IO_FAIL_LIMIT:  # maybe one bad packet: else poll again
                    import gc

                    gc.collect()  # most failures are MemoryError: the next try gets a clean heap
                    from .schedslow import io_failed

                    io_failed(self, entry, err)
                    forget("sipua.schedslow")
        now = self.now()
        m = self.media
        if m is not None and m.due <= now:
            m.tick(now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            self._run(heapq.heappop(heap)[2])
        soon = self._soon
        if soon:
            self._soon = []
            for tm in soon:
                self._run(tm)
        if self.watchdog is not None:
            self.watchdog()

    def run(self, until_ms=None):
        """Run until ``stop()``, or until ``now()`` reaches ``until_ms``."""
        self.running = True
        self._stopping = False
        while self.running:
            if until_ms is not None:
                left = until_ms - self.now()
                if left <= 0:
                    break
                self._turn(left if left < _MAX_WAIT_MS else _MAX_WAIT_MS)
            else:
                self._turn(_MAX_WAIT_MS)
        self.running = False

    def _turn(self, max_wait_ms):
        try:
            self.run_once(max_wait_ms)
        except MemoryError:
            # The loop's own bookkeeping (poll()'s answer list, a callback's argument tuple)
            # found no heap: collect and take the next turn; the phone must not stop here.
            import gc

            gc.collect()

    def run_until(self, predicate, timeout_ms):
        """Run until ``predicate()`` is true; False if ``timeout_ms`` passed first."""
        deadline = self.now() + timeout_ms
        while not predicate():
            left = deadline - self.now()
            if left <= 0:
                return False
            self._turn(left if left < _MAX_WAIT_MS else _MAX_WAIT_MS)
        return True

    def stop(self):
        self.running = False
        self._stopping = True  # the current turn ends without waiting


def _name(fn):
    return getattr(fn, "__name__", None) or repr(fn)
