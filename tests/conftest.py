"""Make the firmware and the shared firmware-test helpers importable on CPython."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("firmware", "tests", os.path.join("tests", "fw"), "lab"):
    path = os.path.join(ROOT, sub)
    if path not in sys.path:
        sys.path.insert(0, path)
