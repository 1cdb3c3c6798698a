"""sipfw host tools: flash, configure, watch and bench-test sipfw boards."""

__version__ = "0.1.0"
