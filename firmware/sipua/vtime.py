"""Virtual time for the scheduler: tests and host tools fast-forward RFC 3261 timers.

``VirtualClock`` stands in for ``ticks_ms``; ``VirtualPoller`` stands in for
``select.poll()``: instead of sleeping it moves the clock forward to the next timer. With a
real poller behind it, real sockets still work: it waits for them up to ``real_wait_ms`` of
wall time before jumping, so a loopback peer has time to answer.
"""

from .compat import ticks_add


class VirtualClock:
    def __init__(self, start=0):
        self.ticks = start

    def __call__(self):
        return self.ticks

    def advance(self, ms):
        self.ticks = ticks_add(self.ticks, ms)


class VirtualPoller:
    def __init__(self, clock, real=None, real_wait_ms=0):
        self.clock = clock
        self.real = real
        self.real_wait_ms = real_wait_ms

    def register(self, obj, events):
        if self.real is None:
            raise OSError("virtual poller has no real poller for I/O")
        self.real.register(obj, events)

    def modify(self, obj, events):
        self.real.modify(obj, events)

    def unregister(self, obj):
        self.real.unregister(obj)

    def poll(self, timeout_ms):
        if self.real is not None:
            wait = self.real_wait_ms
            if timeout_ms >= 0 and timeout_ms < wait:
                wait = timeout_ms
            events = self.real.poll(wait)
            if events:
                return events
        if timeout_ms > 0:
            self.clock.advance(timeout_ms)
        return []
