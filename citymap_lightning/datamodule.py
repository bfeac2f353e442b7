"""The distance table as a LightningDataModule: reads the input once and chooses the fitting algorithm once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader

from citymap_lightning import anchors as anchoring
from citymap_lightning import checkpoints, comparison, gazetteer, placing, solvers
from citymap_lightning.errors import ConfigError
from citymap_lightning.lists import listed
from citymap_lightning.paths import packaged_path
from citymap_lightning.readers import load_new_places, load_table
from citymap_lightning.tables import DistanceTable

log = logging.getLogger("citymap_lightning")

DEFAULT_DATA = "europe36.csv"
"""The bundled data set fitted when no ``--data.path`` is given."""


def locate(table: DistanceTable, where: str, by_distance: bool = True) -> Any:
    """The places of ``table`` found by name in the gazetteer, or None when they cannot fix a frame; says which.

    ``by_distance``: break ties by the table's distances (read through one monotone curve, so any transform
    that keeps their order will do); else by the country most other matches share, then population. Names
    with a qualifier that is no region or country are said in one warning. With some names found but too few
    to fix a frame, a warning says that the map may be turned or mirrored and how to fix it.
    """
    found = gazetteer.match(table, by_distance=by_distance)
    if found.unknown:
        count = len(found.unknown)
        log.warning(
            f"{where}: {count} {'name carries' if count == 1 else 'names carry'} a qualifier that is no region or "
            f"country GeoNames knows, so it was not used: {listed(found.unknown, UNKNOWN_SHOWN, sep='; ')}"
        )
    matched = len(found.places)
    if matched == 0:
        return None
    line = f"{where}: {matched} of {table.n} names found in the GeoNames gazetteer"
    line += f" (not found: {listed(found.unmatched, UNMATCHED_SHOWN, sep='; ')})" if found.unmatched else ""
    if not gazetteer.non_collinear(found.latlon):
        log.warning(
            f"{line}: too few, or on one line, to put the map north up, so it may be turned or mirrored. Names are "
            f"found written as City; City, Region (a state, province or prefecture of any country; ST in the US, "
            f"Canada and Australia); City, Country; or City (Region, Country). Else "
            f"{gazetteer.FIX_FRAME}"
        )
        return None
    log.info(f"{line}: the map is put north up on those that agree with it")
    return found


UNMATCHED_SHOWN = 50
"""Most names not found that the log lists."""
UNKNOWN_SHOWN = 10
"""Most names with an unknown qualifier that the log lists."""


def _anchors_by_name(fitted: DistanceTable, names: list[str]) -> Any:
    """A checkpoint's anchors in the order of ``names`` (predict of the same places, in any order), if all are there."""
    placed = fitted.anchors
    if placed is None:
        return None
    position = {name: k for k, name in enumerate(names)}
    kept = [fitted.names[k] for k in placed.index]
    if not all(name in position for name in kept):
        return None
    placed.index = np.array([position[name] for name in kept], dtype=np.int64)
    return placed


