"""Every known pair in every step: one fixed batch, so any optimiser works (L-BFGS by default).

The batch is the table's own full form: the ``n x n`` matrix of a dense or latitude/longitude table
(the loss through ``torch.cdist`` and autograd up to ``losses.CDIST_LIMIT`` places, above that the
fused blockwise loss with its analytic gradient), or the list of known pairs of a sparse table
(memory O(pairs), whatever the number of places). The evaluation is chosen once, at set-up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from citymap_lightning import losses, metrics, transforms
from citymap_lightning.errors import ConfigError
from citymap_lightning.problem import MapState, Problem, StepResult
from citymap_lightning.solvers.base import Batch, RankFn, Solver, robust_norm, without_gradient
from citymap_lightning.solvers.guttman import GuttmanStep
from citymap_lightning.tables import DistanceTable

log = logging.getLogger("citymap_lightning")


GUTTMAN_LIMIT = 2000
"""Up to this many places weighted stress in one batch is fitted by Guttman transforms (``FullBatch.by_guttman``)."""

BOOTSTRAP_LIMIT = 1000
"""Bootstrap replicates hold one ``n x n`` weight matrix each: up to this many places."""

GUTTMAN_ITERATIONS, GUTTMAN_ITERATIONS_SPARSE = 10, 50
"""Guttman transforms per epoch: a table with missing pairs converges far more slowly (250 Japanese
places, 7 known pairs each: 600 transforms stood 8% above the optimum, 3,000 within 1.3e-4)."""


Terms = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""Three tensors per restart: a loss or a sum of residuals, and the sums of stress-1."""


class ScaledLBFGS(torch.optim.LBFGS):
    """L-BFGS on the objective times a constant ``c``, fixed at the first evaluation to make the gradient's L1 norm 1.

    L-BFGS's iterates do not change with the objective's scale (its first step is ``-g / |g|_1``
    either way), but float32's range does: weighted stress gives two places 0.3 km apart on a map
    of 3,000 km a weight 10^8 times the typical one, and the strong-Wolfe line search's cubic
    interpolation squared differences of 10^20 and overflowed to NaN on the first step. Scaled,
    the values it works with stay near 1. ``c`` is at most 1: objectives with small gradients are
    left as they are.
    """

    def step(self, closure: Any) -> Any:  # type: ignore[override]
        params = self.param_groups[0]["params"]

        def scaled() -> torch.Tensor:
            with torch.enable_grad():
                loss = closure()
            scale = self.state.get("objective_scale")
            if scale is None:
                total = sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)
                scale = 1.0 / total if np.isfinite(total) and total > 1.0 else 1.0
                self.state["objective_scale"] = scale
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(scale)
            return loss * scale

        return super().step(scaled)


