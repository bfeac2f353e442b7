"""CityMap: the places' coordinates as an ``nn.Parameter``, fitted by the algorithm the data calls for."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from citymap_lightning import anchors as anchoring
from citymap_lightning import checkpoints, losses, stages, starts
from citymap_lightning import geometry as geo
from citymap_lightning.convergence import Convergence
from citymap_lightning.errors import ConfigError, FitDivergedError
from citymap_lightning.metrics import Stress1
from citymap_lightning.problem import MapState, Problem, StepResult, check_settings
from citymap_lightning.problem import build as build_problem
from citymap_lightning.solvers import Solver
from citymap_lightning.solvers.base import DirectStep
from citymap_lightning.tables import DistanceTable

GUARD_RATIO = 1.1
"""A fit whose stress-1 exceeds this times the classical start's is reported as a probable local minimum..."""
GUARD_MARGIN = 1e-4
"""... and exceeds it by this much: below, both maps fit to rounding (3 places, an exact start)."""

log = logging.getLogger("citymap_lightning")


AUTO_REASON = {"course": "the course's objective on squared distances", "stress": "Kruskal's raw stress"}
"""What the INFO line says of the loss ``auto`` picked."""


class CityMap(pl.LightningModule):
    """Metric multidimensional scaling by gradient descent on the places' coordinates.

    ``coords`` has shape ``(restarts, num_places, dim)``: each restart is an independent map,
    optimised together in one batched forward pass; the best (lowest stress-1) is the result.
    Coordinates are in the solver's normalised units. The model holds the coordinates, the start
    and the run's logging and results; what is fitted is the :class:`~citymap_lightning.problem.Problem`
    built once (:meth:`prepare`), and each step goes to the :class:`~citymap_lightning.solvers.Solver`
    its data module chose.

    Args:
        num_places: number of places (the CLI links it from the data).
        geometry: ``plane`` (a flat map), ``space`` (Euclidean 3-D, or ``dim``) or ``sphere``
            (each place a direction from the centre of a sphere; distances are great-circle).
        dim: dimension of ``plane``/``space`` (default 2 and 3); a sphere's vectors are 3-D.
        radius: the sphere's radius in the input's unit (6371.0088 for the Earth in km); ``learn``
            to learn it; when not given, the Earth's for latitude/longitude inputs, else learned.
        loss: ``auto`` (``course`` for the ratio transform, ``stress`` for ``interval`` and
            ``ordinal``; an INFO line says which), ``course`` (squared distances, the course's
            objective), ``stress`` (Kruskal raw stress), ``weighted_stress`` (raw stress with
            weights 1/d^2) or ``sammon`` (weights 1/d): the registry :data:`citymap_lightning.losses.REGISTRY`.
        start: ``auto`` (random for the course objective on a flat map of up to 200 places, else classical: see
            :func:`~citymap_lightning.starts.resolve_start`), ``random`` (the course's), ``classical``
            (Torgerson MDS), ``pivot`` (pivot MDS on shortest paths through the known pairs), or,
            when the input has latitude/longitude, ``mercator`` or ``lambert``. Restarts after the
            first are random.
        restarts: number of maps fitted at once; the best is kept.
        anneal_epochs: with pair batches, the epochs over which the step size decays, as in s_gd2,
            from ``1 / w_min`` to ``eps / w_max``.
        anneal_eps: that ``eps``.
        transform: ``ratio`` (the given values are distances), ``interval`` (each is ``a + b * dhat``,
            ``dhat`` the map distance: a fixed cost ``a``, logged as ``transform/a`` and ``transform/b``)
            or ``ordinal`` (only their order counts); see :mod:`citymap_lightning.transforms`.
            Stress-1 is then against the disparities. The course objective compares squared
            distances and takes no transform.
        bootstrap: ``K`` replicates fitted beside the map, each to the known pairs resampled with
            replacement (as weights), all by Guttman transforms from the map's start; they give each
            place's 95% ellipse (``uncertainty.csv``). They are never the result. A 2-D plane with
            raw or weighted stress, up to 1,000 places.
        tol: the fit stops once the objective's relative change over an epoch has stayed below
            ``tol`` for ``patience`` epochs in a row (``trainer.max_epochs`` is a ceiling); the run
            ends with one line saying whether it converged. Pair batches are judged on stress-1 over
            the evaluation pairs once their step size has annealed. 0 never stops early.
        patience: that many epochs in a row.

    """

    def __init__(
        self,
        num_places: int = 36,
        geometry: str = "plane",
        dim: int | None = None,
        radius: float | str | None = None,
        loss: str = "auto",
        start: str = "auto",
        restarts: int = 1,
        anneal_epochs: int = 30,
        anneal_eps: float = 0.01,
        transform: str = "ratio",
        bootstrap: int = 0,
        tol: float = 1e-7,
        patience: int = 3,
    ) -> None:
        super().__init__()
        given = loss
        dim, loss = check_settings(num_places, geometry, dim, radius, loss, start, restarts, anneal_epochs,
                                   anneal_eps, transform, bootstrap)  # fmt: skip
        self._auto_loss = given == losses.AUTO  # resolved again at set-up, where the solver is known (resolve_auto)
        if not 0 <= tol < 1 or patience < 1:
            raise ConfigError(f"tol is {tol} and patience {patience}: give 0 <= tol < 1 and patience >= 1")
        self.save_hyperparameters()
        self.hparams.loss = loss  # the resolved loss (LightningCLI saves the config's): what the fit and predict use
        self.start = starts.resolve_start(start, loss, geometry)
        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        rng = np.random.default_rng(seed)
        maps = restarts + bootstrap  # the bootstrap replicates come after the restarts
        init = np.stack([starts.random_start(num_places, dim, rng) for _ in range(maps)])
        self.coords = nn.Parameter(torch.from_numpy(init).float())
        self.geometry = geo.of(geometry, dim, radius)
        learned = self.geometry.curved and radius in (None, "learn")
        self.log_radius = nn.Parameter(torch.zeros(maps)) if learned else None
        self.register_buffer("fixed_radius", torch.ones(maps), persistent=False)
        self.register_buffer("stress1", torch.full((maps,), float("nan")), persistent=False)
        self.val_stress1 = Stress1(maps)
        self.solver: Solver | None = None
        self.problem: Problem | None = None
        self._fit_started = 0.0
        self._written = True
        self._stress1_step = -1
        self._reference: np.ndarray | None = None
        self._reference_objective: float | None = None  # the fit's own loss at the reference map
        self._gradient = True
        self.log_steps = True
        """Whether a step's values go to ``self.log``; the estimator, with no logger, progress bar or callback
        to read them, turns it off: ``self.log`` cost about a third of a 500-place fit."""
        self._anchor_hook: Any = None
        self.convergence = Convergence(tol, patience)
        self.start_stages: list[stages.Stage] = []
        """The stages the start ran (:mod:`citymap_lightning.stages`), for the logs and the summary line."""

    def prepare(self, table: DistanceTable, solver: Solver, fitting: bool = True) -> Problem:
        """Build the problem of ``table`` and set ``solver`` up for it, once; refuse in one line what cannot be fitted.

        The CLI calls it before any file is written, and :meth:`setup` for fits started otherwise (the
        estimator, a plain Trainer); for the same table and solver it runs once.
        """
        if self.problem is not None and self.problem.table is table and self.solver is solver:
            return self.problem
        hp = self.hparams
        self.resolve_auto(solver)
        problem = build_problem(hp, table, self.geometry)
        solver.setup(problem, hp.anneal_epochs, hp.anneal_eps)
        if fitting:
            self.check_anchors(table)
            starts.check_start(self.start, table, self.coords.shape[-1], hp.geometry)
        self.problem, self.solver = problem, solver
        # the solver's objective may be too noisy to judge by a smaller tolerance (pair batches)
        self.convergence.tol = max(hp.tol, solver.min_tolerance) if hp.tol else 0.0
        self.convergence.stalled = solver.stalled
        return problem

    def resolve_auto(self, solver: Solver) -> None:
        """``loss: auto``: the course objective where the solver fits it exactly, raw stress otherwise; said once.

        The course objective compares squared distances, which pair batches (inputs too large to fit
        whole) and the interval and ordinal transforms do not take: those get raw stress.
        """
        if not self._auto_loss:
            return
        self._auto_loss = False
        hp = self.hparams
        loss, why = hp.loss, f"{AUTO_REASON[hp.loss]}, for the {hp.transform} transform"
        if losses.get(loss).squared and not getattr(solver, "fits_squared", True):
            loss, why = "stress", f"{AUTO_REASON['stress']}: {solver.describe()} fit stress-type losses only"
            hp.loss = loss
            self.start = starts.resolve_start(hp.start, loss, hp.geometry)
        log.info(f"model.loss auto: {loss} ({why})")

    def setup(self, stage: str) -> None:
        """Build the problem (unless the CLI did); set the radius; before fitting, place the restarts by the start."""
        dm = self.trainer.datamodule
        hp = self.hparams
        self.resolve_auto(dm.solver)
        self.start = starts.resolve_start(hp.start, hp.loss, hp.geometry, dm.table if stage == "fit" else None)
        self.prepare(dm.table, dm.solver, fitting=stage == "fit")
        if self.geometry.curved:
            self._setup_sphere(dm.table, stage)
        elif stage == "fit" and self.start != "random":
            self.start_stages.clear()
            init = starts.initial_coords(
                self.start,
                dm.table,
                self.coords.shape[-1],
                np.random.default_rng(0),
                scale=self.solver.scale,
                loss=self.hparams.loss if self.hparams.transform == "ratio" else "stress",
                record=self.start_stages,
            )
            self.log_stages()
            if self.start in ("classical", "pivot"):
                self._reference = init  # the quality guard's reference: no need to compute it again
            with torch.no_grad():
                self.coords[0].copy_(torch.from_numpy(init))
        if stage == "fit":
            self._hold_anchors(dm.table)
            with torch.no_grad():  # bootstrap replicates start where the map starts
                self.coords[self.hparams.restarts :] = self.coords[0]

    def log_stages(self) -> None:
        """Each stage the start ran: one INFO line, and TensorBoard scalars and text.

        The scalars ``start/stage``, ``start/objective`` and ``start/seconds`` and the text ``start/stage_name``
        are stepped by the stage's number; ``start/stages`` is a table of them all.
        """
        if not self.start_stages:
            return
        experiment = getattr(self.logger, "experiment", None) if self._trainer is not None else None
        writer = experiment if hasattr(experiment, "add_scalar") else None
        for k, stage in enumerate(self.start_stages):
            log.info(stage.line())
            if writer is not None:
                writer.add_scalar("start/stage", k, k)
                writer.add_scalar("start/objective", stage.objective, k)
                writer.add_scalar("start/seconds", stage.seconds, k)
                writer.add_text("start/stage_name", stage.name, k)
        if writer is not None:
            writer.add_text("start/stages", stages.table(self.start_stages), 0)

    def check_anchors(self, table: Any) -> None:
        """Refuse anchors this geometry and dimension cannot hold, in one line."""
        if table.anchors is not None:
            anchoring.check_model(table.anchors, self.hparams.geometry, self.coords.shape[-1])

    def _hold_anchors(self, table: Any) -> None:
        """Move every restart's start onto the anchors and hold them there.

        Their gradient is zeroed, and they are put back after each step (an optimiser's weight decay
        would move them otherwise).
        """
        placed = table.anchors
        if placed is None:
            return
        sphere = self.geometry.curved  # the anchors were checked when the problem was built (prepare)
        target = placed.directions() if sphere else placed.coords / self.solver.scale
        with torch.no_grad():
            if (
                table.latlon is not None and placed.latlon is not None
            ):  # the input's own positions, in the anchors' frame
                known = (
                    geo.to_unit_vectors(table.latlon)
                    if sphere
                    else geo.azimuthal_equidistant(table.latlon, placed.centre)
                )
                self.coords[0].copy_(torch.from_numpy(known if sphere else known / self.solver.scale))
            for r in range(self.coords.shape[0]):
                moved = anchoring.align_start(self.coords[r].cpu().double().numpy(), placed, target, sphere)
                self.coords[r].copy_(torch.from_numpy(moved))
        if self._reference is not None:
            self._reference = anchoring.align_start(self._reference, placed, target, sphere)
        index = torch.from_numpy(placed.index).to(self.coords.device)
        self.problem.anchored = (index, torch.from_numpy(target).to(self.coords))
        free = torch.ones(self.coords.shape[1], 1, dtype=self.coords.dtype, device=self.coords.device)
        free[index] = 0.0
        if self._anchor_hook is not None:
            self._anchor_hook.remove()
        self._anchor_hook = self.coords.register_hook(lambda grad: grad * free.to(grad))

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Put anchored places back where they were given."""
        if self.problem.anchored is not None:
            index, target = self.problem.anchored
            with torch.no_grad():
                self.coords[:, index.to(self.coords.device)] = target.to(self.coords)

    def _setup_sphere(self, table: Any, stage: str) -> None:
        """Radius (given, or estimated to start the learned one) and, for ``classical``, the chord-MDS start.

        Without a given radius, places given by latitude/longitude keep the Earth's: their distances
        are great-circle km on it, and a region's distances determine the radius only weakly.
        """
        given, scale = self.hparams.radius, self.solver.scale
        learn, given = given == "learn", None if given == "learn" else given
        on_earth = table.latlon is not None or (table.anchors is not None and table.anchors.latlon is not None)
        if given is None and not learn and on_earth:
            given = geo.EARTH_RADIUS_KM
            self.log_radius.requires_grad_(False)
            with torch.no_grad():
                self.log_radius.fill_(float(np.log(given / scale)))
        if given is not None:
            self.fixed_radius.fill_(given / scale)
        if stage != "fit":
            return
        starts.check_start(self.start, table, 3, "sphere")
        flat = None
        if self.start == "classical" and not table.complete and table.n <= starts.CONTINUATION_LIMIT:
            loss = self.hparams.loss if self.hparams.transform == "ratio" else "stress"
            flat = starts.continuation(table, loss, 2)  # a candidate, in the input's unit
        vectors, radius = starts.sphere_start(table, given, flat)
        if flat is not None:  # settled on the sphere in float64 before the epochs (see settle_on_sphere)
            for stage in dict.fromkeys(["stress", loss] if losses.get(loss).local else [loss]):
                vectors, radius = starts.settle_on_sphere(stage, vectors, radius, table, learn=given is None)
        self._reference = vectors
        with torch.no_grad():
            if self.log_radius is not None:
                self.log_radius.fill_(float(np.log(radius / scale)))
            if self.start == "classical":
                self.coords[0].copy_(torch.from_numpy(vectors))

    @property
    def radius(self) -> torch.Tensor | None:
        """The sphere's radius per restart, in normalised units (None for flat geometries)."""
        if not self.geometry.curved:
            return None
        return self.log_radius.exp() if self.log_radius is not None else self.fixed_radius

    def state(self, logging: bool = False) -> MapState:
        """The maps as they stand, for the solver: coordinates, radius, epoch, best restart, the ranks."""
        trainer = self._trainer
        world_size = trainer.world_size if trainer is not None else 1
        reduce = (lambda x: trainer.strategy.reduce(x, reduce_op="sum")) if world_size > 1 else (lambda x: x)
        return MapState(
            self.coords, self.radius, epoch=self.current_epoch if trainer is not None else 0,
            step=self.global_step if trainer is not None else 0, best=self.best_restart(), world_size=world_size,
            reduce=reduce, logging=logging, stress1=self.stress1, gradient=self._gradient,
        )  # fmt: skip

    def fitted_distances(self) -> torch.Tensor:
        """``(restarts, n, n)`` model distances: Euclidean, or great-circle on the sphere (float64)."""
        return self.problem.distances(self.state())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The solver's own optimiser (``--optimizer`` replaces it where the solver allows)."""
        return self.solver.configure_optimizer(self.problem, self.parameters())

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The solver's step; its values are logged on Lightning's schedule."""
        state = self.state(logging=self.logging_step())
        result = self.solver.training_step(self.problem, state, batch)
        if state.logging:
            self.check_finite(result.loss)
            self.record(result, state)
        return result.loss

    def logging_step(self) -> bool:
        """Log (and check for divergence) on the steps Lightning writes, and on the last epoch.

        Lightning writes a step's logged values only when its own schedule says so (the ``(k + 1)``-th
        step for ``log_every_n_steps`` dividing ``k + 1``); the decision is taken from Lightning itself,
        so that every ``log_every_n_steps`` gets its points. The last epoch is logged too: its values
        are the fit's end (written in :meth:`on_train_end` when Lightning did not write them).
        ``self.log`` costs about a millisecond per call on CPU, more than a whole step on small inputs,
        and a NaN, once there, stays: checking on logging steps is enough.
        """
        trainer = self.trainer
        scheduled = trainer._logger_connector.should_update_logs or bool(trainer.fast_dev_run)
        self._written = scheduled
        last = trainer.max_epochs is not None and self.current_epoch >= trainer.max_epochs - 1
        return scheduled or last

    def record(self, result: StepResult, state: MapState) -> None:
        """Keep each restart's stress-1; log the step's values for the best restart, with the radius and transform.

        The learning rate is logged where an optimiser has one to tune (not the solvers' own direct steps).
        """
        if result.stress1 is not None:
            self.stress1 = result.stress1
        if not self.log_steps:
            return
        best = state.best = self.best_restart()  # never a bootstrap replicate
        logged = dict(result.logs)
        if result.stress1 is not None:
            logged["train/stress1"] = result.stress1
        for tag, value in logged.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                value = value[best]
            self.log(tag, value, on_step=True, on_epoch=False, prog_bar=tag in result.shown)
        optimizer = self.trainer.optimizers[0] if self.trainer.optimizers else None
        if optimizer is not None and not isinstance(optimizer, DirectStep):
            self.log("train/lr", float(optimizer.param_groups[0]["lr"]), on_step=True, on_epoch=False)
        if self.log_radius is not None:
            radius = float(self.radius[best].detach()) * self.solver.scale
            self.log("train/radius", radius, on_step=True, on_epoch=False)
        line = self.solver.transform_line(self.problem, state)
        if line is not None:
            self.log("transform/a", line[0], on_step=True, on_epoch=False)
            self.log("transform/b", line[1], on_step=True, on_epoch=False)

    def on_train_epoch_end(self) -> None:
        """Record the epoch's objective and stop the fit once it has converged."""
        if self.current_epoch < self.solver.judged_from(self.convergence.patience):
            return
        value = self.solver.epoch_objective(self.problem, self.state())
        noise = lambda: self.solver.rounding_noise(self.problem, self.state())  # noqa: E731 (asked only when needed)
        slope = lambda: self.solver.stationarity(self.problem, self.state())  # noqa: E731
        if value is not None and self.convergence.update(value, float(self.stress1[self.best_restart()]), noise, slope):
            self.trainer.should_stop = True
        elif self.convergence.stalled_short and self.solver.polish(self.problem):
            # float32 steps stalled on a slope: go on in float64, from a fresh L-BFGS memory of float64 gradients
            if self.trainer.global_rank == 0:
                log.info(
                    f"epoch {self.current_epoch}: the objective stopped falling short of its optimum (a step along "
                    f"its gradient would gain {self.convergence.gain:.2g}): the fit goes on in float64"
                )
            self.convergence.quiet = 0
            for optimizer in self.trainer.optimizers:
                for param in optimizer.param_groups[0]["params"]:
                    optimizer.state.pop(param, None)

    def convergence_summary(self, log_dir: str | None = None) -> str:
        """The run's one summary line (logged at the end of fitting): stress-1, epochs, converged or not, where."""
        stress1 = float(self.stress1[self.best_restart()])
        where = f"; outputs in {log_dir}" if log_dir else ""
        line = self.convergence.summary(stress1, self.current_epoch, self.trainer.max_epochs)
        start = stages.summary(self.start_stages)
        return line + (f"; {start}" if start else "") + where

    def check_finite(self, value: torch.Tensor | None = None) -> None:
        """Stop with a plain message when the loss (or the coordinates) stopped being finite."""
        value = self.coords.detach() if value is None else value.detach()
        if not torch.isfinite(value).all():
            raise FitDivergedError(
                f"the fit diverged (non-finite loss or coordinates) by epoch {self.current_epoch}: the learning "
                "rate is probably too large for this optimiser; lower --optimizer.lr"
            )

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Add the batch's stress-1 sums."""
        self.val_stress1.update(*self.solver.batch_sums(self.problem, self.state(), batch))

    def on_validation_epoch_end(self) -> None:
        """Stress-1 of the best restart over every evaluation pair (summed over DDP ranks), and their number."""
        stress1 = self.val_stress1.compute().reshape(-1).float()
        self.val_stress1.reset()
        self.stress1 = stress1.to(self.device)
        # the values are already the same on every rank: sync_dist only tells Lightning so
        self.log("val/stress1", stress1[self.best_restart()], sync_dist=True)
        self.log("val/pairs", float(self.solver.evaluation_size), sync_dist=True)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The best restart's coordinates (normalised units), or new places' (input units) on the fitted map."""
        self.refresh_stress1()
        return self.solver.predict(self.problem, self.state(), self.fitted_map)

    def best_restart(self) -> int:
        """Index of the restart with the lowest stress-1 seen last (never a bootstrap replicate)."""
        s1 = torch.nan_to_num(self.stress1[: self.hparams.restarts], nan=float("inf"))
        return int(torch.argmin(s1))

    def refresh_stress1(self) -> None:
        """Recompute each restart's stress-1 at the current coordinates, once per step."""
        if self.solver is None or self._stress1_step == self.global_step:
            return
        self._stress1_step = self.global_step
        self.stress1 = self.solver.evaluate(self.problem, self.state())

    def place_residuals(self) -> torch.Tensor:
        """``(n,)``: each place's sum of ``w (dhat - d)^2`` in the best restart."""
        return self.solver.place_residuals(self.problem, self.state(), self.best_restart())

    def fitted_map(self) -> Any:
        """The result: a :class:`~citymap_lightning.result.FittedMap` of the best restart, in the input's units."""
        from citymap_lightning.result import fitted_map

        self.refresh_stress1()
        return fitted_map(self.problem, self.state(), self.solver.scale, self.place_residuals())

    def on_fit_start(self) -> None:
        """Refuse optimisers the algorithm cannot run; declare the hparams metrics for TensorBoard's HPARAMS tab.

        The tab's columns are what runs are compared by, in that order (the resolved loss and start,
        not ``auto``), and ``hp/stress1`` is the first metric.
        """
        self._fit_started = time.perf_counter()
        optimizers = self.trainer.optimizers
        self.solver.check_optimizers(self.problem, optimizers)
        step = optimizers[0] if optimizers else None  # whether the steps follow autograd's gradient: set once
        self._gradient = not isinstance(step, DirectStep) or step.needs_gradient(self.trainer.world_size)
        if self.logger is None:
            return
        hp = self.hparams
        params: dict[str, Any] = {"loss": hp.loss, "start": self.start}
        if optimizers:
            params["optimizer"] = type(optimizers[0]).__name__
            params["lr"] = float(optimizers[0].param_groups[0].get("lr", float("nan")))
        params.update(max_epochs=self.trainer.max_epochs, places=hp.num_places, transform=hp.transform,
                      geometry=hp.geometry)  # fmt: skip
        keys = ("hp/stress1", "hp/reference_stress1", "hp/wall_time_s", "hp/converged", "hp/epochs")
        self.logger.log_hyperparams(params, dict.fromkeys(keys, float("nan")))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the places' names, each restart's stress-1, and the scale and frame of the map.

        A checkpoint is then only ever used with the same places, and new places can be put on its map.
        """
        dm = self.trainer.datamodule if self._trainer is not None else None
        if dm is not None:
            checkpoint.update(checkpoints.metadata(dm.table, self.solver.scale))
        checkpoint["stress1"] = self.stress1.detach().cpu()
        checkpoint["convergence"] = self.convergence.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of other data in one line; for ``predict``, take its places in this input's order."""
        dm = self.trainer.datamodule if self._trainer is not None else None
        predicting = self._trainer is not None and self.trainer.state.fn == "predict"
        checkpoints.match_checkpoint(checkpoint, self, dm.table.names if dm is not None else None, reorder=predicting)
        if isinstance(checkpoint.get("convergence"), dict):
            self.convergence.load_state_dict(checkpoint["convergence"])
        stress1 = checkpoint.get("stress1")
        if isinstance(stress1, torch.Tensor) and stress1.shape == self.stress1.shape:
            self.stress1 = stress1.to(self.stress1)

    def on_train_end(self) -> None:
        """Log the final stress-1 and wall time as the hparams metrics; warn when the fit missed the optimum.

        The last step's ``train/*`` values are written here when Lightning's schedule skipped that step.
        """
        if not self._written and self.trainer.loggers and self.trainer.log_every_n_steps > 0:
            last = {k: v for k, v in self.trainer.callback_metrics.items() if k.startswith(("train/", "transform/"))}
            step = self.trainer.fit_loop.epoch_loop._batches_that_stepped - 1  # Lightning's own step numbering
            self.trainer._logger_connector.log_metrics(last, step=step)
            self._written = True
        self.refresh_stress1()
        stress1 = float(self.stress1[self.best_restart()])
        reference = self.reference_stress1()
        metrics = {"hp/stress1": stress1, "hp/reference_stress1": reference}
        metrics.update({"hp/converged": float(self.convergence.converged), "hp/epochs": float(self.current_epoch)})
        line = self.solver.transform_line(self.problem, self.state())
        if line is not None and self.trainer.global_rank == 0:
            log.info(f"interval transform: given = {line[0]:.4g} + {line[1]:.4g} x map distance (a is the fixed part, "
                     "in the input's unit)")  # fmt: skip
        message = ""
        # weighted stress trades raw stress-1 for the near distances: its optimum can lie above the
        # classical start's raw stress-1 (eurodist: 0.106 against 0.090), so the guard does not apply
        guarded = not losses.get(self.hparams.loss).local
        if guarded and stress1 > max(GUARD_RATIO * reference, reference + GUARD_MARGIN) and not self._beats_reference():
            fix = "--model.start classical" if self.start == "random" else "--model.start classical and more epochs"
            message = (
                f"the fit probably ended in a local minimum: stress-1 {stress1:.4g}, while the classical start "
                f"alone has {reference:.4g}; {fix} avoids it"
            )
            if self.trainer.global_rank == 0:
                log.warning(message)
        log_dir = self.trainer.log_dir if self.logger is not None else None  # a collective under DDP: every rank
        if self.trainer.global_rank == 0:
            line = self.convergence_summary(str(Path(log_dir).resolve()) if log_dir else None)
            (log.warning if self.convergence.short else log.info)(line)
        if self.logger is None:
            return
        metrics["hp/wall_time_s"] = time.perf_counter() - self._fit_started
        self.logger.log_metrics(metrics, step=self.global_step)
        experiment = getattr(self.logger, "experiment", None)
        if message and hasattr(experiment, "add_text"):
            experiment.add_text("diagnostics/quality", message, self.global_step)

    def _beats_reference(self) -> bool:
        """Whether the fit's own objective is below the reference map's (computed by :meth:`reference_stress1`).

        Stress-1 is not what the course objective minimises: on travel times (450 Brazilian places, each
        pair's distance times 1.1-1.6) its optimum had stress-1 0.176 against the classical start's 0.152,
        and the guard called that optimum a local minimum. A fit lower than the reference by its own
        measure is not one.
        """
        objective = self.solver.objective(self.problem, self.state())
        reference = self._reference_objective
        if objective is None or reference is None:
            return False
        return float(objective[self.best_restart()]) <= reference

    def reference_stress1(self) -> float:
        """Stress-1 of the cheap reference map for this table: classical MDS (chord MDS on a sphere, pivot at scale).

        The fit's own start when it was that start, else computed now; restart 0's coordinates are
        swapped for it while it is evaluated.
        """
        if self._reference is None:
            table, dim = self.trainer.datamodule.table, self.coords.shape[-1]
            sphere = self.geometry.curved
            if sphere:
                radius = self.hparams.radius
                self._reference = starts.sphere_start(table, None if radius == "learn" else radius)[0]
            else:
                rng = np.random.default_rng(0)
                method = "classical" if table.complete else "pivot"  # no n x n array for a sparse table
                self._reference = starts.initial_coords(method, table, dim, rng, scale=self.solver.scale)
            if self.problem.anchored is not None:
                target = self.problem.anchored[1].cpu().double().numpy()
                self._reference = anchoring.align_start(self._reference, table.anchors, target, sphere)
        saved, stress1 = self.coords.detach().clone(), self.stress1.clone()
        self.solver.invalidate()
        with torch.no_grad():
            self.coords[0].copy_(torch.from_numpy(self._reference))
            value = float(self.solver.evaluate(self.problem, self.state())[0])
            objective = self.solver.objective(self.problem, self.state())
            self._reference_objective = None if objective is None else float(objective[0])
            self.coords.copy_(saved)
        self.solver.invalidate()
        self.stress1 = stress1
        return value
