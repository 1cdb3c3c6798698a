"""Sub-commands of ``sipfw``: one module each, found by cli.py."""
