"""Output filters for `sipfw logs`, as pio device monitor has them: small plugins in a chain.

Each filter takes an Event and returns it (maybe changed), None to drop it, or a list of
Events to print instead. ``sipfw logs`` builds the chain from its options; the ladder view
(``--ladder``) is one more filter.
"""

from .base import Filter, chain
from .basic import AreaFilter, GrepFilter, LevelFilter
from .ladder import LadderFilter

__all__ = ("AreaFilter", "Filter", "GrepFilter", "LadderFilter", "LevelFilter", "chain")
