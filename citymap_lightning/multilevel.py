"""Coarse-to-fine fitting of tables with missing pairs: a start in the optimum's basin at any size.

A sparse table (a pair list, a matrix with empty cells) has folds: stationary points where a group of
places lies mirrored across its neighbours' line, which no gradient step leaves. A fit started from
MDS of the shortest paths ends in them at scale (a 50,000-place road-shaped pair list ended 4x above
its optimum). The multilevel scheme of graph drawing (Gansner, Koren and North's stress majorization
with multilevel starts; Hu's sfdp) avoids them: fit a coarse version of the table, where the global
shape is settled by few places, then add places level by level, each level started from the one
above and fitted by the same stages.

- **Coarsening** (:func:`coarsen`): a maximal independent set of the places (no two partners both
  kept, about one place in five on a road-shaped list), each other place joined to its nearest kept
  place by shortest path. Two kept places become partners where any of their members are; their
  distance is the root mean square of ``d^2 + r_a^2 + r_b^2`` over those member pairs (``r`` each
  member's path to its kept place): the expected squared distance when the members lie in random
  directions about them.
- **Placing** (:func:`prolong`): the kept places start where the coarse fit put them; the others,
  nearest first, where the circles about their nearest placed partners (radius: the given distance)
  cross best, judged by ``1 / d^2``-weighted stress over the placed partners (a fold is a place on the
  wrong side of its partners' line, which this avoids). A place with one placed partner goes at that
  distance from it in a seeded direction.
- **Fitting** (:func:`minimise`): each level's stages by L-BFGS over every known pair, in float64,
  on the objective built from the loss's own torch terms (:meth:`~citymap_lightning.losses.Loss.terms`,
  differentiated by autograd): no second copy of a loss.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from citymap_lightning import losses
from citymap_lightning.stages import Stage
from citymap_lightning.starts import _lbfgs, circle_crossings, relayout

log = logging.getLogger("citymap_lightning")

COARSEST = 300
"""Levels are made until a level has at most this many places: that level is fitted by the full continuation
(a level of 300 places from 20,000 has about 15,000 pairs, the far partners of its members merged)."""

MIN_SHRINK = 0.7
"""Coarsening stops when a level keeps more than this share of the places above (the table is too dense to shrink)."""

TOLERANCE = 1e-8
"""A level's L-BFGS stops once the objective's relative change in an iteration is below this: it is a start,
which the epochs polish and judge (the course objective's last 1e-5 of its value took 20 times as long)."""

MAX_ITERATIONS = 20000
"""Most L-BFGS iterations of one stage on one level."""


@dataclass
class Level:
    """One level of the hierarchy: its places' pairs, and how it was made from the level below (finer)."""

    n: int
    i: np.ndarray
    j: np.ndarray
    d: np.ndarray
    w: np.ndarray
    kept: np.ndarray | None = None
    """The finer level's places kept in this one (this level's place ``k`` is the finer place ``kept[k]``)."""


@dataclass
class Partners:
    """A level's pairs seen from each place: ``partners[bounds[p]:bounds[p + 1]]`` are ``p``'s, at ``lengths``."""

    graph: object
    """The pairs as a symmetric sparse graph weighted by distance (zero distances made tiny), for Dijkstra."""
    partners: np.ndarray
    lengths: np.ndarray
    bounds: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    """Each pair in both directions (``starts[k]`` to ``ends[k]``), in the pairs' order."""


def partners_of(level: Level) -> Partners:
    """:class:`Partners` of ``level``'s places."""
    from scipy.sparse import coo_matrix

    n, i, j, d = level.n, level.i, level.j, level.d
    positive = d[d > 0]
    tiny = float(positive.min()) * 1e-9 if positive.size else 1e-300
    starts, ends, lengths = np.r_[i, j], np.r_[j, i], np.maximum(np.r_[d, d], tiny)
    graph = coo_matrix((lengths, (starts, ends)), shape=(n, n)).tocsr()
    by = np.argsort(starts, kind="stable")
    bounds = np.searchsorted(starts[by], np.arange(n + 1))
    return Partners(graph, ends[by], lengths[by], bounds, starts, ends)


def coarsen(level: Level, rng: np.random.Generator) -> Level | None:
    """The next coarser level, or None where the places do not shrink by :data:`MIN_SHRINK`."""
    from scipy.sparse.csgraph import dijkstra

    n, i, j, d = level.n, level.i, level.j, level.d
    near = partners_of(level)
    # a maximal independent set, greedily in a random order: a place is kept unless a partner already is
    kept = np.zeros(n, bool)
    blocked = np.zeros(n, bool)
    for p in rng.permutation(n).tolist():
        if not blocked[p]:
            kept[p] = True
            blocked[near.partners[near.bounds[p] : near.bounds[p + 1]]] = True
    reps = np.flatnonzero(kept)
    if len(reps) > MIN_SHRINK * n or len(reps) < 3:
        return None
    reach, _, owner = dijkstra(near.graph, indices=reps, min_only=True, return_predecessors=True)
    owner = np.searchsorted(reps, owner)  # the kept place's index in the coarse level
    a, b = owner[i], owner[j]
    cross = a != b
    a, b = np.minimum(a, b)[cross], np.maximum(a, b)[cross]
    squared = d[cross] ** 2 + reach[i[cross]] ** 2 + reach[j[cross]] ** 2
    m = len(reps)
    key = a.astype(np.int64) * m + b
    unique, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    mean_squared = np.bincount(inverse, squared, len(unique)) / counts
    weights = np.bincount(inverse, level.w[cross], len(unique)) / counts
    return Level(m, unique // m, unique % m, np.sqrt(mean_squared), weights, kept=reps)


def hierarchy(n: int, i: np.ndarray, j: np.ndarray, d: np.ndarray, w: np.ndarray, coarsest: int = COARSEST) -> list:
    """The levels, finest first, down to one of at most ``coarsest`` places (seeded: the same table, the same ones)."""
    rng = np.random.default_rng(0)
    levels = [Level(n, i, j, d, w)]
    while levels[-1].n > coarsest:
        coarser = coarsen(levels[-1], rng)
        if coarser is None:
            break
        levels.append(coarser)
    return levels


def prolong(coarse_x: np.ndarray, level: Level, kept: np.ndarray) -> np.ndarray:
    """Positions of ``level``'s places from the coarse fit of its ``kept`` places (see the module's docstring)."""
    from scipy.sparse.csgraph import dijkstra

    n = level.n
    dim = coarse_x.shape[1]
    x = np.zeros((n, dim))
    placed = np.zeros(n, bool)
    x[kept], placed[kept] = coarse_x, True
    near = partners_of(level)
    starts, ends, partners, lengths, bounds = near.starts, near.ends, near.partners, near.lengths, near.bounds
    reach = dijkstra(near.graph, indices=kept, min_only=True)
    rng = np.random.default_rng(1)
    order = np.argsort(reach, kind="stable")  # nearest to a kept place first
    need = 3
    while not placed.all():
        # a place is put once it has 3 placed partners (2 leave a mirror choice), nearest first; when none has,
        # those with 2, then 1, until some have 3 again
        counts = np.bincount(starts, placed[ends], n)
        ready = order[~placed[order] & (counts[order] >= need)]
        if len(ready) == 0:
            need -= 1
            if need == 0:
                break  # the rest have no placed partner: not joined to the kept places (cannot happen)
            continue
        for p in ready.tolist():
            q, length = partners[bounds[p] : bounds[p + 1]], lengths[bounds[p] : bounds[p + 1]]
            on = placed[q]
            q, length = q[on], length[on]
            weight = 1.0 / length**2
            centre = (weight[:, None] * x[q]).sum(0) / weight.sum()
            if dim == 2 and len(q) > 1:  # where its placed partners' circles cross: the side they agree on
                near = np.argsort(length, kind="stable")[:PLACING_PARTNERS]
                candidates = np.concatenate([circle_crossings(x[q[near]], length[near]), centre[None]])
                fitted = np.sqrt(((candidates[:, None, :] - x[q][None]) ** 2).sum(-1))
                x[p] = candidates[int(np.argmin((weight * (fitted - length) ** 2).sum(1)))]
            else:  # off the centre by its nearest partner's distance, in a seeded direction
                direction = rng.standard_normal(dim)
                x[p] = centre + length.min() * direction / max(np.linalg.norm(direction), 1e-300)
            placed[p] = True
        need = 3
    return x


PLACING_PARTNERS = 6
"""A place is put where the circles about this many of its nearest placed partners cross best."""


def pair_objective(
    loss: str, i: np.ndarray, j: np.ndarray, d: np.ndarray, w: np.ndarray
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``flat -> (value, gradient)`` of ``loss`` over the pairs, from the loss's own torch terms (float64).

    The terms' derivative in each pair's map distance comes from autograd through
    :meth:`~citymap_lightning.losses.Loss.terms` (the one definition of the loss); the distances'
    derivative in the coordinates is geometry, applied by hand with flat scatters (torch's row-wise
    ``index_add_`` backward took half the evaluation at 900,000 pairs). ``flat`` is the ``(n, dim)`` map
    raveled.
    """
    kind = losses.get(loss)
    i, j = np.ascontiguousarray(i), np.ascontiguousarray(j)
    td = torch.from_numpy(np.asarray(d, dtype=np.float64))
    tw = None if (w == 1).all() else torch.from_numpy(np.asarray(w, dtype=np.float64))

    def objective(flat: np.ndarray, dim: int) -> tuple[float, np.ndarray]:
        x = flat.reshape(-1, dim)
        n = len(x)
        diff = x[i] - x[j]
        fitted = np.sqrt(np.einsum("pk,pk->p", diff, diff))
        f = torch.from_numpy(fitted).requires_grad_(True)
        value = kind.terms(f, td, tw).sum()
        (slope,) = torch.autograd.grad(value, f)  # the terms' derivative in each pair's map distance
        # d dhat / d x_i = (x_i - x_j) / dhat: coincident places get no pull (autograd's subgradient of a norm)
        coefficient = np.divide(slope.numpy(), fitted, out=np.zeros_like(fitted), where=fitted > 0)
        step = coefficient[:, None] * diff
        grad = np.empty((n, dim))
        for k in range(dim):
            grad[:, k] = np.bincount(i, step[:, k], n) - np.bincount(j, step[:, k], n)
        return float(value.detach()), grad.ravel()

    return objective


def minimise(
    loss: str,
    x: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    w: np.ndarray,
    tol: float = TOLERANCE,
    max_iter: int = MAX_ITERATIONS,
    record: list[bool] | None = None,
) -> tuple[np.ndarray, float]:
    """``loss`` over the pairs minimised from ``x`` by L-BFGS in float64; returns the map and its objective.

    ``record``, when given, gets whether L-BFGS stopped by its tolerance (not its iteration cap).

    Works in units of the distances' root mean square (L-BFGS-B's first step moves by about 1, whatever
    the map's size) and on the objective rescaled to start at 10^6, so that ``tol`` is relative. Each
    place's coordinates are preconditioned by its block of the Gauss-Newton Hessian at the start
    (:func:`place_blocks`): a place's far partners make it stiff along their direction and soft across it
    (10^5 apart for the course objective on a road-shaped list), which slows L-BFGS without it.
    """
    n, dim = x.shape
    positive = d[d > 0]
    unit = float(np.sqrt(np.mean(positive**2))) if len(positive) else 1.0
    unit = unit if np.isfinite(unit) and unit > 0 else 1.0
    objective = pair_objective(loss, i, j, d / unit, w)
    x = x / unit
    lower = place_blocks(loss, x, i, j, d / unit, w)  # x = lower^-T y, so the Hessian in y is about the identity
    inverse = np.linalg.inv(lower)

    def to_x(flat: np.ndarray) -> np.ndarray:
        return np.einsum("nkl,nk->nl", inverse, flat.reshape(n, dim))

    def in_y(flat: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = objective(to_x(flat).ravel(), dim)
        return value, np.einsum("nkl,nl->nk", inverse, grad.reshape(n, dim)).ravel()

    y0 = np.einsum("nkl,nk->nl", lower, x)  # y = lower^T x
    result = _lbfgs(in_y, y0.ravel(), max_iter, tol, memory=20)
    found = to_x(result.x)
    if record is not None:
        record.append(result.success)
    kind = losses.get(loss)
    power = 4 if kind.squared else 2 + kind.power  # the terms' unit: (km^2)^2, or w d^power km^2
    return found * unit, objective(found.ravel(), dim)[0] * unit**power


RIDGE = 1e-2
"""Each place's Hessian block gets this share of its mean eigenvalue added, so that it is safely positive."""


def place_blocks(loss: str, x: np.ndarray, i: np.ndarray, j: np.ndarray, d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(n, dim, dim)`` lower Cholesky factors of each place's block of the Gauss-Newton Hessian of ``loss`` at ``x``.

    A pair's term ``w f(dhat)`` adds ``w f'' u u^T`` to both places' blocks (``u`` the unit direction
    between them, ``f''`` the second derivative of the term in ``dhat`` at the fit, without the residual's
    curvature): ``8 w dhat^2`` for the course objective, ``2 w d^power`` for stress-type losses.
    """
    n, dim = x.shape
    kind = losses.get(loss)
    diff = x[i] - x[j]
    length = np.sqrt((diff * diff).sum(1))
    u = diff / np.where(length > 0, length, 1.0)[:, None]
    if kind.squared:
        stiffness = 8.0 * w * length**2
    else:
        stiffness = 2.0 * w * (np.where(d > 0, d, 1.0) ** kind.power if kind.power else 1.0)
    outer = stiffness[:, None, None] * u[:, :, None] * u[:, None, :]
    blocks = np.zeros((n, dim, dim))
    np.add.at(blocks, i, outer)
    np.add.at(blocks, j, outer)
    trace = np.trace(blocks, axis1=1, axis2=2) / dim
    floor = np.median(trace[trace > 0]) if (trace > 0).any() else 1.0
    blocks += (RIDGE * np.maximum(trace, 1e-6 * floor))[:, None, None] * np.eye(dim)
    return np.linalg.cholesky(blocks)


REPAIR_ROUNDS = 3
"""At most this many sweeps of :func:`unfold` on a level."""

SUSPECT = 4.0
""":func:`unfold` tries the places whose relative errors exceed this multiple of the median place's..."""

SUSPECTS_SHARE = 0.05
"""... this share of the places at most, the worst first (a sweep is a Python loop: 43 s of a 117 s start on a
200,000-place list of 8 nearest + 8 random partners when it tried every place above twice the median)."""


def unfold(loss: str, x: np.ndarray, value: float, level: Level) -> np.ndarray:
    """Single places moved out of folds (:func:`~citymap_lightning.starts.relocate`), then L-BFGS again, while it pays.

    Only places whose terms stand out are tried. On a 20,000-place road-shaped pair list, raw stress
    stood at 1.0051x its optimum after the finest level's L-BFGS, and 1.0004x after one sweep.
    """
    from citymap_lightning.starts import _np_pair_weights, _pair_terms, relocate

    for _ in range(REPAIR_ROUNDS):
        # a folded place strains its near pairs: judged by relative errors, which the far pairs' do not drown
        relative = _pair_terms(False, x, level.i, level.j, level.d, _np_pair_weights(-2.0, level.d, level.w))
        per_place = np.bincount(level.i, relative, level.n) + np.bincount(level.j, relative, level.n)
        suspects = np.flatnonzero(per_place > SUSPECT * np.median(per_place))
        if len(suspects) > SUSPECTS_SHARE * level.n:  # the worst first, a share of the places at most
            suspects = suspects[np.argsort(-per_place[suspects], kind="stable")[: int(SUSPECTS_SHARE * level.n)]]
        moved = relocate(loss, x, level.i, level.j, level.d, level.w, places=suspects.tolist())
        if moved is None:
            break
        y, lower = minimise(loss, moved, level.i, level.j, level.d, level.w)
        if lower >= value * (1 - 1e-9):
            break
        x, value = y, lower
    return x


def level_stages(loss: str, finest: bool) -> list[str]:
    """The stages of a level placed from a coarser one.

    Raw stress first: it mends the placed places' local errors quickly (every pair weighs alike, where
    the course objective barely feels a near pair). Coarser levels then take the course objective,
    which settles the global shape; the finest ends with ``loss`` (after raw stress, for a local loss).
    """
    if not finest:
        return ["stress", "course"]
    return list(dict.fromkeys(["stress", loss]))


def fit(
    levels: list[Level], loss: str, coarsest_fit: Callable[[Level], np.ndarray], record: list[Stage] | None = None
) -> np.ndarray:
    """The map of the finest of ``levels`` (:func:`hierarchy`) by coarse-to-fine fitting.

    ``coarsest_fit`` fits the coarsest level (the package's continuation, with its repairs); each finer
    level is placed from the one above (:func:`prolong`), fitted by its :func:`level_stages` and unfolded.
    Each stage is appended to ``record`` (:class:`~citymap_lightning.stages.Stage`), when given.
    """
    x = coarsest_fit(levels[-1])
    record = [] if record is None else record

    def run(loss: str, level: Level, x: np.ndarray, name: str = "") -> tuple[np.ndarray, float]:
        t, stopped = time.perf_counter(), []
        x, value = minimise(loss, x, level.i, level.j, level.d, level.w, record=stopped)
        name = name or loss
        record.append(
            Stage(f"level {k} ({level.n:,} places): {name}", level.n, value, stopped[0], time.perf_counter() - t)
        )
        return x, value

    for k in range(len(levels) - 2, -1, -1):
        level, kept = levels[k], levels[k + 1].kept
        x = prolong(x, level, kept)
        for stage in level_stages(loss, k == 0):
            x, value = run(stage, level, x)
        x = unfold(stage, x, value, level)
    k = 0
    x, moved = relayout(stage, x, levels[0].i, levels[0].j, levels[0].d, levels[0].w)
    if moved:  # crumpled regions laid out afresh: settled, and single places unfolded again
        x, value = run(stage, levels[0], x, f"{stage}, crumpled regions laid out afresh")
        x = unfold(stage, x, value, levels[0])
    return x
