"""New places on a fitted map: the fit's own problem with every fitted place held, one small problem per new place.

With the fitted places fixed, each new place's loss over its distances to them is its own problem,
in the fit's loss. A stress-type loss ``sum_k w_k (|x - y_k| - d_k)^2`` (``w_k`` the loss's weights,
``w d^power``) is minimised by the Guttman transform of SMACOF for one free point,
``x <- sum_k w_k (y_k + d_k (x - y_k) / |x - y_k|) / sum_k w_k``, which never increases it, from
several starts (beside each of the nearest known fitted places, and their centroid), batched over
places and starts in torch; the start with the lowest value is kept. The course objective
``sum_k w_k (|x - y_k|^2 - d_k^2)^2`` goes on from there by damped Newton steps (a 2x2 or 3x3 system
per place). On a sphere the great-circle distances become chords, the point is placed in 3-D and
put back on the sphere. ``tests/test_conformance.py`` checks each loss against the independent
reference minimiser of the same held problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from citymap_lightning import geometry as geo
from citymap_lightning import losses
from citymap_lightning.errors import ConfigError
from citymap_lightning.problem import MapState, Problem
from citymap_lightning.solvers.base import Batch, RankFn, Solver
from citymap_lightning.tables import DistanceTable

STARTS = 8
"""A new place starts beside each of its this many nearest known fitted places (and at their centroid)."""
ITERATIONS = 500
"""Most Guttman iterations per place."""
MIN_KNOWN = 3
"""A new place needs this many known distances to fitted places."""


@dataclass
class NewPlaces:
    """Places to put on a fitted map, and their distances to its places.

    Attributes:
        names: the new places' names.
        distances: ``(m, n)`` distances to the fitted places (in the fitted map's order), NaN where unknown.
        weights: ``(m, n)`` weights (0 where unknown).
        source: where they came from.

    """

    names: list[str]
    distances: np.ndarray
    weights: np.ndarray
    source: str = "new places"


@dataclass
class Placement:
    """Where new places went: ``coords`` ``(m, dim)`` in the fitted map's frame and unit, each one's stress-1."""

    names: list[str]
    coords: np.ndarray
    stress1: np.ndarray
    latlon: np.ndarray | None = None


def place(
    fixed: np.ndarray,
    distances: np.ndarray,
    weights: np.ndarray | None = None,
    geometry: str = "plane",
    radius: float | None = None,
    seed: int = 0,
    loss: str = "stress",
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of new places from their distances to ``fixed`` places, and each one's stress-1.

    Args:
        fixed: ``(n, dim)`` the fitted places, in the map's unit (on a sphere: points at ``radius``).
        distances: ``(m, n)`` each new place's distances to them, NaN where unknown.
        weights: ``(m, n)`` non-negative weights (1 where a distance is known, when not given).
        geometry: ``plane``/``space`` (Euclidean) or ``sphere`` (great-circle distances on ``radius``).
        radius: the sphere's radius.
        seed: seed of the small offsets that start each place beside a fitted one.
        loss: the fit's loss (:data:`citymap_lightning.losses.REGISTRY`), which each place minimises.

    """
    y = torch.as_tensor(np.asarray(fixed, dtype=np.float64))
    d = np.asarray(distances, dtype=np.float64)
    w = np.where(np.isfinite(d), 1.0 if weights is None else np.asarray(weights, dtype=np.float64), 0.0)
    d = np.where(w > 0, d, 0.0)
    sphere = geometry == "sphere"
    if sphere:
        radius = float(radius if radius is not None else np.linalg.norm(fixed, axis=1).mean())
        y = y / y.norm(dim=1, keepdim=True) * radius
        d = 2 * radius * np.sin(np.clip(d / (2 * radius), 0.0, np.pi / 2))  # chords
    m, n, dim = d.shape[0], y.shape[0], y.shape[1]
    out, stress = np.zeros((m, dim)), np.zeros(m)
    offsets = torch.from_numpy(np.random.default_rng(seed).standard_normal((STARTS + 1, dim)))  # the same for every row
    rows = max(1, 2**22 // max(1, (STARTS + 1) * n * dim))
    for start in range(0, m, rows):
        block = slice(start, min(m, start + rows))
        x, s = _place_block(y, torch.from_numpy(d[block]), torch.from_numpy(w[block]), offsets, loss)
        out[block], stress[block] = x, s
    if sphere:
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-300) * radius
        stress = _sphere_stress1(
            out, np.asarray(fixed, dtype=np.float64), np.asarray(distances, dtype=float), w, radius
        )
    return out, stress


def _place_block(
    y: torch.Tensor, d: torch.Tensor, given: torch.Tensor, offsets: torch.Tensor, loss: str = "stress"
) -> tuple[np.ndarray, np.ndarray]:
    """Guttman iterations for a block of ``m`` places from ``STARTS + 1`` starts each; the best start's result.

    Each place iterates until it has converged, whatever the others in the block do: a place's
    position does not depend on which places it is placed with. The course objective is refined by
    :func:`_course_newton` from the best start of raw stress. Returns positions and raw stress-1.
    """
    kind = losses.get(loss)
    w = given if kind.squared else kind.pair_weights(d, given)
    m = d.shape[0]
    known = w > 0
    order = torch.where(known, d, torch.full_like(d, float("inf"))).argsort(dim=1)[:, :STARTS]  # nearest known
    k = min(STARTS, order.shape[1])
    near_known = torch.gather(known, 1, order[:, :k])
    spread = d.max(dim=1).values.clamp_min(1e-300)[:, None, None]
    jitter = offsets[None, :k] * 1e-3 * spread
    beside = y[order[:, :k]] + jitter  # (m, k, dim)
    centroid = (w @ y / w.sum(dim=1, keepdim=True).clamp_min(1e-300))[:, None, :]
    x = torch.cat([beside, centroid + offsets[None, k : k + 1] * 1e-3 * spread], dim=1)  # (m, S, dim)
    usable = torch.cat([near_known, torch.ones(m, 1, dtype=torch.bool)], dim=1)
    total = w.sum(dim=1).clamp_min(1e-300)[:, None, None]
    centre = torch.einsum("mn,nd->md", w, y)[:, None, :]
    active = torch.arange(m)
    for _ in range(ITERATIONS):
        xa, wa, da = x[active], w[active], d[active]
        diff = xa[:, :, None, :] - y[None, None, :, :]  # (a, S, n, dim)
        pull = (wa * da)[:, None, :] / diff.norm(dim=-1).clamp_min(1e-300)  # (a, S, n)
        moved = (centre[active] + torch.einsum("asn,asnd->asd", pull, diff)) / total[active]
        change = (moved - xa).norm(dim=-1).amax(dim=1)
        x[active] = moved
        active = active[change > 1e-12 * spread[active, 0, 0]]
        if len(active) == 0:
            break
    residual = ((x[:, :, None, :] - y[None, None]).norm(dim=-1) - d[:, None, :]).square()
    sums = (w[:, None, :] * residual).sum(-1).masked_fill(~usable, float("inf"))
    best = sums.argmin(dim=1)
    chosen = x[torch.arange(m), best]
    if kind.squared:
        chosen = _course_newton(chosen, y, d, w)
    raw = (given * ((chosen[:, None, :] - y[None]).norm(dim=-1) - d).square()).sum(dim=1)
    norm = (given * d.square()).sum(dim=1).clamp_min(1e-300)
    return chosen.numpy(), (raw / norm).sqrt().numpy()


def _course_newton(x: torch.Tensor, y: torch.Tensor, d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Minimise ``sum_k w_k (|x - y_k|^2 - d_k^2)^2`` for each row of ``x`` ``(m, dim)`` by damped Newton steps.

    Levenberg-Marquardt damping keeps every step a descent: a step that does not lower a place's
    value is refused and its damping raised tenfold; a place stops once its step is below 1e-12 of the
    distances' spread.
    """
    d2 = d.square()
    spread = d.max(dim=1).values.clamp_min(1e-300)
    eye = torch.eye(x.shape[1], dtype=x.dtype)

    def value(p: torch.Tensor) -> torch.Tensor:
        return (w * ((p[:, None, :] - y[None]).square().sum(-1) - d2).square()).sum(-1)

    damping = torch.full((x.shape[0],), 1e-3, dtype=x.dtype)
    current = value(x)
    for _ in range(ITERATIONS):
        diff = x[:, None, :] - y[None]  # (m, n, dim)
        res = diff.square().sum(-1) - d2  # (m, n)
        grad = 4 * torch.einsum("mn,mnd->md", w * res, diff)
        hess = 8 * torch.einsum("mn,mnd,mne->mde", w, diff, diff) + 4 * (w * res).sum(-1)[:, None, None] * eye
        scale = hess.diagonal(dim1=1, dim2=2).abs().amax(dim=1).clamp_min(1e-300)
        step = torch.linalg.solve(hess + (damping * scale)[:, None, None] * eye, grad[..., None])[..., 0]
        trial = x - step
        better = value(trial) < current
        x = torch.where(better[:, None], trial, x)
        current = torch.where(better, value(x), current)
        damping = torch.where(better, damping / 3, damping * 10).clamp(1e-12, 1e12)
        if bool(((step.norm(dim=1) < 1e-12 * spread) | (damping >= 1e12)).all()):
            break
    return x


def _sphere_stress1(x: np.ndarray, y: np.ndarray, d: np.ndarray, w: np.ndarray, radius: float) -> np.ndarray:
    """Each new place's stress-1 in great-circle distance on the sphere."""
    fitted = radius * geo.central_angle(x[:, None, :], y[None, :, :]).numpy()
    d = np.where(w > 0, d, 0.0)
    return np.sqrt((w * (fitted - d) ** 2).sum(axis=1) / np.maximum((w * d**2).sum(axis=1), 1e-300))


class Placing(Solver):
    """The solver of ``predict`` with new places: nothing is fitted, ``new`` are put on a checkpoint's map.

    ``table`` holds the checkpoint's places (names and frame, no distances).
    """

    name = "placing"

    def __init__(self, table: DistanceTable, new: NewPlaces, scale: float) -> None:
        super().__init__(table)
        self.scale = scale
        self.new = new
        self.evaluation_size = 0
        self.placement: Placement | None = None

    def describe(self) -> str:
        return f"{len(self.new.names)} new places put on the fitted map of {self.table.n}"

    def configure_optimizer(self, problem: Problem, params: Any) -> torch.optim.Optimizer:
        raise ConfigError(f"{self.new.source}: new places are put on a fitted map by predict, not fitted")

    def train_loader(self, rank: RankFn) -> DataLoader:
        raise ConfigError(f"{self.new.source}: new places are put on a fitted map by predict, not fitted")

    def evaluation_batches(self) -> Iterator[Batch]:
        yield {"places": torch.zeros(1)}

    def evaluate(self, problem: Problem, state: MapState) -> torch.Tensor:
        """The checkpoint's own stress-1 (its distances are not in the new file)."""
        return state.stress1

    def batch_sums(self, problem: Problem, state: MapState, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(state.coords.shape[0], dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)

    def place_residuals(self, problem: Problem, state: MapState, restart: int) -> torch.Tensor:
        return torch.zeros(self.table.n, dtype=torch.float64)

    def predict(self, problem: Problem, state: MapState, fitted_map: Callable[[], Any]) -> torch.Tensor:
        """The new places' positions in the fitted map's frame and unit (also kept as :attr:`placement`)."""
        fit = fitted_map()
        coords, stress1 = place(
            fit.coords, self.new.distances, self.new.weights, fit.geometry, fit.radius, loss=problem.loss.name
        )
        self.placement = Placement(self.new.names, coords, stress1, fit.to_latlon(coords))
        return torch.from_numpy(coords)