class FullBatch(Solver):
    """One batch holding every known pair, normalised by the Frobenius norm of the distances (the course's)."""

    name = "full"

    def __init__(self, table: DistanceTable) -> None:
        super().__init__(table)
        batch = table.full_batch()
        d = batch["distances"]
        self.pairs = "i" in batch
        self._terms = self._pair_terms if self.pairs else self._matrix_terms
        self._objective: torch.Tensor | None = None  # the best restart's loss at the last step's evaluation
        self.transform = "ratio"
        self.bootstrap = 0
        self.precise = False  # float64 evaluations once float32 steps stall (polish)
        # the course's normalisation: the Frobenius norm of the symmetric matrix (each pair twice)
        self.scale = robust_norm(d) * (2**0.5 if self.pairs else 1.0)
        normalised = (d / self.scale).float()
        self.batch: Batch = {**batch, "distances": normalised}
        w = batch.get("weights")
        if w is None:  # a complete unweighted matrix: the sum of d^2 is 1 by the choice of scale
            self.batch["norm"] = torch.tensor(1.0, dtype=torch.float64)
        else:
            self.batch["weights"] = w.float()
            self.batch["norm"] = (normalised.double().square() * w).sum()

    def describe(self) -> str:
        form = f"all {self.table.n_known_pairs} known pairs" if self.pairs else "the full matrix"
        return f"one batch of {form}"

    def setup(self, problem: Problem, anneal_epochs: int = 30, anneal_eps: float = 0.01) -> None:
        """Set up what the problem's transform and bootstrap need.

        With an interval or ordinal transform, the batch becomes the list of known pairs (their
        disparities are refitted to the whole map at every step); with bootstrap replicates, it holds
        one weight matrix per map.
        """
        transform = problem.transform
        if problem.bootstrap:
            self._setup_bootstrap(problem)
        if transform == self.transform:
            return
        self.transform = transform
        i, j, d, w = self.table.known_values()
        normalised = torch.from_numpy(d / self.scale).float()
        self.batch = {
            "i": torch.from_numpy(i), "j": torch.from_numpy(j), "distances": normalised,
            "weights": torch.from_numpy(w).float(), "norm": torch.tensor(1.0, dtype=torch.float64),
        }  # fmt: skip
        self.pairs, self._terms = True, self._transform_terms

    def _setup_bootstrap(self, problem: Problem) -> None:
        """``bootstrap`` replicates beside the ``restarts`` maps: each resamples the known pairs with replacement.

        A replicate's weights are the given ones times how often each pair was drawn (the same draw for
        both halves of the matrix); the maps are fitted by Guttman transforms (:mod:`.guttman`), which
        keep them independent.
        """
        refused = {
            "loss": problem.loss.name if problem.loss.squared else None,
            "geometry": problem.geometry.name if problem.geometry.name != "plane" else None,
            "dim": problem.geometry.dim if problem.geometry.dim != 2 else None,
            "transform": problem.transform if problem.transform != "ratio" else None,
            "anchors": self.table.anchors.source if self.table.anchors is not None else None,
        }
        refused = {k: v for k, v in refused.items() if v is not None}
        if refused or self.table.n > BOOTSTRAP_LIMIT:
            settings = ", ".join(f"{k} {v!r}" for k, v in refused.items()) or f"{self.table.n} places"
            raise ConfigError(
                f"bootstrap fits replicates of a 2-D plane by raw or weighted stress, as n x n matrices of up to "
                f"{BOOTSTRAP_LIMIT} places: not {settings}"
            )
        if self.bootstrap == problem.bootstrap:
            return
        self.bootstrap, maps = problem.bootstrap, problem.maps
        n = self.table.n
        d, w = self._dense_table()
        i, j = self.table.known_pairs()
        rng = np.random.default_rng(0)
        weights = w.repeat(maps, 1, 1)
        for k in range(problem.restarts, maps):
            counts = torch.from_numpy(np.bincount(rng.integers(0, len(i), len(i)), minlength=len(i)).astype(float))
            drawn = torch.zeros(n, n, dtype=torch.float64)
            drawn[i, j] = drawn[j, i] = counts
            weights[k] = w * drawn
        self.batch = {"distances": d.float(), "weights": weights.float(), "norm": torch.tensor(1.0)}
        self.pairs, self._terms = False, self._matrix_terms

    def configure_optimizer(self, problem: Problem, params: Any) -> torch.optim.Optimizer:
        """Guttman transforms for bootstrap replicates and for weighted stress (``by_guttman``); else L-BFGS.

        L-BFGS (``ScaledLBFGS``) has a strong-Wolfe line search and no early stopping tolerances.

        The course objective ends near 1.2e-8 in normalised units, below which torch's default
        tolerances (1e-7 on the gradient, 1e-9 on the change) stop some seeds early. With several
        restarts the default is Adam (lr 0.1): one L-BFGS line search would couple the restarts.
        """
        if self.bootstrap:
            d, w = self.batch["distances"].double(), self.batch["weights"].double()
            w = problem.loss.pair_weights(d, w)
            return GuttmanStep(params, d, w)
        if self.by_guttman(problem):  # the matrices of the known pairs, whatever the batch's form
            d, w = self._dense_table()
            w = problem.loss.pair_weights(d, w)
            fixed = problem.anchored[0] if problem.anchored is not None else None
            iterations = GUTTMAN_ITERATIONS if self.table.complete else GUTTMAN_ITERATIONS_SPARSE
            maps = problem.maps
            return GuttmanStep(params, d, w.expand(maps, -1, -1), iterations=iterations, fixed=fixed)
        if problem.restarts > 1:
            return torch.optim.Adam(params, lr=0.1)
        if problem.loss.local and self.table.n > GUTTMAN_LIMIT:
            log.warning(
                f"{problem.loss.name} of {self.table.n} places in one batch is fitted by L-BFGS, which can stop well "
                f"short of its optimum on 1/d^2 weights (Guttman transforms reach it up to {GUTTMAN_LIMIT} places): "
                "fit by pair batches (--data.full_batch_limit 0) or check the map's stress over more epochs"
            )
        return ScaledLBFGS(
            params,
            lr=1.0,
            max_iter=5,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )

    def _dense_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(n, n)`` normalised distances (0 where unknown) and weights (0 where unknown), float64."""
        d = torch.from_numpy(np.nan_to_num(self.table.matrix(), nan=0.0) / self.scale)
        return d, torch.from_numpy(self.table.weight_matrix())

    def by_guttman(self, problem: Problem) -> bool:
        """Whether the map is fitted by SMACOF's Guttman transforms rather than L-BFGS: weighted stress in one batch.

        Weights ``1 / d^2`` span 10^7 and more between a region's nearest and farthest places, and
        L-BFGS stalls on them: on 300 US places it stopped at weighted stress 0.113 where Guttman
        transforms (each the exact minimum of a majorising function, preconditioned by the weights)
        reach 0.1007 in 200 iterations, and 60 epochs of 10 give 600. Anchors are held by solving for
        the other places only. Not with a transform, the sphere, or more than ``GUTTMAN_LIMIT`` places
        (the weighted Laplacian's ``n x n`` inverse). Missing pairs have weight 0: the known pairs must join every
        place (a table whose pairs fall apart into groups is refused before this).
        """
        return (
            problem.loss.local and not problem.curved
            and self.transform == "ratio" and self.table.n <= GUTTMAN_LIMIT
        )  # fmt: skip

    def check_optimizers(self, problem: Problem, optimizers: list[torch.optim.Optimizer]) -> None:
        restarts = problem.maps
        if restarts > 1 and any(isinstance(o, torch.optim.LBFGS) for o in optimizers):
            raise ConfigError(
                f"restarts={restarts} needs a first-order optimiser: L-BFGS's single line search "
                "would couple the restarts; use e.g. --optimizer Adam --optimizer.lr 0.1 --trainer.max_epochs 400"
            )

    def train_loader(self, rank: RankFn) -> DataLoader:
        """The one batch, every epoch."""
        return self.evaluation_loader()

    def evaluation_loader(self) -> DataLoader:
        return DataLoader([self.batch], batch_size=None)

    def evaluation_batches(self) -> Iterator[Batch]:
        yield self.batch

    def _inputs(self, problem: Problem, state: MapState, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        dtype = torch.float64 if problem.curved else state.coords.dtype
        w = batch.get("weights")
        return batch["distances"].to(dtype), None if w is None else w.to(dtype)

    def _matrix_terms(self, problem: Problem, state: MapState, batch: Batch) -> Terms:
        """Loss, ``sum w (dhat - d)^2`` and ``sum w d^2`` per restart over the matrix (each pair counted twice)."""
        d, w = self._inputs(problem, state, batch)
        if not problem.curved and d.shape[0] > losses.CDIST_LIMIT and (w is None or w.dim() == 2):
            return (*losses.fused_loss(state.coords, d, w, problem.loss.name), batch["norm"])
        fitted = problem.distances(state)
        loss = losses.loss_fn(problem.loss.name)(fitted, d, w)
        residual, norm = metrics.stress1_sums(fitted.detach(), d, w, dims=(-1, -2))
        return loss, residual, norm if w is not None and w.dim() == 3 else batch["norm"]

    def _pair_terms(self, problem: Problem, state: MapState, batch: Batch) -> Terms:
        """Loss, ``sum w (dhat - d)^2`` and ``sum w d^2`` per restart over the known pairs."""
        d, w = self._inputs(problem, state, batch)
        fitted = problem.pair_distances(state, batch["i"], batch["j"])
        loss = losses.terms(problem.loss.name, fitted, d, w).sum(-1)
        return loss, metrics.stress1_sums(fitted.detach(), d, w, dims=-1)[0], batch["norm"]

    def _transform_inputs(self, problem: Problem, state: MapState, batch: Batch) -> Terms:
        """Map distances, given values and the loss's weights of the known pairs (``w / d^2`` for weighted stress)."""
        d, w = self._inputs(problem, state, batch)
        fitted = problem.pair_distances(state, batch["i"], batch["j"]).double()  # the line's sums need double precision
        w = problem.loss.pair_weights(d, w)
        return fitted, d.double(), w.double()

    def _transform_terms(self, problem: Problem, state: MapState, batch: Batch) -> Terms:
        """Stress-1 squared against the disparities (the loss), and its two sums, per restart."""
        return transforms.stress_terms(self.transform, *self._transform_inputs(problem, state, batch))

    def batch_sums(self, problem: Problem, state: MapState, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self._terms(problem, state, batch)[1:]

    def epoch_objective(self, problem: Problem, state: MapState) -> float | None:
        """The best restart's loss at the last evaluation of the epoch's step."""
        return None if self._objective is None else float(self._objective)

    def objective(self, problem: Problem, state: MapState) -> torch.Tensor | None:
        batch = {k: v.to(state.device) for k, v in self.batch.items()}
        if self.precise:
            state = replace(state, coords=state.coords.double())
        with torch.no_grad():
            return self._terms(problem, state, batch)[0].double()

    def whole_objective(self, problem: Problem, state: MapState) -> Iterator[torch.Tensor]:
        """The one batch's loss of the best restart."""
        batch = {k: v.to(state.device) for k, v in self.batch.items()}
        yield self._terms(problem, state, batch)[0][state.best]

    def transform_line(self, problem: Problem, state: MapState) -> tuple[float, float] | None:
        """For ``interval``: ``a`` and ``b`` of ``given = a + b * map distance`` in the input's unit (best restart)."""
        if self.transform != "interval":
            return None
        batch = {k: v.to(state.device) for k, v in self.batch.items()}
        with torch.no_grad():
            fitted, d, w = self._transform_inputs(problem, state, batch)
            a, b = transforms.interval_line(fitted[state.best][None], d, w)
        return float(self.scale * a[0]), float(b[0])

    def disparity_curve(self, problem: Problem, state: MapState) -> tuple[Any, Any] | None:
        """The fitted transform, given value against disparity (both in the input's unit), sorted; None for ratio."""
        if self.transform == "ratio":
            return None
        batch = {k: v.to(state.device) for k, v in self.batch.items()}
        with torch.no_grad():
            fitted, d, w = self._transform_inputs(problem, state, batch)
            best = state.best
            target = transforms.disparities(self.transform, fitted[best : best + 1], d, w)[0]
        order = torch.argsort(d)
        return (d[order] * self.scale).cpu().numpy(), (target[order] * self.scale).cpu().numpy()

    def polish(self, problem: Problem) -> bool:
        """Evaluate the objective in float64 from now on (the coordinates stay float32); False where nothing changes.

        Float32 steps can stop short of the optimum of a nearly exact fit: its residuals are about 1e-4
        of the distances, so rounding a squared distance to float32 (6e-8 of it) is 6e-4 of its
        residual, and near the optimum that noise outweighs the gradient along the optimum's flat valley.
        Names-only matrices of 250-2,000 Japanese and Mexican places from the classical start stopped
        moving 1e-4 to 1e-3 above the course objective's float64 optimum while a float64 gradient step
        still gained more than :data:`~citymap_lightning.convergence.STATIONARY`; evaluated in float64
        they went on to within 3e-6 of it. A float64 evaluation costs 2 to 3 times a float32 one, so
        the fit changes over only once its float32 steps have stalled (:meth:`CityMap.on_train_epoch_end`).
        Not for Guttman transforms (float64 already), bootstrap replicates, or the sphere (float64 already).
        """
        if self.precise or problem.curved or self.bootstrap or self.by_guttman(problem):
            return False
        self.precise = True
        return True

    def training_step(self, problem: Problem, state: MapState, batch: Batch) -> StepResult:
        """Sum of the restarts' losses (they are independent); each map's stress-1 and loss when logged.

        Under a step that needs no gradient (Guttman transforms) the loss is computed without autograd.
        Once :meth:`polish` has been called, the loss is computed in float64 from the float32 coordinates.
        """
        if self.precise:
            state = replace(state, coords=state.coords.double())
        with torch.set_grad_enabled(state.gradient and torch.is_grad_enabled()):
            loss, residual, norm = self._terms(problem, state, batch)
        self._objective = loss.detach()[: problem.restarts].min()
        result = StepResult(loss.sum() if state.gradient else without_gradient(loss.sum()))
        if state.logging:
            result.stress1 = metrics.from_sums(residual.detach().double(), norm.double()).float()
            result.logs["train/loss"] = loss.detach()
        return result

    def place_residuals(self, problem: Problem, state: MapState, restart: int) -> torch.Tensor:
        batch = {k: v.to(state.device) for k, v in self.batch.items()}
        d, w = self._inputs(problem, state, batch)
        with torch.no_grad():
            if self.pairs:
                i, j = batch["i"], batch["j"]
                if self.transform != "ratio":
                    fitted, given, weights = self._transform_inputs(problem, state, batch)
                    target = transforms.disparities(self.transform, fitted[restart : restart + 1], given, weights)
                    terms = weights * (fitted[restart] - target[0]).square()
                else:
                    terms = (problem.pair_distances(state, i, j)[restart] - d).square()
                    terms = terms if w is None else w * terms
                places = torch.zeros(self.table.n, dtype=terms.dtype, device=terms.device)
                return places.index_add_(0, i, terms).index_add_(0, j, terms)
            coords = state.coords[restart : restart + 1].detach()
            if w is not None and w.dim() == 3:  # one weight matrix per map (bootstrap)
                w = w[restart]
            if not problem.curved:
                return losses.fused_city_residuals(coords, d, w)[0]
            fitted = problem.distances(state)[restart]
            return metrics.stress1_sums(fitted, d, w, dims=-1)[0]
