"""Fitting algorithms, one module each, chosen once when the data is set up (:func:`choose`).

- :mod:`.full`: every known pair in every step (a matrix, or the list of a sparse table's pairs);
  any optimiser, L-BFGS by default; every loss, geometry and number of restarts.
- :mod:`.pairs`: batches of pairs with s_gd2's annealed, capped step (:class:`~.pairs.PairStep`);
  one flat map with raw or weighted stress, for inputs of any size, and DDP.
- :mod:`.placing`: nothing fitted; ``predict`` puts new places on a checkpoint's map.
"""

from __future__ import annotations

from typing import Any

from citymap_lightning.fitting.base import Fitting
from citymap_lightning.fitting.full import FullBatch
from citymap_lightning.fitting.pairs import PairBatches, PairStep
from citymap_lightning.fitting.placing import Placing
from citymap_lightning.tables import DistanceTable

__all__ = ["Fitting", "FullBatch", "PairBatches", "PairStep", "Placing", "choose"]


def choose(table: DistanceTable, full_batch_limit: int, **pair_options: Any) -> Fitting:
    """Every pair at once up to ``full_batch_limit`` places, pair batches above."""
    if table.n <= full_batch_limit:
        return FullBatch(table)
    return PairBatches(table, **pair_options)
