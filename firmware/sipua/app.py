"""Start-up, then run forever: ``main()`` (host tools, tests). A board's main.py calls
``boot()`` and runs the loop itself, then forgets this module: ``main()``'s frame would keep
it loaded for the phone's life.

A missing or bad config is one clear log line and a safe idle mode (no accounts) in which
the console still works, so a person can push a good config without reflashing. So is an
agent that cannot start (a MemoryError on a small heap, say): the board stays up, fed and
reachable instead of crashing into the watchdog over and over. The start-up code is in
``startup.py``, loaded for the boot and forgotten after it: a running phone keeps this.
"""

from .compat import forget

CONFIG_PATH = "/config.json"


def boot(config_path=CONFIG_PATH, sched=None, start=True, claim=None):
    """Everything before the loop: the firmware's names, config, network, scheduler,
    console, then (with ``start``) the agent. ``sched``: a scheduler to use (the 32-bit heap
    harness passes one on virtual time and a simulated network). ``claim``: intern every
    name at boot (True), not (False), or where the heap affords it (None: ``names.py``).
    Returns (sched, start_now, console), where ``start_now()`` starts the agent and returns
    it (None in safe idle mode): the harness measures the booted phone before it."""
    from . import startup

    try:
        sched, ctx, console = startup.boot(config_path, sched, start, claim)
    finally:
        forget("sipua.startup")
    return sched, lambda: _start(ctx), console


def _start(ctx):
    from . import startup

    try:
        return startup.start_now(ctx)
    finally:
        forget("sipua.startup")


def main(config_path=CONFIG_PATH):
    boot(config_path)[0].run()
