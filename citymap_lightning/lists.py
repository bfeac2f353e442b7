"""Lists of names in one line of the console: the first few, then how many more, never an unbounded line."""

from __future__ import annotations

from collections.abc import Sequence

SHOWN = 10
"""Names a list shows before it says how many more there are."""


def listed(items: Sequence[str], limit: int = SHOWN, sep: str = ", ", total: int | None = None) -> str:
    """The first ``limit`` of ``items`` joined by ``sep``, then ``… and N more``; ``total`` counts items not given."""
    shown = [str(item) for item in list(items)[:limit]]
    more = (len(items) if total is None else total) - len(shown)
    return sep.join(shown) + (f" … and {more} more" if more > 0 else "")
