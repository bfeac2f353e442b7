"""What a solver owns: its batches, step rule, evaluation and default optimiser.

A solver is a plain object: each method takes the :class:`~citymap_lightning.problem.Problem` and
the maps' current :class:`~citymap_lightning.problem.MapState`, and :meth:`Solver.training_step`
returns a :class:`~citymap_lightning.problem.StepResult`. The LightningModule holds the coordinates,
calls the solver its data module chose, and does the logging; no solver imports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from citymap_lightning.metrics import Stress1
from citymap_lightning.problem import MapState, Problem, StepResult
from citymap_lightning.tables import DistanceTable

Batch = dict[str, torch.Tensor]
RankFn = Callable[[], tuple[int, int, int]]
"""Returns the current epoch, this process's rank and the number of ranks."""


def robust_norm(values: torch.Tensor) -> float:
    """The Euclidean norm of ``values`` without overflow or underflow, whatever their unit (1e-150 to 1e150)."""
    top = float(values.abs().max()) if values.numel() else 0.0
    if top == 0.0 or not np.isfinite(top):
        return top
    return top * float(torch.linalg.vector_norm(values / top))


class Solver:
    """Base of the solvers (one module each: :mod:`.full`, :mod:`.pairs`, :mod:`.new_places`).

    Attributes:
        table: the distance table being fitted.
        scale: distances are divided by it while fitting (results are multiplied back).
        evaluation_size: the number of pairs stress-1 is computed over.

    """

    name = ""
    fits_squared = True
    """Whether it fits losses on squared distances (the course objective)."""
    min_tolerance = 0.0
    """The smallest relative change per epoch this algorithm's objective can be judged by (``model.tol`` if larger)."""
    stalled = "raise --trainer.max_epochs"
    """What to do when a fit's objective stops falling short of a stationary point (the summary line says it)."""

    def __init__(self, table: DistanceTable) -> None:
        self.table = table
        self.scale = 1.0
        self.evaluation_size = table.n_known_pairs

    def describe(self) -> str:
        """One line on how the fit runs, for the run's log."""
        return self.name

    def setup(self, problem: Problem, anneal_epochs: int = 30, anneal_eps: float = 0.01) -> None:
        """Refuse problems this solver cannot fit, in one line; prepare what depends on them.

        ``anneal_epochs`` and ``anneal_eps`` are the step schedule of stochastic solvers.
        """

    def judged_from(self, patience: int) -> int:
        """The first epoch whose objective convergence is judged on (earlier ones are too noisy)."""
        return 0

    def configure_optimizer(self, problem: Problem, params: Any) -> torch.optim.Optimizer:
        """The solver's own optimiser of ``params`` (the coordinates), used unless ``--optimizer`` chooses another."""
        raise NotImplementedError

    def check_optimizers(self, problem: Problem, optimizers: list[torch.optim.Optimizer]) -> None:
        """Refuse optimisers that cannot run this solver (called when the fit starts)."""

    def train_loader(self, rank: RankFn) -> DataLoader:
        """The training batches of each epoch."""
        raise NotImplementedError

    def evaluation_loader(self) -> DataLoader:
        """The batches stress-1 is computed over (validation and prediction)."""
        return DataLoader(Batches(self.evaluation_batches), batch_size=None)

    def evaluation_batches(self) -> Iterator[Batch]:
        """The batches of :meth:`evaluation_loader`, on the CPU."""
        raise NotImplementedError

    def training_step(self, problem: Problem, state: MapState, batch: Batch) -> StepResult:
        """One step's loss (Lightning's automatic optimisation does the backward pass and the step), and its logs."""
        raise NotImplementedError

    def batch_sums(self, problem: Problem, state: MapState, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Stress-1's two sums on one evaluation batch: ``sum w (dhat - d)^2`` per restart and ``sum w d^2``."""
        raise NotImplementedError

    def place_residuals(self, problem: Problem, state: MapState, restart: int) -> torch.Tensor:
        """``(n,)``: each place's sum of ``w (dhat - d)^2`` over its known pairs, in one restart."""
        raise NotImplementedError

    def evaluate(self, problem: Problem, state: MapState) -> torch.Tensor:
        """Stress-1 of every restart over the evaluation batches, in this process alone."""
        metric = Stress1(state.coords.shape[0], sync_on_compute=False)
        with torch.no_grad():
            for batch in self.evaluation_batches():
                batch = {k: v.to(state.device) for k, v in batch.items()}
                metric.update(*self.batch_sums(problem, state, batch))
        return metric.compute().reshape(-1).float().to(state.device)

    def epoch_objective(self, problem: Problem, state: MapState) -> float | None:
        """The objective at the end of an epoch, that convergence is judged on; None while it cannot be judged."""
        return None

    def objective(self, problem: Problem, state: MapState) -> torch.Tensor | None:
        """``(maps,)`` each map's loss over every known pair at ``state`` (None where not computed whole)."""
        return None

    def whole_objective(self, problem: Problem, state: MapState) -> Iterator[torch.Tensor]:
        """The best restart's loss over every known pair, in parts whose sum it is, each with autograd to ``state``.

        Nothing where the solver's objective is not a fixed sum it can compute whole (pair batches over
        random partners). Parts keep the memory of one part's graph (a gradient is added part by part).
        """
        return iter(())

    def polish(self, problem: Problem) -> bool:
        """Evaluate more precisely from now on, where the fit stalled short of its optimum; False: nothing changes."""
        return False

    def stationarity(self, problem: Problem, state: MapState) -> float | None:
        """What one exact step along the whole objective's gradient would still gain, relative to the objective.

        With ``g`` the gradient of the objective ``f`` over every known pair (float64, anchored places
        held) and ``g'Hg`` its curvature along ``g`` (a difference of gradients), a line search along
        ``-g`` lowers ``f`` by ``(g'g)^2 / (2 g'Hg)`` on its quadratic model: that over ``f``. It is 0
        at a stationary point (a minimum, or a fold) whatever the unit or the number of places. The
        course's 36 cities at their optimum give 6e-7; pair batches from a random start on 5,000
        road-shaped places, with stress-1 still falling, gave 0.7 and more.

        None where it is not judged: no whole objective (pair batches over random partners), the sphere
        (whose radius is fitted beside the coordinates), or a fitted transform (whose disparities move
        with the map).
        """
        if problem.curved or problem.transform != "ratio":
            return None
        coords = state.coords.detach().double()
        value, gradient = self._whole_gradient(problem, state, coords)
        if gradient is None or value == 0.0:
            return None if gradient is None else 0.0
        if not (math.isfinite(value) and torch.isfinite(gradient).all()):
            return math.inf
        g = torch.zeros_like(gradient)
        g[state.best] = gradient[state.best]
        if problem.anchored is not None:
            g[:, problem.anchored[0].to(g.device)] = 0.0
        size, slope = float(torch.linalg.vector_norm(coords[state.best] - coords[state.best].mean(0))), float(g.norm())
        if slope == 0.0:
            return 0.0
        eps = 1e-6 * size / slope  # moves the map by a millionth of its size
        bent = self._whole_gradient(problem, state, coords + eps * g)[1]
        curvature = float((g * (bent - gradient)).sum()) / eps
        return slope**4 / (2 * curvature) / abs(value) if curvature > 0 else math.inf

    def _whole_gradient(
        self, problem: Problem, state: MapState, coords: torch.Tensor
    ) -> tuple[float, torch.Tensor | None]:
        """The whole objective at ``coords`` and its gradient (None where there is no whole objective)."""
        x = coords.detach().clone().requires_grad_(True)
        value, gradient = 0.0, None
        with torch.enable_grad():
            for part in self.whole_objective(problem, replace(state, coords=x)):
                (g,) = torch.autograd.grad(part, x)
                value, gradient = value + float(part.detach()), g if gradient is None else gradient + g
        return value, gradient

    def rounding_noise(self, problem: Problem, state: MapState) -> float:
        """The objective's relative change when the coordinates move by their own rounding alone (0: not known).

        Every coordinate is nudged by half a unit in its last place (seeded signs) and the best restart's
        :meth:`objective` compared: a change that small is what the coordinates' precision can resolve,
        not progress. Weighted stress on 500 US places stood at its optimum (1.0000x the reference) and
        changed by about 1e-6 an epoch as float32 coordinates were rounded after each step.
        """
        now = self.objective(problem, state)
        if now is None:
            return 0.0
        coords = state.coords.detach()
        signs = torch.randint(0, 2, coords.shape, generator=torch.Generator().manual_seed(0)).to(coords) * 2 - 1
        step = torch.finfo(coords.dtype).eps / 2 * coords.abs()  # half a unit in the last place: rounding's most
        nudged = self.objective(problem, replace(state, coords=coords + signs * step))
        return float((nudged[state.best] - now[state.best]).abs() / now[state.best].abs().clamp_min(1e-300))

    def transform_line(self, problem: Problem, state: MapState) -> tuple[float, float] | None:
        """For an ``interval`` transform: ``a, b`` of ``given = a + b * map distance`` in the input's unit."""
        return None

    def disparity_curve(self, problem: Problem, state: MapState) -> tuple[np.ndarray, np.ndarray] | None:
        """The fitted transform (given value against disparity, sorted, in the input's unit); None for ratio."""
        return None

    def predict(self, problem: Problem, state: MapState, fitted_map: Callable[[], Any]) -> torch.Tensor:
        """What ``predict`` returns: the best restart's coordinates (normalised units).

        ``fitted_map`` makes the run's :class:`~citymap_lightning.result.FittedMap` (for placing new places on it).
        """
        return state.coords[state.best].detach()

    def invalidate(self) -> None:
        """Forget what was computed for the current coordinates (they are about to change outside a step)."""


class DirectStep(torch.optim.Optimizer):
    """An optimiser whose step is the fitting algorithm's own rule.

    It runs the closure (the training step and its backward pass, for the loss and the logs), then
    :meth:`move` s the coordinates.
    """

    def __init__(self, params: Any) -> None:
        super().__init__(params, {"lr": 1.0})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.move()
        return loss

    def move(self) -> None:
        """Move the parameters (no gradient is recorded)."""
        raise NotImplementedError

    def needs_gradient(self, world_size: int) -> bool:
        """Whether :meth:`move` follows the loss's autograd gradient with ``world_size`` processes.

        When it does not, the training step computes the loss without autograd (:func:`without_gradient`).
        """
        return True


def without_gradient(loss: torch.Tensor) -> torch.Tensor:
    """``loss`` as a leaf that requires a gradient: Lightning's backward pass over it costs nothing."""
    return loss.detach().requires_grad_()


class Batches(IterableDataset):
    """An iterable dataset over the batches a function makes (called anew for each pass)."""

    def __init__(self, make: Callable[[], Iterator[Batch]]) -> None:
        super().__init__()
        self.make = make

    def __iter__(self) -> Iterator[Batch]:
        return self.make()
