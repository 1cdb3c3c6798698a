"""Output filters for `sipfw logs`, as pio device monitor has them: small plugins in a chain.

Each filter takes an Event and returns it (maybe changed), None to drop it, or a list of
Events to print instead. ``sipfw logs`` builds the chain from its options; the ladder view
(``--ladder``) is one more filter.
"""

from .base import Filter, chain
from .basic import AreaFilter, GrepFilter, LevelFilter
from .ladder import LadderFilter

# Filters that take no argument, by name, for `sipfw logs --filter NAME`. A filter of your
# own is `--filter package.module:ClassName` (any importable class with __call__(ev)).
REGISTRY = {"ladder": LadderFilter}


def load(name: str):
    """A filter instance from a registry name or ``module:Class``; ValueError if unknown."""
    if name in REGISTRY:
        return REGISTRY[name]()
    mod, sep, cls = name.partition(":")
    if not sep:
        raise ValueError("unknown filter %r (built in: %s; or module:Class)"
                         % (name, ", ".join(sorted(REGISTRY))))
    import importlib

    try:
        return getattr(importlib.import_module(mod), cls)()
    except (ImportError, AttributeError) as e:
        raise ValueError("cannot load filter %r: %s" % (name, e)) from None


__all__ = ("REGISTRY", "AreaFilter", "Filter", "GrepFilter", "LadderFilter", "LevelFilter",
           "chain", "load")
