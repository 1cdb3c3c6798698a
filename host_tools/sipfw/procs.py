"""Stopping a child process we started (ask, wait a bounded time, then insist), and being
stopped ourselves with our cleanups run."""

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


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """Make SIGTERM an exception (SystemExit 143). Its default ends Python without running
    ``finally``: a bench would leave its lab, boards and captures running."""
    signal.signal(signal.SIGTERM, _terminated)
