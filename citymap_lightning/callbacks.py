"""MapRenderer: records the fit's history and writes the map when fitting ends or is interrupted."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from citymap_lightning import align, output, render
from citymap_lightning.errors import FitDivergedError


class MapRenderer(pl.Callback):
    """Draws the fitted map into the run's log directory and TensorBoard.

    Writes ``coordinates.csv`` (``name,x,y`` in the input's unit, x east, y north, origin at the
    centroid) and ``map.png`` (points, labels, each city's trajectory), and logs the figure as the
    TensorBoard image ``map``. Runs at the end of fitting, on Ctrl-C (Lightning then calls only
    ``on_exception``), and after ``predict``.

    Args:
        snapshots: about how many positions of the fit to record for the trajectories.
        max_labels: above this many places, no labels are drawn.

    """

    def __init__(self, snapshots: int = 200, max_labels: int = 200, max_pairs_places: int = 2000) -> None:
        self.snapshots = snapshots
        self.max_pairs_places = max_pairs_places
        self.max_labels = max_labels
        self.history: list[np.ndarray] = []
        self.written: list[Path] = []

    def _interval(self, trainer: pl.Trainer) -> int:
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1000
        return max(1, math.ceil(epochs / max(self.snapshots, 1)))

    def _record(self, pl_module: pl.LightningModule) -> None:
        self.history.append(pl_module.coords.detach().cpu().double().numpy().copy())

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record the start (unless resuming a recorded history)."""
        if not self.history:
            self._record(pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record every few epochs, so that a long run keeps about ``snapshots`` positions."""
        if (trainer.current_epoch + 1) % self._interval(trainer) == 0:
            self._record(pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the results of a finished fit."""
        if trainer.fast_dev_run:
            return
        if not self.history or not np.array_equal(self.history[-1], pl_module.coords.detach().cpu().double().numpy()):
            self._record(pl_module)
        pl_module.refresh_stress1()
        self.render(trainer, pl_module)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """On Ctrl-C, write the map of where the fit got to; after a divergence, write nothing."""
        if isinstance(exception, FitDivergedError) or not isinstance(exception, KeyboardInterrupt):
            return
        if not torch.isfinite(pl_module.coords).all() or trainer.fast_dev_run:
            return
        self._record(pl_module)
        self.render(trainer, pl_module)
        for path in self.written:
            print(f"wrote {path}")

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the coordinates and map of the loaded checkpoint."""
        self.render(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        """The recorded history goes into checkpoints, so that a resumed run draws the whole path."""
        return {"history": [torch.from_numpy(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the recorded history."""
        self.history = [h.numpy() for h in state_dict.get("history", [])]

    @rank_zero_only
    def render(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Align the best restart north-up, then write ``coordinates.csv``, ``map.png`` and the TensorBoard image."""
        pl_module.check_finite()
        dm = trainer.datamodule
        table = dm.table
        best = pl_module.best_restart()
        coords = pl_module.coords[best].detach().cpu().double().numpy() * dm.scale
        history = np.stack([h[best] for h in self.history]) * dm.scale if self.history else None
        orientation = align.orient(coords, table.names, table.latlon)
        coords = orientation.apply(coords)
        if history is not None:
            history = orientation.apply(history)
        log_dir = Path(trainer.log_dir or trainer.default_root_dir)
        stress = float(pl_module.stress1[best])
        title = f"{len(table.names)} places, stress-1 {stress:.5f}" if math.isfinite(stress) else ""
        self.written = [output.write_coordinates(log_dir / "coordinates.csv", table.names, coords)]
        if (table.kind == "pairs" or table.n_known_pairs < table.n_pairs) and table.n <= self.max_pairs_places:
            given = np.where(table.known, table.distances, np.nan)
            fitted = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
            self.written.append(output.write_pairs(log_dir / "pairs_fitted.csv", table.names, given, fitted))
        if coords.shape[1] == 2:
            figure = render.draw_map(
                coords, table.names, history, title=title, unit=table.unit, max_labels=self.max_labels
            )
            self.written.append(output.save_figure(log_dir / "map.png", figure))
            self._log_figure(trainer, "map", figure)
        self.coords, self.orientation = coords, orientation

    @staticmethod
    def _log_figure(trainer: pl.Trainer, tag: str, figure: Any) -> None:
        """Add a figure to TensorBoard when the run logs there."""
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(tag, figure, global_step=trainer.global_step, close=False)
                logger.experiment.flush()
