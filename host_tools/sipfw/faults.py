"""Fail points: die on purpose at a named point, so tests can prove that a flash or a
config push killed half-way leaves the board bootable (no timing games with kill -9).

``SIPFW_FAILPOINT=name[:n]`` makes the n-th (default first) ``hit(name)`` SIGKILL this
process: no cleanup runs, exactly as when a cable is pulled or a terminal is closed.
Unset (always, outside tests) it costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def hit(name: str) -> None:
    spec = os.environ.get("SIPFW_FAILPOINT")
    if not spec:
        return
    want, _, nth = spec.partition(":")
    if want != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
