"""The ``sipfw`` command: one table of sub-commands, one place that maps errors to exit codes.

Every module in ``sipfw.commands`` is a sub-command: it provides ``add_parser(subparsers)``
(which sets ``func``) and imports anything heavy inside its handler, so ``sipfw --help``
stays fast.
"""

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands
from .errors import SipfwError
from .procs import exit_on_sigterm


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sipfw", description="Flash, configure, watch and bench-test sipfw boards."
    )
    parser.add_argument("--version", action="version", version="sipfw " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module("sipfw.commands." + info.name).add_parser(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    exit_on_sigterm()
    try:
        return args.func(args) or 0
    except SipfwError as e:
        print("sipfw %s: %s" % (args.command, e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("sipfw %s: interrupted" % args.command, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
