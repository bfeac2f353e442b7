"""The distance table as a LightningDataModule: one full-matrix batch per step."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from citymap_lightning import geo, sampling
from citymap_lightning.data import DistanceTable, load_table, packaged_path
from citymap_lightning.errors import ConfigError

log = logging.getLogger("citymap_lightning")

DEFAULT_DATA = "europe36.csv"
"""The bundled data set fitted when no ``--data.path`` is given."""


class DistanceDataModule(pl.LightningDataModule):
    """Reads a distance input once and serves it, normalised, as a single full-matrix batch.

    Distances are divided by :attr:`scale`, the Frobenius norm of the known distances (the
    course's normalisation), so that learning rates mean the same whatever the input's unit;
    results are multiplied back before they are written.

    Args:
        path: the input file (see :func:`citymap_lightning.data.load_table`); the bundled 36
            European cities when not given.
        format: ``auto`` (from extension and header), ``places``, ``matrix``, ``pairs`` or ``npy``.
        names: for ``.npy`` matrices, a file with one name per line.
        symmetrize: average ``d[i, j]`` and ``d[j, i]`` when they differ instead of refusing.

    """

    def __init__(
        self,
        path: str | None = None,
        format: str = "auto",
        names: str | None = None,
        symmetrize: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.path = str(Path(path) if path else packaged_path("data", DEFAULT_DATA))
        self.table: DistanceTable = load_table(
            self.path, format=format, names=names, symmetrize=symmetrize, lazy=self.lazy_table
        )
        log.info(f"{self.path}: {self.table.n} places, {self.table.n_known_pairs} of {self.table.n_pairs} pairs known")
        self._prepare()

    lazy_table = False
    """Whether a places CSV is read without building its distance matrix."""
    pair_batches = False
    """Whether batches are pairs (else one full-matrix batch)."""

    def _prepare(self) -> None:
        """The scale and the one full-matrix batch."""
        table = self.table
        known = table.known
        complete = int(known.sum()) == table.n * (table.n - 1)
        distances = table.distances if complete else np.where(known, table.distances, 0.0)
        d = torch.from_numpy(distances)
        self.scale = float(torch.linalg.vector_norm(d))
        unweighted = complete and bool((table.weights == 1).all())
        normalised = (d / self.scale).float()
        self._batch = {"distances": normalised}
        if unweighted:  # the sum of d^2 is 1 by the choice of scale
            self._batch["norm"] = torch.tensor(1.0, dtype=torch.float64)
        else:
            weights = torch.from_numpy(np.where(known, table.weights, 0.0))
            self._batch["weights"] = weights.float()
            self._batch["norm"] = (normalised.double().square() * weights).sum()

    @property
    def num_places(self) -> int:
        """Number of places, linked to the model's ``num_places`` by the CLI."""
        return self.table.n

    @property
    def names(self) -> list[str]:
        """Place names in input order."""
        return self.table.names

    def batch(self) -> dict[str, torch.Tensor]:
        """The one batch: normalised ``distances``, ``norm`` and, when needed, ``weights``.

        ``distances`` and ``weights`` are 0 where a pair is unknown; ``weights`` is left out when
        every pair is known with weight 1. ``norm`` is stress-1's denominator, the sum of ``w d^2``
        over the whole matrix.
        """
        return self._batch

    def evaluation_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """The batches over which the fit's exact stress-1 is computed: the one full-matrix batch."""
        yield self._batch

    def _loader(self) -> DataLoader:
        return DataLoader([self._batch], batch_size=None)

    def train_dataloader(self) -> DataLoader:
        """One full-matrix batch per epoch."""
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        """The same batch: validation reports the fit's stress-1."""
        return self._loader()

    def predict_dataloader(self) -> DataLoader:
        """The same batch: prediction writes the coordinates of a checkpoint."""
        return self._loader()


class PairDataModule(DistanceDataModule):
    """Batches of pairs ``(i, j)`` with their distance, for inputs too large for one ``n x n`` batch.

    Each epoch every place is paired with its ``neighbours`` nearest places and ``random_pairs``
    random ones (new each epoch; an incomplete input uses its known pairs instead); the epoch's
    pairs are shuffled and cut into ``max(min_steps, pairs / batch_size)`` batches. A places CSV is
    read without a distance matrix: each batch's great-circle distances are computed when it is
    made, so memory is O(n + batch_size). Under DDP each rank takes every ``world_size``-th pair of the same epoch.

    Validation (and the final stress-1) is exact over all pairs for up to ``exact_limit`` places,
    and beyond that an estimate from a fixed random sample of ``sample_pairs`` pairs.
    Distances are divided by :attr:`scale`, their root mean square over a sample of pairs.

    Args:
        path: the input file, as for :class:`DistanceDataModule`.
        format: as for :class:`DistanceDataModule`.
        names: as for :class:`DistanceDataModule`.
        symmetrize: as for :class:`DistanceDataModule`.
        neighbours: near neighbours per place per epoch.
        random_pairs: random partners per place per epoch.
        batch_size: at most this many pairs per step (over all ranks together).
        min_steps: at least this many steps per epoch (smaller batches for small inputs): the pairs
            of a step move together, and too few steps per epoch slow the fit (measured at n = 300:
            one step per epoch ends at stress-1 0.0029 after 30 epochs, seven at 0.0012).
        exact_limit: up to this many places, stress-1 is computed over every pair.
        sample_pairs: beyond ``exact_limit``, stress-1 is estimated on this many random pairs.
        seed: seed of the pair sampling (the same pairs whatever the number of ranks).
        full_batch_limit: inputs of up to this many places are served as one full-matrix batch
            instead (exact, and faster where the matrix fits: see ``configs/large.yaml``).

    """

    lazy_table = True
    pair_batches = True

    def __init__(
        self,
        path: str | None = None,
        format: str = "auto",
        names: str | None = None,
        symmetrize: bool = False,
        neighbours: int = 8,
        random_pairs: int = 16,
        batch_size: int = 16384,
        min_steps: int = 16,
        exact_limit: int = 20000,
        sample_pairs: int = 1000000,
        seed: int = 0,
        full_batch_limit: int = 0,
    ) -> None:
        if min(neighbours, random_pairs) < 0 or neighbours + random_pairs < 1 or min(batch_size, sample_pairs) < 1:
            raise ConfigError("neighbours and random_pairs must be >= 0 (one of them > 0); batch_size and "
                              "sample_pairs must be positive")  # fmt: skip
        self.neighbours, self.random_pairs, self.batch_size = neighbours, random_pairs, batch_size
        self.min_steps = max(1, min_steps)
        self.exact_limit, self.sample_pairs, self.seed = exact_limit, sample_pairs, seed
        self.full_batch_limit = full_batch_limit
        super().__init__(path=path, format=format, names=names, symmetrize=symmetrize)

    def _prepare(self) -> None:
        """Neighbours, the evaluation pairs and the scale; or, up to ``full_batch_limit`` places, the full batch."""
        table = self.table
        if table.n <= self.full_batch_limit:
            self.pair_batches = False
            table.materialise()
            log.info(f"{self.path}: {table.n} places, at most full_batch_limit: one full-matrix batch")
            super()._prepare()
            return
        complete = table.n_known_pairs == table.n_pairs
        self.known_pairs = None if complete else sampling.known_pair_list(table)
        self.neighbour_index = sampling.nearest_neighbours(table, self.neighbours) if complete else None
        exact = table.n <= self.exact_limit or not complete
        if not exact:
            self._evaluation = sampling.evaluation_pairs(table.n, self.sample_pairs)
        else:  # None: every pair of a complete table, by blocks of rows
            self._evaluation = self.known_pairs
        sample = self._evaluation or sampling.evaluation_pairs(table.n, min(self.sample_pairs, 100000))
        d = table.pair_distances(sample[0][:100000], sample[1][:100000])
        self.scale = float(np.sqrt(np.mean(d**2)))
        self.evaluation_size = table.n_known_pairs if exact else len(self._evaluation[0])
        what = "every pair" if exact else f"a fixed sample of {self.evaluation_size} pairs"
        log.info(f"{self.path}: pair batches of {self.batch_size}; stress-1 is computed over {what}")

    def batch(self) -> dict[str, torch.Tensor]:
        """The full-matrix batch, when the input is small enough to have one."""
        if self.pair_batches:
            raise ConfigError("this input is fitted by pair batches and has no full-matrix batch")
        return super().batch()

    def _pairs(self, i: np.ndarray, j: np.ndarray) -> dict[str, torch.Tensor]:
        """A batch: the pairs, their normalised distances and their weights."""
        return {
            "i": torch.from_numpy(np.ascontiguousarray(i)),
            "j": torch.from_numpy(np.ascontiguousarray(j)),
            "distances": torch.from_numpy(self.table.pair_distances(i, j) / self.scale).float(),
            "weights": torch.from_numpy(self.table.pair_weights(i, j)).float(),
        }

    def _rank(self) -> tuple[int, int, int]:
        """The current epoch, this process's rank and the number of ranks."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 0, 1
        return trainer.current_epoch, trainer.global_rank, trainer.world_size

    def train_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of the current epoch for this rank (the same number on every rank)."""
        epoch, rank, world_size = self._rank()
        i, j = sampling.epoch_pairs(
            self.table.n, self.neighbour_index, self.random_pairs, self.seed, epoch, known=self.known_pairs
        )
        steps = max(self.min_steps, math.ceil(len(i) / self.batch_size))
        i, j = sampling.shard(i, j, rank, world_size)
        for part in np.array_split(np.arange(len(i)), steps):
            yield self._pairs(i[part], j[part])

    def evaluation_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """Every pair up to ``exact_limit`` places, else the fixed sample.

        Every pair of a complete input comes as blocks of whole rows of the matrix (``start`` and
        ``distances``), computed from unit vectors by matrix products: about 1 s per 10^8 pairs.
        """
        if not self.pair_batches:
            yield from super().evaluation_batches()
            return
        if self._evaluation is not None:
            i, j = self._evaluation
            for start in range(0, len(i), self.batch_size):
                yield self._pairs(i[start : start + self.batch_size], j[start : start + self.batch_size])
            return
        rows = max(1, sampling.BLOCK // self.table.n)
        units = torch.from_numpy(geo.to_unit_vectors(self.table.latlon)) if self.table.lazy else None
        for start in range(0, self.table.n, rows):
            if units is None:
                block = torch.from_numpy(self.table.distances[start : start + rows] / self.scale)
            else:
                block = geo.great_circle_block(units[start : start + rows], units) / self.scale
            yield {"start": torch.tensor(start), "distances": block.float()}

    def train_dataloader(self) -> DataLoader:
        """The pair batches of the current epoch."""
        if not self.pair_batches:
            return super().train_dataloader()
        return DataLoader(_Batches(self.train_batches), batch_size=None)

    def _loader(self) -> DataLoader:
        if not self.pair_batches:
            return super()._loader()
        return DataLoader(_Batches(self.evaluation_batches), batch_size=None)


class _Batches(IterableDataset):
    """An iterable dataset over the batches a function makes (called anew for each pass)."""

    def __init__(self, make: Callable[[], Iterator[dict[str, torch.Tensor]]]) -> None:
        super().__init__()
        self.make = make

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self.make()
