"""`sipfw vboard`: run a virtual board (see sipfw.vboard for how it works)."""

from __future__ import annotations

import argparse
import os

from sipfw import vboard


def _default_root() -> str:
    # Persistent like a board's flash, and outside the source tree.
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(data, "sipfw", "vboard")


def _heap(text: str) -> str:
    try:
        vboard.parse_heap(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "vboard",
        help="run a virtual board (MicroPython unix port behind a pty)",
        description="Run the MicroPython unix port behind a pseudo-terminal as a board: DIR "
        "is its filesystem, boot.py and main.py run at start, Ctrl-D soft-reboots. Prints the "
        "serial device path as the first line and the heap in use on the second, runs until "
        "SIGTERM/SIGINT.",
    )
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=_default_root(),
        help="the board's filesystem, created if missing (default: %(default)s)",
    )
    parser.add_argument(
        "--link", metavar="PATH", help="also make PATH a symlink to the serial device"
    )
    parser.add_argument(
        "--heap",
        metavar="SIZE",
        type=_heap,
        default=vboard.DEFAULT_HEAP,
        help="MicroPython heap size, as for `micropython -X heapsize` (default: %(default)s; "
        "the firmware needs about 250k as .mpy to start on this 64-bit interpreter)",
    )
    parser.add_argument(
        "--serial",
        metavar="DEVICE",
        help="serve this serial line (a Raspberry Pi's UART or /dev/ttyGS0) instead of a pty "
        "of its own: see sipfw.serialrunner and docs/boards.md",
    )
    from sipfw import serialrunner

    serialrunner.add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    # VboardError is a SipfwError: cli.main prints it as one line, exit status 1
    if args.serial:
        from sipfw import serialrunner

        if args.link:
            raise vboard.VboardError("--link is for a vboard's own pty; with --serial the "
                                     "device is %s" % args.serial)
        return serialrunner.run(args.root, args.serial, args.baud, args.heap, args.interpreter)
    return vboard.run_vboard(args.root, args.link, args.heap)
