"""TEMPORARY stand-in for the lead's `sipfw` command table, so `sipfw vboard` runs on the
vboard branch.  Replace it with the real cli.py on merge; keep only the `vboard` entry."""

from __future__ import annotations

import argparse

from sipfw.commands import vboard


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sipfw")
    subparsers = parser.add_subparsers(dest="command", required=True)
    vboard.add_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)
