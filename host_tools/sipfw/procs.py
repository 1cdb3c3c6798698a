"""Stopping a child process we started: ask, wait a bounded time, then insist."""

from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM,
                 grace_s: float = 10.0) -> None:
    """Send ``sig`` to ``proc`` (ours, by its handle, never by name), wait up to ``grace_s``,
    then SIGKILL. A process that already ended is only reaped."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait(5)
