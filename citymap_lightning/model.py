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
        anneal_epochs: with pair batches (:class:`~citymap_lightning.datamodule.PairDataModule`), the
            epochs over which the step size decays, as in s_gd2, from ``1 / w_min`` to ``eps / w_max``.
        anneal_eps: that ``eps``.

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
        anneal_epochs: int = 30,
        anneal_eps: float = 0.01,
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
        if anneal_epochs < 1 or not 0 < anneal_eps <= 1:
            raise ConfigError("anneal_epochs must be positive and anneal_eps in (0, 1]")
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
        self._node_mu: torch.Tensor | None = None
        self._eta_range: tuple[float, float] | None = None
        self._sums = torch.zeros(2, dtype=torch.float64)
        self._evaluated: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def setup(self, stage: str) -> None:
        """Set the sphere's radius in normalised units; before fitting, place restart 0 by a data-driven start."""
        dm = self.trainer.datamodule
        if self._pair_batches():
            self._check_pair_fit()
        if self.hparams.geometry == "sphere":
            self._setup_sphere(dm, stage)
            return
        if stage != "fit" or self.hparams.start == "random":
            return
        init = starts.initial_coords(
            self.hparams.start, dm.table, self.coords.shape[-1], np.random.default_rng(0), scale=dm.scale
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
        if self._pair_batches():
            return self._evaluation()[1]
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
        With pair batches it is plain SGD with step 1: the step sizes come from the annealing
        schedule and the per-place cap (see :meth:`_pair_loss`).
        """
        if self._pair_batches():
            return torch.optim.SGD(self.parameters(), lr=1.0)
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

        Up to ``losses.CDIST_LIMIT`` places (the course's 36, say) the distances come from
        ``torch.cdist`` (the sphere's from its geodesics) and autograd gives the gradient; larger
        flat maps use the fused blockwise loss, with the same values and an analytic gradient
        and no ``n x n`` temporaries (10 times faster at n = 5,000).
        """
        d, w = self._batch_tensors(batch)
        if self.hparams.geometry != "sphere" and d.shape[0] > losses.CDIST_LIMIT:
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
        if self._pair_batches():
            return self._pair_loss(batch)
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

    def _pair_batches(self) -> bool:
        """Whether the data module serves batches of pairs."""
        trainer = self._trainer
        return trainer is not None and getattr(trainer.datamodule, "pair_batches", False)

    def eta(self, epoch: int) -> float:
        """The annealed step size of an epoch: ``1 / w_min`` down to ``eps / w_max`` over ``anneal_epochs``."""
        low, high = self._eta_range or (1.0, 1.0)
        top, bottom = 1.0 / low, self.hparams.anneal_eps / high
        fraction = min(epoch, self.hparams.anneal_epochs - 1) / max(self.hparams.anneal_epochs - 1, 1)
        return top * (bottom / top) ** fraction

    def _pair_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The s_gd2 step on a batch of pairs, as a loss for plain SGD with step 1.

        Each pair's term is ``mu/2 (dhat - d)^2`` with ``mu = min(w eta, 1)``, s_gd2's capped step;
        its gradient moves each end of the pair towards the given distance. The pairs of a batch
        move together, so a place in many pairs would overshoot: :meth:`on_before_optimizer_step`
        divides each place's step by ``max(1, sum of its pairs' mu)``, which keeps the step the
        sum of the pairs' steps while that is small and makes it their weighted mean when not.
        Under DDP the loss is multiplied by the number of ranks (DDP averages gradients) and the
        per-place sums are added over the ranks, so the step is that of the union of the batches.
        """
        i, j, d, w = batch["i"], batch["j"], batch["distances"], batch["weights"]
        x = self.coords[0]
        fitted = (x[i] - x[j]).square().sum(-1).clamp_min(torch.finfo(x.dtype).tiny).sqrt()
        lw = w if self.hparams.loss == "stress" else losses.stress_weights(d, w)
        if self._eta_range is None:
            positive = lw[lw > 0]
            bounds = torch.stack([positive.min(), -positive.max()]) if len(positive) else torch.tensor([1.0, -1.0])
            gathered = self.all_gather(bounds.to(x.device)).reshape(-1, 2)
            self._eta_range = (float(gathered[:, 0].min()), float(-gathered[:, 1].min()))
        eta = self.eta(self.current_epoch)
        mu = (lw * eta).clamp(max=1.0)
        residual = fitted - d
        world_size = self.trainer.world_size
        loss = 0.5 * (mu * residual.square()).sum() * world_size
        node = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        node.index_add_(0, i, mu).index_add_(0, j, mu)
        self._node_mu = self.trainer.strategy.reduce(node, reduce_op="sum") if world_size > 1 else node
        if self._logging_step():
            self.check_finite(loss)
            with torch.no_grad():
                batch_s1 = torch.sqrt((w * residual.square()).sum() / (w * d.square()).sum().clamp_min(1e-30))
            self.log("train/batch_stress1", batch_s1, on_step=True, on_epoch=False, prog_bar=True)
            self.log("train/loss", loss.detach() / world_size, on_step=True, on_epoch=False)
            self.log("train/eta", eta, on_step=True, on_epoch=False)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """With pair batches, cap each place's step (see :meth:`_pair_loss`)."""
        if self._node_mu is not None and self.coords.grad is not None:
            self.coords.grad[0] /= self._node_mu.clamp_min(1.0)[:, None]
            self._node_mu = None

    def _pair_sums(self, batches: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Over evaluation batches: ``sum w (dhat - d)^2``, ``sum w d^2`` and each place's residual (best restart).

        A batch is either pairs (``i``, ``j``) or a block of whole rows of the matrix (``start``);
        rows count each pair twice, which leaves stress-1 and the places' shares unchanged.
        """
        sums = torch.zeros(2, dtype=torch.float64)
        places = torch.zeros(self.hparams.num_places, dtype=torch.float64)
        x = self.coords[self.best_restart()].detach()
        with torch.no_grad():
            for batch in batches:
                if "start" in batch:
                    start = int(batch["start"])
                    rows, norm = losses.block_residuals(x, start, batch["distances"].to(x.device))
                    places[start : start + len(rows)] += rows.double().cpu()
                    sums += torch.stack([rows.double().sum(), norm.double().sum()]).cpu()
                    continue
                i, j, w, d = (batch[k].cpu() for k in ("i", "j", "weights", "distances"))
                w, d = w.double(), d.double()
                terms = w * (self.pair_distances(i, j).double().cpu() - d).square()
                sums += torch.stack([terms.sum(), (w * d.square()).sum()])
                places.index_add_(0, i, terms).index_add_(0, j, terms)
        return sums, places

    def _evaluation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_pair_sums` over the data module's evaluation batches, computed once per step."""
        if self._evaluated is None or self._evaluated[0] != self.global_step:
            self._evaluated = (self.global_step, *self._pair_sums(self.trainer.datamodule.evaluation_batches()))
        return self._evaluated[1], self._evaluated[2]

    def check_finite(self, value: torch.Tensor | None = None) -> None:
        """Stop with a plain message when the loss (or the coordinates) stopped being finite."""
        value = self.coords.detach() if value is None else value.detach()
        if not torch.isfinite(value).all():
            raise FitDivergedError(
                f"the fit diverged (non-finite loss or coordinates) by epoch {self.current_epoch}: the learning "
                "rate is probably too large for this optimiser; lower --optimizer.lr"
            )

    def on_validation_epoch_start(self) -> None:
        """Reset the sums of a pair-batch validation."""
        self._sums = torch.zeros(2, dtype=torch.float64)

    def on_validation_epoch_end(self) -> None:
        """With pair batches: stress-1 over every pair, or its estimate on the fixed sample, and the sample's size."""
        if self._sums[1] <= 0:
            return
        self.stress1 = torch.sqrt(self._sums[0] / self._sums[1]).float().reshape(1).to(self.device)
        self.log("val/stress1", self.stress1[0], sync_dist=True)
        self.log("val/pairs", float(self.trainer.datamodule.evaluation_size), sync_dist=True)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Stress-1 of the best restart (with pair batches, summed over the batches)."""
        if self._pair_batches():
            self._sums += self._pair_sums([batch])[0]
            return
        loss, s1 = self._evaluate(batch)
        best = int(torch.argmin(s1))
        self.log("val/stress1", s1[best])
        self.log("val/loss", loss[best])

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The best restart's coordinates (normalised units)."""
        if self._pair_batches():
            self.refresh_stress1()
        else:
            _, self.stress1 = self._evaluate(batch)
        return self.coords[self.best_restart()].detach()

    def best_restart(self) -> int:
        """Index of the restart with the lowest stress-1 seen last."""
        s1 = torch.nan_to_num(self.stress1, nan=float("inf"))
        return int(torch.argmin(s1))

    def on_fit_start(self) -> None:
        """Declare the hparams metrics so TensorBoard's HPARAMS tab compares runs by final stress-1."""
        self._fit_started = time.perf_counter()
        optimizers = self.trainer.optimizers
        if self._pair_batches() and any(isinstance(o, torch.optim.LBFGS) for o in optimizers):
            raise ConfigError(
                "L-BFGS needs the same objective at every evaluation, and pair batches change each step (under DDP "
                "the ranks' line searches would also diverge and deadlock): leave the optimiser at its default for "
                "pair batches, or use the full-matrix DistanceDataModule"
            )
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

    def _check_pair_fit(self) -> None:
        """Refuse what pair batches cannot do, with the reason (L-BFGS is refused in :meth:`on_fit_start`)."""
        hp = self.hparams
        if hp.geometry == "sphere" or hp.loss == "course" or hp.restarts > 1:
            raise ConfigError(
                "pair batches fit one flat map (plane or space) with loss stress or weighted_stress: geometry="
                f"{hp.geometry}, loss={hp.loss}, restarts={hp.restarts} needs the full-matrix DistanceDataModule"
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the pair schedule's weight range, so that a resumed fit anneals exactly as an uninterrupted one."""
        checkpoint["eta_range"] = self._eta_range

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of another data set with a plain message, not a size-mismatch traceback."""
        self._eta_range = checkpoint.get("eta_range")
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
        if dm is None or not hasattr(dm, "evaluation_batches") or self._stress1_step == self.global_step:
            return
        self._stress1_step = self.global_step
        with torch.no_grad():
            if self._pair_batches():
                sums, _ = self._evaluation()
                self.stress1 = torch.sqrt(sums[0] / sums[1]).float().reshape(1).to(self.device)
                return
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
