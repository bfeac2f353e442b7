"""Batches of pairs with s_gd2's annealed, capped steps: memory O(n + pairs), for inputs of any size.

Each epoch pairs every place of a complete table with its nearest neighbours and random partners
(new each epoch), or takes every known pair of an incomplete one; the pairs are shuffled and cut
into batches. The step is :class:`PairStep`, an optimiser of its own: each pair pulls both its
places towards the given distance by ``mu = min(w eta, 1)`` times the residual, ``eta`` decaying
exponentially from ``1 / w_min`` to ``eps / w_max`` (the loss's weights over every known pair,
computed once at set-up), and each place's step is divided by the sum of its pairs' ``mu`` when
that exceeds 1, since the pairs of a batch move together.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from citymap_lightning import geometry as geo
from citymap_lightning import losses, metrics, sampling
from citymap_lightning.errors import ConfigError
from citymap_lightning.problem import MapState, Problem, StepResult
from citymap_lightning.solvers.base import Batch, Batches, DirectStep, RankFn, Solver, robust_norm, without_gradient
from citymap_lightning.tables import BLOCK, DistanceTable, PlacesTable


class PairStep(DirectStep):
    """s_gd2's step for a batch of pairs that move together: ``x -= grad / max(1, sum of the place's mu)``.

    Under DDP the gradient comes from the loss ``sum mu/2 (dhat - d)^2`` of
    :meth:`PairBatches.training_step` through autograd (DDP adds the ranks' gradients), which also sets
    :attr:`caps`, each place's sum of ``mu`` over the batch (over all ranks). In one process the step
    sets :attr:`moves` instead: the batch's pairs, their differences and pulls, from which the step
    computes the same gradient analytically, so that a step costs O(pairs), not O(places) (a dense
    gradient, its zeroing and a whole-map update cost about as much as the batch itself at a million places).
    """

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.caps: torch.Tensor | None = None
        self.moves: tuple[torch.Tensor, ...] | None = None
        self._scratch: tuple[torch.Tensor, torch.Tensor] | None = None  # per-place sums, zero between steps

    def needs_gradient(self, world_size: int) -> bool:
        """Under DDP only (which adds the ranks' gradients); in one process the step sets :attr:`moves`."""
        return world_size > 1

    def move(self) -> None:
        """Move each place by its gradient, divided by its cap (only the batch's places, when :attr:`moves` says)."""
        if self.moves is not None:
            x = self.param_groups[0]["params"][0][0]
            if self._scratch is None or self._scratch[0].numel() != x.numel():
                self._scratch = (torch.zeros(x.numel(), dtype=x.dtype, device=x.device),
                                 torch.zeros(x.shape[0], dtype=x.dtype, device=x.device))  # fmt: skip
            _move_pairs(x, *self.moves, *self._scratch)
            self.moves = None
            return
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                cap = 1.0 if self.caps is None else self.caps.clamp_min(1.0).reshape(-1, 1).to(p.dtype)
                p[0].sub_(p.grad[0] / cap)
        self.caps = None


BATCH_SIZE = 16384
"""Pairs a step takes by default, up to ``8 * BATCH_SIZE`` places (see :func:`auto_batch_size`)."""


def auto_batch_size(n: int) -> int:
    """The default pairs a step: :data:`BATCH_SIZE`, or ``n / 8`` above 131,072 places.

    A step has a fixed cost of about 3 ms on CPU (Lightning's loop, Python, the small operations),
    which at a million places and 16,384 pairs a step (44,000 steps in 30 epochs) was a third of the
    fit: 395 s, against 301 s at 65,536 pairs a step and the same stress-1 (0.00116). At ``n / 8`` a
    place is in a step's pairs with probability about 1/4, so that the pairs of a step still mostly
    move different places (their shared places' steps are capped, as in s_gd2).
    """
    return max(BATCH_SIZE, n // 8)


class PairBatches(Solver):
    """Batches of pairs; stress-1 over every pair up to ``exact_limit`` places, else on a fixed sample.

    Distances are divided by their root mean square over (a sample of) the known pairs.
    See :class:`~citymap_lightning.datamodule.DistanceDataModule` for the arguments.
    """

    name = "pairs"
    fits_squared = False
    min_tolerance = 2e-3
    """Stress-1 under stochastic steps at the annealing's last step size changes by noise of up to 1.3e-3 an
    epoch (300 European places, 15 epochs past the annealing, while it fell by 0.25% in all): the step
    schedule ends the descent, and this tells a fit still falling from one that has settled."""

    stalled = (
        "pair batches' steps stop short of the minimum: fit every known pair at once (the default for a pair list "
        "of up to 2^25 known pairs; leave --data.full_batch_limit above 0)"
    )

    def __init__(
        self,
        table: DistanceTable,
        neighbours: int = 8,
        random_pairs: int = 16,
        batch_size: int | None = None,
        min_steps: int = 16,
        exact_limit: int = 20000,
        sample_pairs: int = 1000000,
        seed: int = 0,
    ) -> None:
        super().__init__(table)
        self.neighbours, self.random_pairs = neighbours, random_pairs
        self.batch_size = batch_size if batch_size is not None else auto_batch_size(table.n)
        self.min_steps, self.seed = max(1, min_steps), seed
        complete = table.complete
        # an incomplete table's epochs take its known pairs with their values, in each epoch's order
        self._known_values = None if complete else table.known_values()
        self.known_pairs = None if complete else self._known_values[:2]
        self.neighbour_index = table.nearest(neighbours) if complete else None
        exact = table.n <= exact_limit or not complete
        self._evaluation = self.known_pairs if exact else sampling.evaluation_pairs(table.n, sample_pairs)
        sample = self._evaluation or sampling.evaluation_pairs(table.n, min(sample_pairs, 100000))
        d = table.pair_distances(sample[0][:100000], sample[1][:100000])
        self.scale = robust_norm(torch.from_numpy(d)) / np.sqrt(len(d))  # the root mean square
        self.evaluation_size = table.n_known_pairs if exact else len(self._evaluation[0])
        self.exact = exact
        self.eta_range, self._range_loss = (1.0, 1.0), ""
        self.anneal_epochs, self.anneal_eps = 30, 0.01
        self._evaluated: tuple[int, torch.Tensor, torch.Tensor] | None = None
        self.sample_pairs = sample_pairs
        self.transform, self._targets = "ratio", _Targets()
        self._steps: PairStep | None = None

    def describe(self) -> str:
        what = "every known pair" if self.exact else f"a fixed sample of {self.evaluation_size} pairs"
        return f"pair batches of up to {self.batch_size}; stress-1 is computed over {what}"

    def setup(self, problem: Problem, anneal_epochs: int = 30, anneal_eps: float = 0.01) -> None:
        refused = {
            "loss": problem.loss.name if problem.loss.squared else None,
            "geometry": problem.geometry.name if problem.curved else None,
            "restarts": problem.restarts if problem.restarts > 1 else None,
            "bootstrap": problem.bootstrap or None,
        }
        transform = problem.transform
        if transform == "ordinal" and isinstance(self.table, PlacesTable):
            raise ConfigError(
                f"{self.table.n} places by latitude/longitude: transform 'ordinal' orders given values (a matrix or "
                "a pair list); great-circle distances are exact: use the default ratio transform"
            )
        refused = {k: v for k, v in refused.items() if v is not None}
        if refused:
            settings = ", ".join(f"{k} {v!r}" for k, v in refused.items())
            fix = "use --config configs/large.yaml (or --model.loss stress), or " if "loss" in refused else ""
            raise ConfigError(
                f"{self.table.n} places are fitted by pair batches (above data.full_batch_limit), which take one flat "
                f"map with a stress-type loss, not {settings}: {fix}raise --data.full_batch_limit to fit "
                "every pair at once"
            )
        if self._range_loss != problem.loss.name:  # a checked problem may be set up again: computed once
            self.eta_range, self._range_loss = self.table.weight_range(problem.loss.name), problem.loss.name
        self.anneal_epochs, self.anneal_eps = anneal_epochs, anneal_eps
        if transform != "ratio" and self._evaluation is None:  # a transform is fitted on pairs, not rows of the matrix
            n, total = self.table.n, self.table.n_pairs
            self._evaluation = (
                np.triu_indices(n, 1) if total <= self.sample_pairs else sampling.evaluation_pairs(n, self.sample_pairs)
            )
            self.exact, self.evaluation_size = total <= self.sample_pairs, len(self._evaluation[0])
        self.transform = transform

    def configure_optimizer(self, problem: Problem, params: Any) -> torch.optim.Optimizer:
        self._steps = PairStep(params)
        return self._steps

    def check_optimizers(self, problem: Problem, optimizers: list[torch.optim.Optimizer]) -> None:
        for optimizer in optimizers:
            if not isinstance(optimizer, PairStep):
                raise ConfigError(
                    f"pair batches take their own step (s_gd2's annealed, capped step), which --optimizer "
                    f"{type(optimizer).__name__} would replace: leave the optimiser out, or fit every pair at once "
                    "with --data.full_batch_limit above the number of places"
                )

    def eta(self, epoch: int) -> float:
        """The annealed step size of an epoch: ``1 / w_min`` down to ``eps / w_max`` over ``anneal_epochs``."""
        low, high = self.eta_range
        top, bottom = 1.0 / low, self.anneal_eps / high
        fraction = min(epoch, self.anneal_epochs - 1) / max(self.anneal_epochs - 1, 1)
        return top * (bottom / top) ** fraction

    def _pairs(self, i: np.ndarray, j: np.ndarray, d: np.ndarray | None = None, w: np.ndarray | None = None) -> Batch:
        """A batch: the pairs, their normalised distances and their weights (looked up unless given)."""
        return {
            "i": torch.from_numpy(np.ascontiguousarray(i)),
            "j": torch.from_numpy(np.ascontiguousarray(j)),
            "distances": torch.from_numpy((self.table.pair_distances(i, j) if d is None else d) / self.scale).float(),
            "weights": torch.from_numpy(self.table.pair_weights(i, j) if w is None else w).float(),
        }

    def train_batches(self, rank: RankFn) -> Iterator[Batch]:
        """The batches of the current epoch for this rank (the same number on every rank).

        An incomplete table's epoch is its known pairs, reordered: their distances and weights are
        taken in the same order, not looked up pair by pair (a sparse-matrix lookup of each batch was
        13% of a 200,000-place pair list's fit).
        """
        epoch, rank_index, world_size = rank()
        d = w = None
        if self.known_pairs is None:
            i, j = sampling.epoch_pairs(self.table.n, self.neighbour_index, self.random_pairs, self.seed, epoch)
            steps = max(self.min_steps, math.ceil(len(i) / self.batch_size))
            i, j = sampling.shard(i, j, rank_index, world_size)
        else:
            known_i, known_j, known_d, known_w = self._known_values
            steps = max(self.min_steps, math.ceil(len(known_i) / self.batch_size))
            order = sampling.epoch_order(len(known_i), self.seed, epoch)[rank_index::world_size]  # this rank's shard
            i, j, d, w = known_i[order], known_j[order], known_d[order], known_w[order]
        sizes = np.full(steps, len(i) // steps)
        sizes[: len(i) % steps] += 1  # np.array_split's parts, as slices (views, not copies)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            part = slice(start, stop)
            yield self._pairs(i[part], j[part], None if d is None else d[part], None if w is None else w[part])

    def train_loader(self, rank: RankFn) -> DataLoader:
        """The epoch's batches; made by a thread beside the steps when an epoch is large.

        At a million places an epoch's batches (drawing, shuffling and 24 million great-circle
        distances, each a pair of random reads) took a third of the fit's time. NumPy releases the
        GIL for them, so a thread makes the next batches on the other core while the fit steps. (A
        DataLoader worker process was tried first: passing 1,465 batches an epoch between processes
        cost more than it saved, 811 s against 650 s for the million places.) Small epochs stay
        in the fit's own thread.
        """
        ahead = PREFETCH if self.epoch_size() >= PREFETCH_PAIRS else 0
        return DataLoader(Batches(lambda: _prefetched(self.train_batches(rank), ahead)), batch_size=None)

    def epoch_size(self) -> int:
        """Pairs in one epoch (over every rank)."""
        if self.known_pairs is not None:
            return len(self.known_pairs[0])
        return self.table.n * (self.neighbour_index.shape[1] + self.random_pairs)

    def evaluation_batches(self) -> Iterator[Batch]:
        """Every known pair (or the fixed sample); every pair of a complete table comes as blocks of whole rows.

        Rows (``start`` and ``distances``) of a places table are computed from unit vectors by matrix
        products: about 1 s per 10^8 pairs.
        """
        if self._evaluation is not None:
            i, j = self._evaluation
            for start in range(0, len(i), self.batch_size):
                yield self._pairs(i[start : start + self.batch_size], j[start : start + self.batch_size])
            return
        n = self.table.n
        rows = max(1, BLOCK // n)
        places = isinstance(self.table, PlacesTable)
        units = torch.from_numpy(geo.to_unit_vectors(self.table.latlon)) if places else None
        for start in range(0, n, rows):
            if units is None:
                block = torch.from_numpy(self.table.columns(np.arange(start, min(n, start + rows))).T / self.scale)
            else:
                block = geo.great_circle_block(units[start : start + rows], units) / self.scale
            yield {"start": torch.tensor(start), "distances": block.float()}

    def training_step(self, problem: Problem, state: MapState, batch: Batch) -> StepResult:
        """The loss ``sum mu/2 (dhat - d)^2`` whose gradient :class:`PairStep` turns into s_gd2's step.

        Under DDP the loss is multiplied by the number of ranks (DDP averages gradients) and the
        per-place sums of ``mu`` are added over the ranks, so the step is that of the union of the batches.
        """
        i, j, d, w = batch["i"], batch["j"], batch["distances"], batch["weights"]
        x = state.coords[0]
        world_size = state.world_size
        sparse = not state.gradient  # PairStep in one process: the moves of the batch's places, O(pairs) a step
        if self.transform != "ratio" and self._targets.epoch != state.epoch:
            self._refit_transform(problem, state)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not sparse):
            if sparse:  # a flat map (pair batches take no other): the differences are kept for the step
                x = x.detach()
                i, j = i.to(x.device), j.to(x.device)
                diff = x.index_select(0, i) - x.index_select(0, j)
                fitted = geo.lengths(diff)
            else:
                fitted = problem.pair_distances(state, i, j)[0]
            lw = problem.loss.pair_weights(d, w)
            eta = self.eta(state.epoch)
            mu = (lw * eta).clamp(max=1.0)
            target = self._targets.of(self.transform, i, j, d)
            residual = fitted - target
            loss = 0.5 * (mu * residual.square()).sum() * world_size
        if sparse:
            self._steps.moves = (i, j, diff, (mu * residual / fitted).to(x.dtype), mu.to(x.dtype))
            loss = without_gradient(loss)
        elif self._steps is not None:
            node = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            node.index_add_(0, i, mu).index_add_(0, j, mu)
            self._steps.caps = state.reduce(node) if world_size > 1 else node
        result = StepResult(loss, shown=("train/batch_stress1",))
        if state.logging:
            with torch.no_grad():
                result.logs["train/batch_stress1"] = metrics.stress1(fitted, target, w)
            result.logs.update({"train/loss": loss.detach() / world_size, "train/eta": eta})
        return result

    def batch_sums(self, problem: Problem, state: MapState, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self._sums(problem, state, [batch])[:2]

    def _sums(self, problem: Problem, state: MapState, batches: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Over batches: ``sum w (dhat - d)^2``, ``sum w d^2`` and each place's residual (restart 0).

        A batch is either pairs (``i``, ``j``) or a block of whole rows of the matrix (``start``);
        rows count each pair twice, which leaves stress-1 and the places' shares unchanged.
        """
        residual = torch.zeros(1, dtype=torch.float64)
        norm = torch.zeros((), dtype=torch.float64)
        places = torch.zeros(self.table.n, dtype=torch.float64)
        x = state.coords[0].detach()
        with torch.no_grad():
            for batch in batches:
                if "start" in batch:
                    start = int(batch["start"])
                    rows, row_norm = losses.block_residuals(x, start, batch["distances"].to(x.device))
                    places[start : start + len(rows)] += rows.double().cpu()
                    residual += rows.double().sum().cpu()
                    norm += row_norm.double().sum().cpu()
                    continue
                i, j = batch["i"], batch["j"]
                fitted = problem.pair_distances(state, i, j)[0].double().cpu()
                w, d = batch["weights"].double().cpu(), batch["distances"].double().cpu()
                target = self._targets.of(self.transform, i.cpu(), j.cpu(), d).double()
                terms = w * (fitted - target).square()
                residual += terms.sum()
                norm += (w * (d if self.transform == "ratio" else fitted).square()).sum()  # against the map's own
                places.index_add_(0, i.cpu(), terms).index_add_(0, j.cpu(), terms)
        return residual, norm, places

    def _refit_transform(self, problem: Problem, state: MapState) -> None:
        """The epoch's transform, fitted over the evaluation pairs (every known pair, or the fixed sample)."""
        i, j = (torch.from_numpy(np.ascontiguousarray(a)) for a in self._evaluation)
        with torch.no_grad():
            fitted = torch.cat([problem.pair_distances(state, i[k : k + self.batch_size], j[k : k + self.batch_size])[0]
                                for k in range(0, len(i), self.batch_size)]).double().cpu()  # fmt: skip
        given = torch.from_numpy(self.table.pair_distances(*self._evaluation) / self.scale)
        w = torch.from_numpy(self.table.pair_weights(*self._evaluation))
        w = problem.loss.pair_weights(given, w)
        self._targets.refit(self.transform, fitted, given, w, state.epoch)
        self.invalidate()

    def transform_line(self, problem: Problem, state: MapState) -> tuple[float, float] | None:
        if self.transform != "interval" or self._targets.line is None:
            return None
        a, b = self._targets.line
        return float(a * self.scale), float(b)

    def _evaluation_pass(self, problem: Problem, state: MapState) -> tuple[torch.Tensor, torch.Tensor]:
        """Stress-1 and each place's residual over the evaluation batches, computed once per step."""
        step = state.step
        if self._evaluated is None or self._evaluated[0] != step:
            residual, norm, places = self._sums(problem, state, self.evaluation_batches())
            self._evaluated = (step, metrics.from_sums(residual, norm), places)
        return self._evaluated[1], self._evaluated[2]

    def invalidate(self) -> None:
        self._evaluated = None

    def whole_objective(self, problem: Problem, state: MapState) -> Iterator[torch.Tensor]:
        """The loss over every known pair of a table with missing pairs, batch by batch; nothing for a complete one.

        A complete table's epochs draw new random partners, so no fixed sum is their objective: its fits
        are judged by stress-1 over the fixed sample.
        """
        if self.known_pairs is None:
            return
        for batch in self.evaluation_batches():
            i, j = batch["i"].to(state.device), batch["j"].to(state.device)
            d, w = (batch[k].to(device=state.device, dtype=state.coords.dtype) for k in ("distances", "weights"))
            fitted = problem.pair_distances(state, i, j)[0]
            yield losses.terms(problem.loss.name, fitted, d, w).sum()

    def epoch_objective(self, problem: Problem, state: MapState) -> float | None:
        """Stress-1 over the evaluation pairs (judged from :meth:`judged_from` on)."""
        return float(self.evaluate(problem, state)[0])

    def judged_from(self, patience: int) -> int:
        """From ``patience + 1`` epochs before the end of the annealing: earlier, the steps are large and stochastic."""
        return self.anneal_epochs - patience - 1

    def evaluate(self, problem: Problem, state: MapState) -> torch.Tensor:
        return self._evaluation_pass(problem, state)[0].float().to(state.device)

    def place_residuals(self, problem: Problem, state: MapState, restart: int) -> torch.Tensor:
        return self._evaluation_pass(problem, state)[1]


PREFETCH_PAIRS = 2_000_000
"""Epochs of at least this many pairs have their batches made by a thread (:meth:`PairBatches.train_loader`)."""

PREFETCH = 8
"""Batches the thread makes ahead of the steps."""


def _prefetched(batches: Iterator[Batch], ahead: int) -> Iterator[Batch]:
    """``batches``, made by a thread up to ``ahead`` in advance (in the caller's thread when ``ahead`` is 0).

    The order is unchanged; an error in the thread is raised here; the thread stops when the caller
    stops asking (a fit stopped early, or interrupted).
    """
    if ahead <= 0:
        yield from batches
        return
    import queue
    import threading

    made: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    end = object()

    def make() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        made.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            made.put(end)
        except BaseException as error:  # noqa: BLE001 (handed to the caller, which raises it)
            made.put(error)

    thread = threading.Thread(target=make, name="citymap-batches", daemon=True)
    thread.start()
    try:
        while True:
            batch = made.get()
            if batch is end:
                return
            if isinstance(batch, BaseException):
                raise batch
            yield batch
    finally:
        stop.set()


def _move_pairs(
    x: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    diff: torch.Tensor,
    pull: torch.Tensor,
    mu: torch.Tensor,
    sums: torch.Tensor,
    caps: torch.Tensor,
) -> None:
    """s_gd2's capped step for a batch's places: ``x -= sum_pairs pull (x_i - x_j) / max(1, sum_pairs mu)``.

    The same step as autograd's dense gradient of ``sum mu/2 (dhat - d)^2`` divided by
    :attr:`PairStep.caps`, over the batch's places alone. ``sums`` (``n * dim``) and ``caps`` (``n``)
    are zero on entry and left zero. Every scatter and gather is one-dimensional: torch's
    ``index_add_`` over rows of an ``(n, 2)`` tensor took 11 times as long as over its flat view.
    """
    dim = x.shape[1]
    ends = torch.cat([i, j])
    flat = (ends[:, None] * dim + torch.arange(dim, device=x.device)).reshape(-1)
    half = len(i) * dim
    pulls = (pull[:, None] * diff).reshape(-1)
    sums.index_add_(0, flat[:half], pulls).index_add_(0, flat[half:], pulls, alpha=-1.0)
    caps.index_add_(0, i, mu).index_add_(0, j, mu)
    moves = sums.index_select(0, flat).view(-1, dim) / caps.index_select(0, ends).clamp_min(1.0)[:, None]
    coords = x.view(-1)  # a place in several pairs gets the same value from each
    coords.index_copy_(0, flat, coords.index_select(0, flat) - moves.reshape(-1))
    sums.index_fill_(0, flat, 0.0)
    caps.index_fill_(0, ends, 0.0)


class _Targets:
    """The disparities pair batches fit to, refitted once per epoch over the evaluation pairs.

    For ``interval`` the line; for ``ordinal`` the fitted monotone function of the given value (each
    pair's disparity is read off it, so any pair of the epoch has one, not only the evaluation pairs).
    """

    def __init__(self) -> None:
        self.epoch = -1
        self.line: tuple[float, float] | None = None
        self.steps: tuple[torch.Tensor, torch.Tensor] | None = None

    def refit(self, kind: str, fitted: torch.Tensor, given: torch.Tensor, weights: torch.Tensor, epoch: int) -> None:
        """Refit the transform to the map distances ``fitted`` of pairs with given values ``given``."""
        from citymap_lightning import transforms

        self.epoch = epoch
        if kind == "interval":
            a, b = transforms.interval_line(fitted[None], given, weights)
            self.line = (float(a[0]), float(b[0]))
            return
        target = transforms.disparities(kind, fitted[None], given, weights)[0]
        order = torch.argsort(given)
        self.steps = (given[order].float(), target[order].float())

    def of(self, kind: str, i: torch.Tensor, j: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
        """The targets of the pairs ``(i, j)`` with normalised given values ``given``."""
        if kind == "ratio" or self.epoch < 0:
            return given
        if kind == "interval":
            a, b = self.line
            return (given - a) / b
        values, targets = (t.to(given.device) for t in self.steps)
        k = torch.searchsorted(values, given.float(), right=True).clamp(1, len(values)) - 1
        return targets[k].to(given.dtype)
