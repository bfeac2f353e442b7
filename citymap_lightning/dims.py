"""How many dimensions the distances have: stress-1 of flat maps of 1 to ``max_dim`` dimensions, beside random data's.

Each dimension is fitted from the classical start (a random start of a 1-D map ends in one of its
many local minima), through the same LightningModule and data module as ``fit``. The random
baseline is smacof's ``randomstress``: the same known pairs (and weights) with distances drawn
uniformly at random, fitted the same way, ``replicates`` times; real structure shows as stress-1
well below it and as an elbow where one more dimension stops helping.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from citymap_lightning.tables import DistanceTable, MatrixTable, PairTable

log = logging.getLogger("citymap_lightning")

DATA_OPTIONS = ("full_batch_limit", "neighbours", "random_pairs", "batch_size", "min_steps", "exact_limit",
                "sample_pairs", "seed")  # fmt: skip
"""The data module's options a dimension's fit takes from the run's (not the input, anchors or gazetteer)."""


CONVERGED = 1e-7
"""A dimension's fit stops once its stress-1 changes by less than this (relative) over an epoch."""


@dataclass
class Dimension:
    """One row of ``dims.csv``: stress-1 of a ``dim``-dimensional map of the data, and of random data (mean)."""

    dim: int
    stress1: float
    random_stress1: float


def random_table(table: DistanceTable, rng: np.random.Generator, dense_limit: int) -> DistanceTable:
    """The same places and known pairs (and weights) with distances uniform on (0, 1].

    A complete table of up to ``dense_limit`` places (the data's ``full_batch_limit``) stays a
    matrix, fitted as the data's own is; otherwise a pair list.
    """
    i, j, _, w = table.known_values()
    d = 1.0 - rng.random(len(i))
    if len(i) == table.n_pairs and table.n <= dense_limit:
        matrix = np.zeros((table.n, table.n))
        matrix[i, j] = matrix[j, i] = d
        weights = np.zeros((table.n, table.n))
        weights[i, j] = weights[j, i] = w
        return MatrixTable(names=list(table.names), distances=matrix, weights=weights, source="random data")
    return PairTable(names=list(table.names), i=i, j=j, d=d, w=w, source="random data")


def fit_stress1(table: DistanceTable, dim: int, model_options: dict[str, Any], data_options: dict[str, Any],
                trainer_options: dict[str, Any]) -> float:  # fmt: skip
    """Stress-1 of a ``dim``-dimensional flat map of ``table`` fitted from the classical start."""
    from lightning.pytorch import Trainer

    from citymap_lightning.datamodule import DistanceDataModule
    from citymap_lightning.model import CityMap

    dm = DistanceDataModule.from_table(table, gazetteer=False, **data_options)
    model = CityMap(num_places=table.n, **{**model_options, "geometry": "plane", "dim": dim, "start": "classical",
                                            "restarts": 1, "tol": CONVERGED, "patience": 1})  # fmt: skip
    trainer = Trainer(**trainer_options)
    trainer.fit(model, datamodule=dm)
    model.refresh_stress1()
    return float(model.stress1[model.best_restart()])


def scree(
    table: DistanceTable,
    model_options: dict[str, Any],
    data_options: dict[str, Any],
    trainer_options: dict[str, Any],
    max_dim: int = 5,
    replicates: int = 5,
    seed: int = 0,
) -> list[Dimension]:
    """Stress-1 for 1 to ``max_dim`` dimensions (at most ``n - 1``), beside the mean of ``replicates`` random tables.

    Each is the lowest stress-1 of a map of at most that many dimensions (a map of fewer is one of
    more, with zeros on the new axes), so it never rises with the dimension.
    """
    rng = np.random.default_rng(seed)
    table = replace(table, anchors=None, located=None)  # the fits need no frame
    dense_limit = int(data_options.get("full_batch_limit", 5000))
    randoms = [random_table(table, rng, dense_limit) for _ in range(replicates)]
    rows: list[Dimension] = []
    best = [np.inf] * (1 + len(randoms))  # a map of fewer dimensions is one of more, with zeros on the new axes
    for dim in range(1, min(max_dim, table.n - 1) + 1):
        with torch.random.fork_rng(devices=[]), _quiet():
            torch.manual_seed(seed)
            for k, t in enumerate([table, *randoms]):
                best[k] = min(best[k], fit_stress1(t, dim, model_options, data_options, trainer_options))
        rows.append(Dimension(dim, best[0], float(np.mean(best[1:]))))
        real = best[0]
        log.info(f"dimension {dim}: stress-1 {real:.4g}, random data {rows[-1].random_stress1:.4g}")
    return rows


@contextmanager
def _quiet() -> Iterator[None]:
    """The dimensions' own fits say nothing below an error (their data and summary lines would repeat the run's)."""
    saved = log.level
    log.setLevel(max(saved, logging.ERROR))
    try:
        yield
    finally:
        log.setLevel(saved)


def elbow(rows: list[Dimension]) -> int | None:
    """The elbow: the ``k`` whose drop into it is largest against the drop out of it (None below 3 dimensions)."""
    s = np.array([r.stress1 for r in rows])
    if len(s) < 3:
        return None
    drops = s[:-1] - s[1:]
    floor = max(1e-3 * (s[0] - s[-1]), 1e-12 * max(s[0], 1e-300))  # a drop below it (or a rise) is nothing
    drops = np.maximum(drops, floor)
    return int(np.argmax(drops[:-1] / drops[1:])) + 2
