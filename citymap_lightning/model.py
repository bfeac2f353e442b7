"""CityMap: the places' coordinates as an ``nn.Parameter`` fitted to a distance table."""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from citymap_lightning import losses, starts
from citymap_lightning.errors import ConfigError, FitDivergedError

GEOMETRIES = ("plane", "space", "sphere")
"""Values of ``model.geometry``."""


class CityMap(pl.LightningModule):
    """Metric multidimensional scaling by gradient descent on the places' coordinates.

    ``coords`` has shape ``(restarts, num_places, dim)``: each restart is an independent map,
    optimised together in one batched forward pass; the best (lowest stress-1) is the result.
    Coordinates are in the data module's normalised units.

    Args:
        num_places: number of places (the CLI links it from the data).
        geometry: ``plane`` (a flat map), ``space`` (Euclidean 3-D, or ``dim``) or ``sphere``
            (each place a direction from the centre of a sphere; distances are great-circle).
        dim: dimension of ``plane``/``space`` (default 2 and 3); a sphere's vectors are 3-D.
        radius: the sphere's radius in the input's unit (6371.0088 for the Earth in km); learned
            when not given.
        loss: ``course`` (squared distances, the course's objective), ``stress`` (Kruskal raw
            stress) or ``weighted_stress`` (raw stress with weights 1/d^2).
        start: ``random`` (the course's), ``classical`` (Torgerson MDS), or, when the input has
            latitude/longitude, ``mercator`` or ``lambert``. Restarts after the first are random.
        restarts: number of maps fitted at once; the best is kept.

    """

    def __init__(
        self,
        num_places: int = 36,
        geometry: str = "plane",
        dim: int | None = None,
        radius: float | None = None,
        loss: str = "course",
        start: str = "random",
        restarts: int = 1,
    ) -> None:
        super().__init__()
        if geometry not in GEOMETRIES:
            raise ConfigError(f"unknown geometry {geometry!r}: expected one of {', '.join(GEOMETRIES)}")
        if dim is None:
            dim = 2 if geometry == "plane" else 3
        if geometry == "sphere" and dim != 3:
            raise ConfigError(f"geometry 'sphere' places points by 3-D vectors; dim={dim} cannot be used")
        if radius is not None and (geometry != "sphere" or not radius > 0):
            raise ConfigError("radius must be positive and is only used with geometry 'sphere'")
        if loss not in losses.LOSSES:
            raise ConfigError(f"unknown loss {loss!r}: expected one of {', '.join(losses.LOSSES)}")
        if start not in starts.STARTS:
            raise ConfigError(f"unknown start {start!r}: expected one of {', '.join(starts.STARTS)}")
        if restarts < 1 or dim < 1 or num_places < 1:
            raise ConfigError("num_places, dim and restarts must be positive")
        self.save_hyperparameters()
        self.loss_fn = losses.loss_fn(loss)
        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        rng = np.random.default_rng(seed)
        init = np.stack([starts.random_start(num_places, dim, rng) for _ in range(restarts)])
        self.coords = nn.Parameter(torch.from_numpy(init).float())
        self.log_radius = nn.Parameter(torch.zeros(restarts)) if geometry == "sphere" and radius is None else None
        self.register_buffer("fixed_radius", torch.ones(restarts), persistent=False)
        self.register_buffer("stress1", torch.full((restarts,), float("nan")), persistent=False)
        self._fit_started = 0.0
        self._stress1_step = -1

    def setup(self, stage: str) -> None:
        """Set the sphere's radius in normalised units; before fitting, place restart 0 by a data-driven start."""
        dm = self.trainer.datamodule
        if self.hparams.geometry == "sphere":
            self._setup_sphere(dm, stage)
            return
        if stage != "fit" or self.hparams.start == "random":
            return
        table = dm.table
        known = table.known | np.eye(table.n, dtype=bool)
        init = starts.initial_coords(
            self.hparams.start,
            np.where(known, table.distances, np.nan),
            self.coords.shape[-1],
            np.random.default_rng(0),
            known=known,
            latlon=table.latlon,
            scale=dm.scale,
        )
        with torch.no_grad():
            self.coords[0].copy_(torch.from_numpy(init))

    def _setup_sphere(self, dm: Any, stage: str) -> None:
        """Radius (given, or estimated to start the learned one) and, for ``classical``, the chord-MDS start."""
        table = dm.table
        given = self.hparams.radius
        if given is not None:
            self.fixed_radius.fill_(given / dm.scale)
        if stage != "fit":
            return
        vectors, radius = starts.sphere_start(table.distances, table.known, given)
        with torch.no_grad():
            if self.log_radius is not None:
                self.log_radius.fill_(float(np.log(radius / dm.scale)))
            if self.hparams.start == "classical":
                self.coords[0].copy_(torch.from_numpy(vectors))
            elif self.hparams.start != "random":
                raise ConfigError(f"start {self.hparams.start!r} makes a flat map: use random or classical on a sphere")

    @property
    def radius(self) -> torch.Tensor | None:
        """The sphere's radius per restart, in normalised units (None for flat geometries)."""
        if self.hparams.geometry != "sphere":
            return None
        return self.log_radius.exp() if self.log_radius is not None else self.fixed_radius

    def fitted_distances(self, coords: torch.Tensor | None = None) -> torch.Tensor:
        """``(restarts, n, n)`` model distances: Euclidean, or great-circle on the sphere (float64)."""
        coords = self.coords if coords is None else coords
        if self.hparams.geometry == "sphere":
            return losses.geodesic_distances(coords, self.radius)
        return losses.pairwise_distances(coords)

    def pair_distances(self, i: torch.Tensor, j: torch.Tensor, restart: int | None = None) -> torch.Tensor:
        """Model distances of the pairs ``(i[k], j[k])`` in one restart (the best by default), normalised units."""
        restart = self.best_restart() if restart is None else restart
        with torch.no_grad():
            x = self.coords[restart].detach()
            a, b = x[i.to(x.device)], x[j.to(x.device)]
            if self.hparams.geometry != "sphere":
                return (a - b).norm(dim=-1)
            a, b = a.double(), b.double()
            angle = torch.atan2(torch.linalg.cross(a, b).norm(dim=-1), (a * b).sum(-1))
            return self.radius[restart].double() * angle

    def city_residuals(self, restart: int | None = None) -> torch.Tensor:
        """``(n,)``: each place's sum of ``w (dhat - d)^2`` over its known pairs, in one restart (default: the best)."""
        restart = self.best_restart() if restart is None else restart
        batch = {k: v.to(self.device) for k, v in self.trainer.datamodule.batch().items()}
        d, w = self._batch_tensors(batch)
        with torch.no_grad():
            coords = self.coords[restart : restart + 1].detach()
            if self.hparams.geometry != "sphere":
                return losses.fused_city_residuals(coords, d, w)[0]
            fitted = losses.geodesic_distances(coords, self.radius[restart : restart + 1].detach())[0]
            squared = (fitted - d) ** 2
            return (squared if w is None else w * squared).sum(-1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The default optimiser: L-BFGS with a strong-Wolfe line search and no early stopping tolerances.

        The course objective ends near 1.2e-8 in normalised units, below which torch's default
        tolerances (1e-7 on the gradient, 1e-9 on the change) stop some seeds early. With several
        restarts the default is Adam (lr 0.1): one L-BFGS line search would couple the restarts.
        """
        if self.hparams.restarts > 1:
            return torch.optim.Adam(self.parameters(), lr=0.1)
        return torch.optim.LBFGS(
            self.parameters(),
            lr=1.0,
            max_iter=5,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )

    def forward(self) -> torch.Tensor:
        """The coordinates of every restart (normalised units)."""
        return self.coords

    def _batch_tensors(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        dtype = torch.float64 if self.hparams.geometry == "sphere" else self.coords.dtype
        w = batch.get("weights")
        return batch["distances"].to(dtype), None if w is None else w.to(dtype)

    def _evaluate(
        self, batch: dict[str, torch.Tensor], with_stress: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-restart loss and (when asked) stress-1 on a full-matrix batch.

        Flat maps use the fused blockwise loss (analytic gradient, no ``n x n`` temporaries); the
        sphere's geodesics go through autograd in float64.
        """
        d, w = self._batch_tensors(batch)
        if self.hparams.geometry != "sphere":
            loss, residual = losses.fused_loss(self.coords, d, w, self.hparams.loss)
        else:
            fitted = self.fitted_distances()
            loss = self.loss_fn(fitted, d, torch.ones_like(d) if w is None else w)
            with torch.no_grad():
                residual = (((fitted - d) ** 2) if w is None else w * (fitted - d) ** 2).sum((-1, -2))
        if not with_stress:
            return loss, None
        return loss, torch.sqrt(residual.detach().double() / batch["norm"]).float()

    def _logging_step(self) -> bool:
        """Log (and check for divergence) every ``log_every_n_steps`` steps and on the last epoch.

        ``self.log`` costs about a millisecond per call on CPU, more than a whole step on small
        inputs, and a NaN, once there, stays: checking on logging steps is enough.
        """
        trainer = self.trainer
        every = max(1, trainer.log_every_n_steps)
        last = trainer.max_epochs is not None and self.current_epoch >= trainer.max_epochs - 1
        return self.global_step % every == 0 or last

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Sum of the restarts' losses (they are independent); logs the best restart's loss and stress-1."""
        logging = self._logging_step()
        loss, s1 = self._evaluate(batch, with_stress=logging)
        total = loss.sum()
        if logging:
            self.check_finite(total)
            self.stress1 = s1
            best = int(torch.argmin(s1))
            self.log("train/loss", loss[best].detach(), on_step=True, on_epoch=False, prog_bar=True)
            self.log("train/stress1", s1[best], on_step=True, on_epoch=False, prog_bar=True)
            lr = float(self.trainer.optimizers[0].param_groups[0]["lr"])
            self.log("train/lr", lr, on_step=True, on_epoch=False)
            if self.log_radius is not None:
                radius = float(self.radius[best].detach()) * self.trainer.datamodule.scale
                self.log("train/radius", radius, on_step=True, on_epoch=False)
        return total

    def check_finite(self, value: torch.Tensor | None = None) -> None:
        """Stop with a plain message when the loss (or the coordinates) stopped being finite."""
        value = self.coords.detach() if value is None else value.detach()
        if not torch.isfinite(value).all():
            raise FitDivergedError(
                f"the fit diverged (non-finite loss or coordinates) by epoch {self.current_epoch}: the learning "
                "rate is probably too large for this optimiser; lower --optimizer.lr"
            )

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Stress-1 of the best restart."""
        loss, s1 = self._evaluate(batch)
        best = int(torch.argmin(s1))
        self.log("val/stress1", s1[best])
        self.log("val/loss", loss[best])

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The best restart's coordinates (normalised units)."""
        _, s1 = self._evaluate(batch)
        self.stress1 = s1
        return self.coords[int(torch.argmin(s1))].detach()

    def best_restart(self) -> int:
        """Index of the restart with the lowest stress-1 seen last."""
        s1 = torch.nan_to_num(self.stress1, nan=float("inf"))
        return int(torch.argmin(s1))

    def on_fit_start(self) -> None:
        """Declare the hparams metrics so TensorBoard's HPARAMS tab compares runs by final stress-1."""
        self._fit_started = time.perf_counter()
        optimizers = self.trainer.optimizers
        if self.hparams.restarts > 1 and any(isinstance(o, torch.optim.LBFGS) for o in optimizers):
            raise ConfigError(
                f"restarts={self.hparams.restarts} needs a first-order optimiser: L-BFGS's single line search "
                "would couple the restarts; use e.g. --optimizer Adam --optimizer.lr 0.1 --trainer.max_epochs 400"
            )
        if self.logger is None:
            return
        params: dict[str, Any] = dict(self.hparams)
        optimizer = self.trainer.optimizers[0] if self.trainer.optimizers else None
        if optimizer is not None:
            params["optimizer"] = type(optimizer).__name__
            params["lr"] = float(optimizer.param_groups[0]["lr"])
        params["max_epochs"] = self.trainer.max_epochs
        dm = self.trainer.datamodule
        if dm is not None and hasattr(dm, "path"):
            params["data"] = str(dm.path)
        self.logger.log_hyperparams(params, {"hp/stress1": float("nan"), "hp/wall_time_s": float("nan")})

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of another data set with a plain message, not a size-mismatch traceback."""
        saved = tuple(checkpoint.get("state_dict", {}).get("coords", self.coords).shape)
        if saved != tuple(self.coords.shape):
            restarts, places, dim = saved if len(saved) == 3 else (None, None, None)
            raise ConfigError(
                f"the checkpoint holds {places} places x {dim} dimensions ({restarts} restart(s)), but this run has "
                f"{self.hparams.num_places} places x {self.coords.shape[-1]} ({self.hparams.restarts}): "
                "was it made from other data?"
            )

    def refresh_stress1(self) -> None:
        """Recompute each restart's stress-1 at the current coordinates (on the data module's batch).

        The map callback and ``on_train_end`` both need it at the end of a fit: it is computed once per step.
        """
        dm = self.trainer.datamodule
        if dm is None or not hasattr(dm, "batch") or self._stress1_step == self.global_step:
            return
        self._stress1_step = self.global_step
        with torch.no_grad():
            _, self.stress1 = self._evaluate({k: v.to(self.device) for k, v in dm.batch().items()})

    def on_train_end(self) -> None:
        """Log the final stress-1 and wall time as the hparams metrics."""
        self.refresh_stress1()
        if self.logger is None:
            return
        self.logger.log_metrics(
            {
                "hp/stress1": float(self.stress1[self.best_restart()]),
                "hp/wall_time_s": time.perf_counter() - self._fit_started,
            },
            step=self.global_step,
        )