class DistanceDataModule(pl.LightningDataModule):
    """Reads a distance input and serves it to the fitting algorithm its size calls for.

    Up to ``full_batch_limit`` places every known pair is in every step
    (:class:`~citymap_lightning.solvers.FullBatch`: the course's path, any optimiser); above it,
    batches of pairs (:class:`~citymap_lightning.solvers.PairBatches`): each epoch every place is
    paired with its ``neighbours`` nearest places and ``random_pairs`` random ones (new each epoch;
    an incomplete input uses its known pairs instead), shuffled and cut into
    ``max(min_steps, pairs / batch_size)`` batches, with memory O(n + pairs). Distances are divided
    by :attr:`scale` while fitting; results are multiplied back before they are written.

    Args:
        path: the input file (see :func:`citymap_lightning.readers.load_table`); the bundled 36
            European cities when not given.
        format: ``auto`` (from extension and header), ``places``, ``matrix``, ``pairs`` or ``npy``.
        names: for ``.npy`` matrices, a file with one name per line.
        symmetrize: average ``d[i, j]`` and ``d[j, i]`` when they differ instead of refusing.
        full_batch_limit: inputs of up to this many places are fitted with every pair in every step.
        neighbours: pair batches: near neighbours per place per epoch.
        random_pairs: pair batches: random partners per place per epoch.
        batch_size: pair batches: at most this many pairs per step (over all ranks together); by default
            16,384, or ``n / 8`` above 131,072 places (a step's fixed cost then weighs less).
        min_steps: pair batches: at least this many steps per epoch (smaller batches for small
            inputs): the pairs of a step move together, and too few steps per epoch slow the fit
            (measured at n = 300: one step per epoch ends at stress-1 0.0029 after 30 epochs, seven at 0.0012).
        exact_limit: pair batches: up to this many places, stress-1 is computed over every pair.
        sample_pairs: pair batches: beyond ``exact_limit``, stress-1 is estimated on this many random pairs.
        seed: seed of the pair sampling (the same pairs whatever the number of ranks).
        gazetteer: for inputs without latitude/longitude, look the names up in the bundled GeoNames
            gazetteer (``City``, ``City, ST``, ``City, Country``, ``City (Country)``); with 3 or more
            non-collinear places found, the map is put north up and east right, scaled onto those that
            agree with it (the scale is reported; a wrong match is left out and named), and written as
            GeoJSON too.
        anchors: a CSV of places held at known positions, ``name,latitude,longitude`` or
            ``name,x,y``; every other place is fitted to its distances. The map is then in the
            anchors' frame (latitude/longitude on the azimuthal equidistant projection about their
            centre, in km), before any latitude/longitude of the input and the gazetteer.
        positions: a CSV of the places' real positions, ``name,latitude,longitude`` or ``name,x,y``,
            compared with the map and never fitted: the run writes ``comparison.json``/``.csv``,
            ``displacement.png`` and ``distortion.png``. Without anchors or latitude/longitude in the
            input they fix the map's frame (rotated and reflected onto them, never scaled), before the gazetteer.
        predict_from: the checkpoint ``predict`` draws: a file naming places not on its map is read as
            new places to put on it. ``predict --ckpt_path`` sets it; a fit takes none.
        unit: the distances' unit (``hours``, ``min``, ``miles``, ...), written on every picture's axes, scale
            bar and arrow scale; unknown by default (``input units``). Latitude/longitude are in km: another
            unit is refused.

    :meth:`from_table` makes one of a table made in memory (the estimator's, ``dims``' random tables).

    """

    def __init__(
        self,
        path: str | None = None,
        format: str = "auto",
        names: str | None = None,
        symmetrize: bool = False,
        full_batch_limit: int = 5000,
        neighbours: int = 8,
        random_pairs: int = 16,
        batch_size: int | None = None,
        min_steps: int = 16,
        exact_limit: int = 20000,
        sample_pairs: int = 1000000,
        seed: int = 0,
        gazetteer: bool = True,
        anchors: str | None = None,
        positions: str | None = None,
        predict_from: str | None = None,
        unit: str | None = None,
        *,
        _table: DistanceTable | None = None,
    ) -> None:
        super().__init__()
        if full_batch_limit < 0:
            raise ConfigError(f"data.full_batch_limit is {full_batch_limit}: it must be >= 0")
        if min(neighbours, random_pairs) < 0 or neighbours + random_pairs < 1 or min(batch_size or 1, sample_pairs) < 1:
            raise ConfigError("neighbours and random_pairs must be >= 0 (one of them > 0); batch_size and "
                              "sample_pairs must be positive")  # fmt: skip
        self.save_hyperparameters(ignore=["_table"])
        given = _table.source if _table is not None else None
        self.path = given or str(Path(path) if path else packaged_path("data", DEFAULT_DATA))
        self.new_places: placing.NewPlaces | None = None
        self.table: DistanceTable
        self.solver: solvers.Solver | placing.Placing
        self._read(_table)

    def _read(self, given: DistanceTable | None) -> None:
        """Read the input (or take ``given``), its anchors, positions and names; choose the solver."""
        hp = self.hparams
        fitted = None
        if hp.predict_from is not None:
            checkpoint = checkpoints.check_checkpoint(Path(hp.predict_from))
            fitted = checkpoints.fitted_table(checkpoint, hp.predict_from)
        if fitted is not None and self._read_new_places(*fitted, hp.format):
            return
        self.table = given or load_table(self.path, format=hp.format, names=hp.names, symmetrize=hp.symmetrize)
        log.info(f"{self.path}: {self.table.n} places, {self.table.n_known_pairs} of {self.table.n_pairs} pairs known")
        if hp.unit is not None and hp.unit.strip():
            if self.table.unit and hp.unit.strip() != self.table.unit:
                raise ConfigError(f"data.unit is {hp.unit!r}, but {self.path}'s distances are in {self.table.unit} "
                                  "(great-circle km from latitude/longitude): leave it out")  # fmt: skip
            self.table.unit = hp.unit.strip()
        anchors, positions = hp.anchors, hp.positions
        restored = _anchors_by_name(fitted[0], self.table.names) if fitted and anchors is None else None
        if restored is not None:  # predict draws an anchored fit again, in its anchors' frame
            self.table.anchors = restored
        elif anchors is not None:
            self.table.anchors = anchoring.place(anchoring.from_object(anchors), self.table)
            log.info(
                f"{self.table.anchors.source}: {len(self.table.anchors.index)} places held at their given positions"
            )
        if positions is not None:
            self.table.positions = comparison.match_positions(
                anchoring.read(positions, "positions file"), self.table.names
            )
            log.info(f"{positions}: {len(self.table.positions.index)} places' real positions, compared with the map")
        elif anchors is None and restored is None and hp.gazetteer and self.table.latlon is None:
            self.table.located = locate(self.table, self.path)
        options = {k: hp[k] for k in ("neighbours", "random_pairs", "batch_size", "min_steps", "exact_limit",
                                      "sample_pairs", "seed")}  # fmt: skip
        self.solver = solvers.choose(self.table, hp.full_batch_limit, **options)
        if self.table.n > 1000 or isinstance(self.solver, solvers.PairBatches):
            log.info(f"{self.path}: {self.solver.describe()}")

    @classmethod
    def from_table(cls, table: DistanceTable, **options: Any) -> DistanceDataModule:
        """A data module of a table made in memory (``options`` as for the constructor, less ``path``)."""
        return cls(**options, _table=table)

    def _read_new_places(self, table: DistanceTable, scale: float | None, format: str) -> bool:
        """For ``predict`` of new places: the checkpoint's places as the table, the new ones to put on its map."""
        new = load_new_places(self.path, table.names, table.latlon, format)
        if new is None:
            return False
        if scale is None:
            raise ConfigError(f"{table.source}: the checkpoint does not keep its map's scale (made by an older "
                              "version): fit again to put new places on its map")  # fmt: skip
        self.table, self.new_places = table, new
        self.solver = placing.Placing(table, new, scale)
        log.info(f"{self.path}: {self.solver.describe()} ({table.source})")
        return True

    @property
    def scale(self) -> float:
        """Distances are divided by this while fitting."""
        return self.solver.scale

    @property
    def num_places(self) -> int:
        """Number of places, linked to the model's ``num_places`` by the CLI."""
        return self.table.n

    @property
    def names(self) -> list[str]:
        """Place names in input order."""
        return self.table.names

    def _rank(self) -> tuple[int, int, int]:
        """The current epoch, this process's rank and the number of ranks."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 0, 1
        return trainer.current_epoch, trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader:
        """The fitting algorithm's batches of each epoch."""
        return self.solver.train_loader(self._rank)

    def val_dataloader(self) -> DataLoader:
        """The batches stress-1 is computed over."""
        return self.solver.evaluation_loader()

    def predict_dataloader(self) -> DataLoader:
        """The same batches: prediction writes the coordinates of a checkpoint."""
        return self.solver.evaluation_loader()
