"""The distance table as a LightningDataModule: one full-matrix batch per step."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from citymap_lightning.data import DistanceTable, load_table, packaged_path

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
        self.table: DistanceTable = load_table(self.path, format=format, names=names, symmetrize=symmetrize)
        known = self.table.known
        log.info(f"{self.path}: {self.table.n} places, {self.table.n_known_pairs} of {self.table.n_pairs} pairs known")
        self.scale = float(np.sqrt((np.where(known, self.table.distances, 0.0) ** 2).sum()))
        complete = self.table.n_known_pairs == self.table.n_pairs
        unweighted = complete and bool((self.table.weights[known] == 1).all())
        weights = None if unweighted else np.where(known, self.table.weights, 0.0)
        distances = np.where(known, self.table.distances, 0.0)
        self._batch = {
            "distances": torch.from_numpy(distances / self.scale).float(),
            "norm": torch.tensor(float(((distances / self.scale) ** 2 * (1.0 if weights is None else weights)).sum())),
        }
        if weights is not None:
            self._batch["weights"] = torch.from_numpy(weights).float()

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
