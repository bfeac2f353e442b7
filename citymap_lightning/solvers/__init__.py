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
from citymap_lightning.tables import DistanceTable

__all__ = ["FullBatch", "PairBatches", "PairStep", "Solver", "choose"]


def choose(table: DistanceTable, full_batch_limit: int, **pair_options: Any) -> Solver:
    """Every pair at once up to ``full_batch_limit`` places, pair batches above."""
    if table.n <= full_batch_limit:
        return FullBatch(table)
    return PairBatches(table, **pair_options)
