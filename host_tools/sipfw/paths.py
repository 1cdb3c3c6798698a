"""Where the repository's parts are, seen from the installed (editable) host tools."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE_DIR = os.path.join(ROOT, "firmware")
BOARD_CONFIGS_DIR = os.path.join(ROOT, "board_configs")
EXAMPLES_DIR = os.path.join(ROOT, "examples")
LAB_DIR = os.path.join(ROOT, "lab")


def use_firmware():
    """Make the firmware package ``sipua`` importable on the host (``sipfw resolve``). Its
    log lines go to stderr: stdout is the command's answer (``--json`` output is piped)."""
    if FIRMWARE_DIR not in sys.path:
        sys.path.insert(0, FIRMWARE_DIR)
    from sipua.log import log

    log.set_output(_to_stderr)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
