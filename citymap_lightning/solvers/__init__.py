"""Solvers, one module each, chosen once when the data is set up (:func:`choose`).

- :mod:`.full`: every known pair in every step (a matrix, or the list of a sparse table's pairs);
  any optimiser, L-BFGS by default, Guttman transforms for local losses; every loss, geometry and
  number of restarts.
- :mod:`.pairs`: batches of pairs with s_gd2's annealed, capped step (:class:`~.pairs.PairStep`);
  one flat map with a stress-type loss, for inputs of any size, and DDP.

``predict`` of new places fits nothing: :class:`citymap_lightning.placing.Placing` puts them on the map.
"""

from __future__ import annotations

from typing import Any

from citymap_lightning.solvers.base import Solver
from citymap_lightning.solvers.full import FullBatch
from citymap_lightning.solvers.pairs import PairBatches, PairStep
from citymap_lightning.tables import DistanceTable, PairTable

__all__ = ["FullBatch", "PairBatches", "PairStep", "Solver", "choose"]


FULL_BATCH_PAIRS = 2**25
"""A pair list of up to this many known pairs is fitted with every pair in every step, whatever its number of
places: the whole objective costs O(pairs) (about 1.2 GB of float32 step tensors at this size)."""


def choose(table: DistanceTable, full_batch_limit: int, **pair_options: Any) -> Solver:
    """Every pair at once where it fits in memory, pair batches beyond (``full_batch_limit`` 0 forces them).

    A complete table holds ``n^2`` pairs: every pair at once up to ``full_batch_limit`` places. A pair
    list holds only its known pairs: every pair at once up to :data:`FULL_BATCH_PAIRS` of them, so that
    its fit ends at a stationary point of its whole objective; pair batches only for what does not fit.
    """
    whole = table.n <= full_batch_limit
    if full_batch_limit > 0 and isinstance(table, PairTable):
        whole = table.n_known_pairs <= FULL_BATCH_PAIRS
    return FullBatch(table) if whole else PairBatches(table, **pair_options)
