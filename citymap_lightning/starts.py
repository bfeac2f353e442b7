"""Initial positions: the course's random start, classical (Torgerson) MDS and map projections."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from citymap_lightning import geometry as geo
from citymap_lightning import losses, metrics
from citymap_lightning.errors import ConfigError
from citymap_lightning.stages import Stage
from citymap_lightning.tables import DistanceTable

log = logging.getLogger("citymap_lightning")

STARTS = ("auto", "random", "classical", "pivot", "continuation", "mercator", "lambert")
"""Start names accepted by :func:`initial_coords`."""


def random_start(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """The course's start: standard normal positions divided by the Frobenius norm of their distance matrix."""
    x = rng.standard_normal((n, dim))
    # the Frobenius norm of the distance matrix without building it: sum |x_i - x_j|^2 = 2n sum|x|^2 - 2|sum x|^2
    frobenius_sq = 2 * n * float((x * x).sum()) - 2 * float((x.sum(axis=0) ** 2).sum())
    return x / np.sqrt(max(frobenius_sq, np.finfo(float).tiny))


def classical_mds(distances: np.ndarray, dim: int) -> np.ndarray:
    """Classical (Torgerson) MDS of a complete matrix: the top eigenvectors of the double-centred squared distances.

    Above :data:`CLASSICAL_LIMIT` places it is computed as :func:`pivot_mds` (the full eigendecomposition is O(n^3)).
    """
    d = np.asarray(distances, dtype=np.float64)
    n = d.shape[0]
    if n > CLASSICAL_LIMIT:
        return pivot_mds(d, dim)
    sq = d**2  # double centring by the means: the same matrix as J D^2 J / -2, without two n x n products
    b = -0.5 * (sq - sq.mean(axis=0, keepdims=True) - sq.mean(axis=1, keepdims=True) + sq.mean())
    top = min(dim, n)
    values, vectors = _top_eigen(b, top)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    vectors = _fixed_signs(vectors)
    values = np.concatenate([values, np.zeros(dim - top)])
    vectors = np.concatenate([vectors, np.zeros((n, dim - top))], axis=1)
    coords = vectors * np.sqrt(np.clip(values, 0.0, None))
    flat = values <= 1e-9 * max(values.max(), 1e-300)
    if flat.any() and n > 1:  # an axis of zeros has no gradient, so a fit could never use it: give it a little spread
        spread = 1e-3 * float(np.abs(coords[:, 0]).max() or 1.0)
        coords[:, flat] = spread * np.random.default_rng(0).standard_normal((n, int(flat.sum())))
    return coords


LANCZOS_FROM = 200
"""From this many places classical MDS finds its top eigenvectors by Lanczos iterations (ARPACK), O(n^2) a step,
instead of LAPACK's O(n^3) reduction: 500 places 0.04 against 0.13 s on one thread, 2,000 places 0.4 against
8.7 s (both on the busy 2-core development machine, load average 11), the same vectors within 1e-15."""


def _top_eigen(b: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` largest eigenvalues of the symmetric ``b`` and their eigenvectors (in any order)."""
    from scipy.linalg import eigh

    n = b.shape[0]
    if n >= LANCZOS_FROM and top < n // 4:
        from scipy.sparse.linalg import ArpackNoConvergence, eigsh

        # a fixed start vector: the same vectors run after run (never ones: the centred matrix's null vector)
        start = np.random.default_rng(0).standard_normal(n)
        try:
            return eigsh(b, k=top, which="LA", v0=start)
        except ArpackNoConvergence:
            pass
    return eigh(b, subset_by_index=[n - top, n - 1], driver="evr")  # the top ones only


def _fixed_signs(vectors: np.ndarray) -> np.ndarray:
    """Each column's sign fixed by its largest component: LAPACK builds differ in it, the start should not."""
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    return vectors * np.where(signs < 0, -1.0, 1.0)


CLASSICAL_LIMIT = 3000
"""Above this many places ``classical`` is computed as pivot MDS: a full eigendecomposition is O(n^3)."""

SPARSE_CLASSICAL_LIMIT = 1000
"""Above this many places of an incomplete table, ``classical`` is pivot MDS: all-pairs shortest paths cost O(n m)."""


def full_distances(table: DistanceTable) -> np.ndarray:
    """``(n, n)`` distances with unknown pairs filled by their shortest path through known pairs (Dijkstra)."""
    if table.complete:
        return table.matrix()
    full = table.path_columns(np.arange(table.n))
    return np.minimum(full, full.T)


Columns = Callable[[np.ndarray], np.ndarray]
"""``columns(cols)``: the ``(n, len(cols))`` distances from every place to the places ``cols``."""


def maxmin_pivots(columns: Columns, n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``k`` pivots spread over the places (each next one the farthest from those chosen) and their columns.

    Needs only the ``k`` columns of distances, so it runs on a table that holds no matrix; the
    columns are written into one ``(n, k)`` array as they come (no second copy of them).
    """
    k = min(k, n)
    chosen = np.empty(k, dtype=np.int64)
    out = np.empty((n, k))
    chosen[0] = int(rng.integers(n))
    out[:, 0] = columns(chosen[:1])[:, 0]
    nearest = out[:, 0].copy()
    for m in range(1, k):
        chosen[m] = int(np.argmax(nearest))
        out[:, m] = columns(chosen[m : m + 1])[:, 0]
        np.minimum(nearest, out[:, m], out=nearest)
    return chosen, out


def pivot_mds(
    distances: np.ndarray | Columns, dim: int, k: int = 100, rng: np.random.Generator | None = None, n: int = 0
) -> np.ndarray:
    """Pivot MDS (Brandes and Pich): classical MDS from the distances to ``k`` pivots only, O(n k).

    ``distances`` is the ``n x n`` matrix or a :data:`Columns` function (then ``n`` is required).
    The double-centred squared distances to the pivots are projected on their top singular
    directions, then scaled so that the distances to the pivots fit best.
    """
    rng = rng or np.random.default_rng(0)
    if isinstance(distances, np.ndarray):
        matrix, n = distances, distances.shape[0]
        distances = lambda cols: matrix[:, cols]  # noqa: E731
    return pivot_embedding(*maxmin_pivots(distances, n, k, rng), dim)


def pivot_embedding(pivots: np.ndarray, target: np.ndarray, dim: int) -> np.ndarray:
    """Pivot MDS from the ``(n, k)`` distances ``target`` of every place to the places ``pivots``.

    Memory is one more ``(n, k)`` array: the double-centred squares are made in place, their top
    right singular vectors come from the ``k x k`` Gram matrix (no ``(n, k)`` left factor), and the
    fit to the pivots' distances is summed over blocks of rows. At 1,000,000 places and 100 pivots
    the start peaked at 7.6 GB with an SVD and whole-array temporaries.
    """
    c = np.square(target)
    c -= c.mean(axis=0, keepdims=True)
    c -= c.mean(axis=1, keepdims=True)  # the row means of the column-centred squares: both centrings done
    c *= -0.5
    values, vectors = np.linalg.eigh(c.T @ c)
    x = c @ _fixed_signs(vectors[:, np.argsort(values)[::-1][:dim]])
    del c
    at = x[pivots]
    dot = square = 0.0
    for start in range(0, len(x), PIVOT_ROWS):
        fitted = np.linalg.norm(x[start : start + PIVOT_ROWS, None, :] - at[None, :, :], axis=-1)
        dot += float((fitted * target[start : start + PIVOT_ROWS]).sum())
        square += float((fitted * fitted).sum())
    return np.ascontiguousarray(x * (dot / max(square, 1e-300)))


PIVOT_ROWS = 65536
"""Rows per block of the fit of pivot MDS's scale."""


def projection_start(latlon: np.ndarray, kind: str) -> np.ndarray:
    """Positions (km) of the places on a Mercator or Lambert conformal conic map about their centre."""
    centre = geo.spherical_centre(latlon)
    if kind == "mercator":
        return geo.mercator(latlon, centre)
    return geo.lambert_conformal_conic(latlon, centre)


def resolve_start(start: str, loss: str, geometry: str, table: DistanceTable | None = None) -> str:
    """The start that ``auto`` stands for (an explicit start is kept).

    - A complete table: the course objective on a flat map of up to :data:`COURSE_RANDOM_LIMIT` places
      keeps the course's random start, so the course is reproduced exactly; everything else starts
      from classical MDS (chord MDS on a sphere, pivot MDS at scale): random starts of raw stress, of
      a sphere, or of the course objective on a larger table end in local minima or creep for hundreds
      of epochs on a few hundred places, while a classical start begins in the optimum's basin.
    - A flat map of a table with missing pairs (a pair list, a matrix with empty cells), of any size:
      ``continuation`` (coarse to fine above :data:`MULTILEVEL_FROM` places). From a random start the course
      objective ended in a tangle on a 500-place
      road-shaped pair list (stress-1 0.18, places 290 km off); fitted straight from classical MDS of
      the shortest paths, raw stress ended 4.9x and weighted stress 8x above their optimum.
    - 3-D space of a complete table up to :data:`SPACE_CONTINUATION_PAIRS` pairs: ``continuation`` too.
      Great-circle distances fit best on a slightly curved cap, whose third axis is a few hundred km
      thin; the epochs creep along that flat direction (40 US places: still falling after 60 epochs,
      at 1.18x the course objective's optimum from the random start and 1.04x from classical, 1.09x for
      weighted stress), where the continuation starts at the optimum (1.0000x for every loss).
    """
    if start != "auto":
        return start
    if table is not None and not table.complete and geometry != "sphere":
        return "continuation"
    if table is not None and geometry == "space" and table.n_known_pairs <= SPACE_CONTINUATION_PAIRS:
        return "continuation"
    if table is not None and table.n > COURSE_RANDOM_LIMIT:
        return "classical"
    return "random" if losses.get(loss).squared and geometry != "sphere" else "classical"


COURSE_RANDOM_LIMIT = 200
"""Up to this many places the course objective on a flat map keeps the course's random start (the course's 36
cities are fitted exactly as the course does); a larger complete table starts from classical MDS (pivot MDS at scale).

From the random start the epochs first find the global shape, then creep along it, and the more so the more
places: names-only matrices of the most populous Mexican and Japanese places (one per name) converged in 19-28
epochs at 50 places, 25-29 at 100-150, 32-45 at 250, 95 at 400 (Japan: past the default 60), and 2,000 Japanese
places ended in a local minimum after 229 (stress-1 0.0130, where the classical start alone has 0.000256). From
classical MDS: 14-23 epochs up to 250 places, 19-26 at 400, 37-43 at 2,000 (``benchmarks/ceiling.py``). Below
the limit the random start's end lay lower (1e-7 to 7e-4 above the objective's float64 optimum, against 1e-4 to
1e-3 from classical MDS, where float32 L-BFGS stalls in the optimum's flat valley).
"""


CONTINUATION_LIMIT = 20000
"""Up to this many places a sphere of a table with missing pairs also tries the flat :func:`continuation` as its
start (:func:`sphere_start`); a flat map starts by it at any size."""

SPACE_CONTINUATION_PAIRS = 5_000
"""Up to this many known pairs (100 places of a full table), 3-D space starts by :func:`continuation`: its
weighted-stress stage took 13,761 L-BFGS iterations (94 s of CPU) on 200 places, 20,000 pairs."""

CONTINUATION_TOLERANCE = 1e-12
"""A stage of :func:`continuation` ends when its objective's relative change in an L-BFGS iteration stays below this."""


def continuation(
    table: DistanceTable, loss: str, dim: int, scale: float = 1.0, record: list[Stage] | None = None
) -> np.ndarray:
    """A start in the basin of ``loss``'s optimum (missing pairs, 3-D space): global losses first, then local ones.

    Pivot MDS of the shortest paths through the known pairs (memory O(n + pairs)) and, up to
    :data:`SPARSE_CLASSICAL_LIMIT` places, classical MDS of them too, each followed by the course
    objective over the known pairs, the lower kept (on 40 US places classical MDS led to 0.66 times
    pivot MDS's course objective, on 500 others pivot MDS to 0.03 times classical's). The course
    objective weighs long distances most and settles the map's global shape; then, for a local loss
    (weights ``d^power``, ``power < 0``), raw stress, then ``loss`` itself. Each stage is minimised
    by L-BFGS in float64 to a relative tolerance (:data:`CONTINUATION_TOLERANCE`); the epochs then
    go on from there. On a 500-place road-shaped pair list of US places this path reached every
    loss's optimum (within 2e-6 of an independent reference), where each one fitted straight from
    the classical start folded a cluster of places (raw stress 4.9x, weighted stress 8x, Sammon
    22x above). On sparser lists (3-4 neighbours and 2 far partners) it ended in folds (raw stress
    1.007-6.2x on six 500-place samples), so every stage :func:`descend`s (single places moved out
    of folds) and, up to :data:`HOP_LIMIT` places with missing pairs, :func:`basin_hops` ends it:
    0.994-1.017x on those six (five within 1.01x), for about 4-20 s of CPU in all at 500 places.
    Weighted stress and Sammon still ended 85.9x and 3.86x on one of them, dense clusters left
    crumpled by the global stages: on a table with missing pairs :func:`relayout` then lays such
    regions out afresh, and every loss ends at 1.0000x (weighted stress: 23 s of CPU in all).

    Each stage run is appended to ``record`` (:class:`~citymap_lightning.stages.Stage`), when given.
    """
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the stages are many small products, which two threads on a busy 2-core machine ran 3-10x
    # slower (500 places, weighted stress: 22.6 s of CPU against 306 s), and the result is then the same run to run
    with threadpool_limits(1):
        if not table.complete and table.n > MULTILEVEL_FROM:
            return _multilevel(table, loss, dim, scale, record)
        return _continuation(table, loss, dim, scale, record=record)


MULTILEVEL_FROM = 5000
"""Above this many places a table with missing pairs starts coarse-to-fine (:mod:`~citymap_lightning.multilevel`)."""


def _multilevel(
    table: DistanceTable, loss: str, dim: int, scale: float, record: list[Stage] | None = None
) -> np.ndarray:
    """The start of a large table with missing pairs: its coarsest level by :func:`_continuation`, then level by level.

    The coarsest level settles the global shape by the course objective (with the continuation's
    repairs); each finer level is placed from the one above and fitted by its stages (see
    :func:`citymap_lightning.multilevel.fit`), the finest by those of ``loss``.
    """
    from citymap_lightning import multilevel
    from citymap_lightning.tables import PairTable

    def coarsest(level: multilevel.Level) -> np.ndarray:
        names = [str(k) for k in range(level.n)]
        coarse = PairTable(names=names, i=level.i, j=level.j, d=level.d, w=level.w)
        label = f"level {len(levels) - 1} ({level.n:,} places)"
        return _continuation(coarse, "course", dim, 1.0, quiet=True, record=record, label=label)

    i, j, d, w = table.known_values()
    levels = multilevel.hierarchy(table.n, i, j, d / scale, w)
    if len(levels) == 1:  # too dense to coarsen (a matrix with a few empty cells): fitted whole
        return _continuation(table, loss, dim, scale, record=record)
    shown = " > ".join(f"{level.n:,}" for level in levels)
    log.info(f"start: coarse to fine over {len(levels)} levels of places ({shown}), each fitted by L-BFGS in float64")
    return np.ascontiguousarray(multilevel.fit(levels, loss, coarsest, record))


def _continuation(
    table: DistanceTable,
    loss: str,
    dim: int,
    scale: float,
    quiet: bool = False,
    record: list[Stage] | None = None,
    label: str = "",
) -> np.ndarray:
    i, j, d, w = table.known_values()
    d = d / scale
    label = label or f"{table.n:,} places"
    clock = [time.perf_counter()]

    def done(name: str, value: float) -> None:  # the stage just run, into the record
        now = time.perf_counter()
        if record is not None:
            record.append(Stage(f"{label}: {name}", table.n, float(value), None, now - clock[0]))
        clock[0] = now

    firsts = ["pivot"] + (["classical"] if table.n <= SPARSE_CLASSICAL_LIMIT else [])
    tried = {}  # the course objective from each first stage, the lower kept
    for first in firsts:
        start = initial_coords(first, table, dim, np.random.default_rng(0), scale=scale)
        tried[first] = minimise_pairs("course", start, i, j, d, w, value=True)
        # in 3-D raw stress first too, the lower course objective kept: on a 500-place pair list (3-4 nearest +
        # 2 far) in space classical MDS then the course objective ended 1.071x its optimum, pivot MDS 1.086x,
        # and classical MDS, raw stress, then the course objective 1.0000x (a flat map reached it directly)
        if dim > 2:
            settled = minimise_pairs("stress", start, i, j, d, w)
            tried[f"{first} MDS, raw stress"] = minimise_pairs("course", settled, i, j, d, w, value=True)
    first = min(tried, key=lambda name: tried[name][1])
    done(f"{first if ' ' in first else first + ' MDS'}, then course", tried[first][1])
    x, value = descend("course", tried[first][0], i, j, d, w)
    done("course, places moved out of folds", value)
    first = first if " " in first else f"{first} MDS"
    stages = list(dict.fromkeys(["course"] + (["stress"] if losses.get(loss).local else []) + [loss]))
    for stage in stages[1:]:
        x, value = descend(stage, x, i, j, d, w)
        done(stage, value)
    if not table.complete and table.n <= HOP_LIMIT:
        x, value = basin_hops(loss, x, value, i, j, d, w)
        done(f"{loss}, basin hops", value)
    if not table.complete:
        x, moved = relayout(loss, x, i, j, d, w)
        if moved:
            x, value = descend(loss, x, i, j, d, w)
            done(f"{loss}, crumpled regions laid out afresh", value)
    of = "the distances" if table.complete else "the shortest paths"
    if not quiet:
        log.info(f"start: {first} of {of}, then {', then '.join(stages)} (continuation)")
    return np.ascontiguousarray(x)


HOP_LIMIT = 2000
"""Up to this many places, :func:`continuation` on a table with missing pairs ends with :func:`basin_hops`."""

HOPS = 10
"""At most this many perturbations in :func:`basin_hops`."""

HOP_PATIENCE = 4
""":func:`basin_hops` stops after this many perturbations in a row that found nothing lower."""

HOP_TOLERANCE = 1e-8
"""The L-BFGS tolerance while hopping: a hop only has to tell basins apart; the best is then polished."""


def descend(
    loss: str,
    x: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    w: np.ndarray,
    rounds: int = 10,
    tol: float = CONTINUATION_TOLERANCE,
) -> tuple[np.ndarray, float]:
    """L-BFGS to a local minimum of ``loss``, then places moved one by one out of their folds, until none moves.

    L-BFGS stops where a place lies mirrored across the line of two of its partners (a fold); each
    :func:`relocate` sweep moves such places to their best spot with the others held, which only
    lowers the objective, and L-BFGS runs again. On a 500-place pair list (3-4 nearest + 2 far) the
    course objective's minimum from classical MDS was 3.8x its optimum, one place 400 km off; one
    sweep brought it to 1.0000x.
    """
    x, value = minimise_pairs(loss, x, i, j, d, w, value=True, tol=tol)
    for _ in range(rounds):
        moved = relocate(loss, x, i, j, d, w)
        if moved is None:
            break
        y, lower = minimise_pairs(loss, moved, i, j, d, w, value=True, tol=tol)
        if lower >= value * (1 - 1e-9):
            break
        x, value = y, lower
    return x, value


RELOCATE_PARTNERS = 12
""":func:`relocate` draws a place's candidate spots from the circles about this many of its nearest partners."""


def relocate(
    loss: str,
    x: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    w: np.ndarray,
    places: list[int] | None = None,
) -> np.ndarray | None:
    """One sweep: each place in turn moved to its best candidate spot, the others held (None if none moved).

    A place's candidates are the intersections of the circles about each two of its partners with
    radii their given distances (its position mirrored across their line among them), on a 2-D map
    (None in 3-D). A move is made only where it lowers
    the place's own terms, so the objective never rises. ``places`` (all by default) are the places tried.
    """
    kind = losses.get(loss)
    weights = w if kind.squared else _np_pair_weights(kind.power, d, w)
    n = len(x)
    if x.shape[1] != 2:
        return None
    edge = np.arange(len(i))
    order = np.argsort(np.r_[i, j], kind="stable")
    partner, pair = np.r_[j, i][order], np.r_[edge, edge][order]
    bounds = np.searchsorted(np.r_[i, j][order], np.arange(n + 1))
    x = x.copy()
    moved = False
    for p in range(n) if places is None else places:
        q, e = partner[bounds[p] : bounds[p + 1]], pair[bounds[p] : bounds[p + 1]]
        if len(q) < 2:
            continue
        centres, radii, wt = x[q], d[e], weights[e]
        # candidates from the circles of its nearest partners only: all pairs of a matrix row's 333 partners
        # made 55,000 candidates a place, each judged on every partner (a 500-place matrix, a third empty,
        # spent minutes here); a fold is a mirror across near partners' line
        near = np.argsort(radii, kind="stable")[:RELOCATE_PARTNERS]
        candidates = np.concatenate([circle_crossings(centres[near], radii[near]), x[p][None]])
        fitted = np.sqrt(((candidates[:, None, :] - centres[None]) ** 2).sum(-1))
        residual = fitted**2 - radii**2 if kind.squared else fitted - radii
        terms = (wt * residual * residual).sum(1)
        best = int(np.argmin(terms))
        if terms[best] < terms[-1] * (1 - 1e-9):
            x[p] = candidates[best]
            moved = True
    return x if moved else None


def circle_crossings(centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """``(2m, 2)`` the points where each two of the circles about ``centres`` with ``radii`` cross (or come closest).

    Where two circles do not meet, the point on the line of their centres that is ``radii[a]`` from the
    first stands for both crossings. Coincident centres give none.
    """
    a, b = _pairs_of(len(centres))
    gap = centres[b] - centres[a]
    length = np.sqrt((gap * gap).sum(1))
    keep = length > 0
    a, b, gap, length = a[keep], b[keep], gap[keep], length[keep]
    along = gap / length[:, None]
    foot = (length**2 + radii[a] ** 2 - radii[b] ** 2) / (2 * length)
    height = np.sqrt(np.clip(radii[a] ** 2 - foot**2, 0.0, None))
    base = centres[a] + foot[:, None] * along
    across = np.stack([-along[:, 1], along[:, 0]], 1) * height[:, None]
    return np.concatenate([base + across, base - across])


@functools.lru_cache(maxsize=64)
def _pairs_of(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each two of ``k`` things, as ``np.triu_indices(k, 1)`` (cached: asked once a place)."""
    return np.triu_indices(k, 1)


RELAYOUT_SEEDS = 30
""":func:`relayout` tries the regions about this many places, those with the largest terms, each round."""

RELAYOUT_RADII = (2.0, 4.0, 8.0, 16.0)
""":func:`relayout`'s regions: the places within these multiples of the seed's nearest partner, by shortest path."""

RELAYOUT_MAX = 400
"""A :func:`relayout` region holds at most this many places (a larger one is skipped)."""

RELAYOUT_ROUNDS = 10
"""At most this many :func:`relayout` rounds; it stops at the first that lowers the objective by less than
:data:`RELAYOUT_GAIN` of it."""

RELAYOUT_GAIN = 1e-3
RELAYOUT_STEP = 1e-6
"""A region's new layout is kept where it lowers the objective by this share of it."""

EXACT_FIT = 1e-12
""":func:`relayout` stops once the objective is this share of where it began: the map fits exactly."""

RELAYOUT_OUTLIER = 4.0
"""Only places whose terms exceed this multiple of the median place's seed a :func:`relayout` region."""

RELAYOUT_ITERATIONS = 1000
"""Most L-BFGS iterations of one region's fit (at :data:`HOP_TOLERANCE`; the whole map is polished after)."""


def relayout(
    loss: str, x: np.ndarray, i: np.ndarray, j: np.ndarray, d: np.ndarray, w: np.ndarray, rounds: int = RELAYOUT_ROUNDS
) -> tuple[np.ndarray, bool]:
    """Crumpled regions laid out afresh: classical MDS of a region's own shortest paths, fitted with the rest held.

    The global stages (course objective, raw stress) settle the long distances and leave dense
    clusters crumpled, which a local loss then cannot undo: no single place's move lowers it (so
    :func:`relocate` finds nothing) and neither does mirroring the cluster. Each round takes the
    places with the largest terms of ``loss`` and, about each, the places within a few multiples of
    its nearest partner by shortest path through the known pairs (:data:`RELAYOUT_RADII`). The
    region's classical MDS of those paths (near distances, so the paths are close to them), turned
    onto its current positions both ways round, is the start of the region's own fit with every
    other place held; the lower of the two is kept where it lowers the objective. On a 500-place
    road-shaped pair list of US places (3-4 nearest + 2 far), the continuation ended weighted stress
    85.9x and Sammon 3.86x above the reference minimum (Los Angeles and Seattle crumpled); two
    rounds brought both to 1.0000x. Returns the map and whether anything moved.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    n, dim = x.shape
    kind = losses.get(loss)
    weights = w if kind.squared else _np_pair_weights(kind.power, d, w)
    graph = coo_matrix((np.r_[d, d], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    nearest = _nearest_partner(n, i, j, np.where(d > 0, d, np.inf))
    x, changed = x.copy(), False
    tried: dict[bytes, np.ndarray] = {}  # each region tried, with its places' positions then
    first = 0.0
    for _ in range(rounds):
        terms = _pair_terms(kind.squared, x, i, j, d, weights)
        per_place = np.bincount(i, terms, n) + np.bincount(j, terms, n)
        total, gain = float(terms.sum()), 0.0
        outliers = per_place > RELAYOUT_OUTLIER * np.median(per_place)
        for seed in np.argsort(-per_place, kind="stable")[:RELAYOUT_SEEDS]:
            if not np.isfinite(nearest[seed]) or not outliers[seed]:
                continue
            reach = dijkstra(graph, indices=int(seed), limit=RELAYOUT_RADII[-1] * nearest[seed])
            for radius in RELAYOUT_RADII:
                region = np.flatnonzero(reach <= radius * nearest[seed])
                key = region.tobytes()
                if len(region) < dim + 2 or len(region) > RELAYOUT_MAX or _unmoved(tried.get(key), x[region]):
                    continue
                tried[key] = x[region]
                found = _relayout_region(loss, x, region, graph, radius * nearest[seed], i, j, d, w, weights, total)
                if found is not None:  # the seed's region is laid out: on to the next seed
                    x, gain = found[0], gain + found[1]
                    break
        if gain > 0:  # the whole map settles about the new layouts before the next round looks for outliers
            x, changed = minimise_pairs(loss, x, i, j, d, w, tol=HOP_TOLERANCE), True
        first = first or total
        if gain < RELAYOUT_GAIN * total or total - gain <= EXACT_FIT * first:
            break
    return x, changed


def _unmoved(before: np.ndarray | None, now: np.ndarray) -> bool:
    """Whether a region was tried before and none of its places has moved a tenth of its span since."""
    if before is None:
        return False
    span = np.ptp(now, axis=0).max()
    return bool(np.abs(now - before).max() < 0.1 * span)


def _relayout_region(
    loss: str,
    x: np.ndarray,
    region: np.ndarray,
    graph: Any,
    radius: float,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    w: np.ndarray,
    weights: np.ndarray,
    total: float,
) -> tuple[np.ndarray, float] | None:
    """The map with ``region`` laid out afresh and fitted with the rest held, and by how much the objective fell.

    None where it lowers it by less than :data:`RELAYOUT_STEP` of ``total``.
    """
    from scipy.sparse.csgraph import dijkstra

    n, dim = x.shape
    inside = np.zeros(n, bool)
    inside[region] = True
    touching = inside[i] | inside[j]
    ti, tj, td, tw = i[touching], j[touching], d[touching], w[touching]
    squared = losses.get(loss).squared
    before = float(_pair_terms(squared, x, ti, tj, td, weights[touching]).sum())
    paths = dijkstra(graph, indices=region, limit=2 * radius)[:, region]  # two members are within 2 radii
    if not np.isfinite(paths).all():
        return None
    fresh = classical_mds(paths, dim)
    best, lowest = None, before - RELAYOUT_STEP * total
    # the sub-problem: the region and its held partners, over the pairs that touch the region
    nodes, local = np.unique(np.r_[ti, tj], return_inverse=True)
    li, lj = local[: len(ti)], local[len(ti) :]
    for mirror in (1.0, -1.0):
        z = fresh.copy()
        z[:, 0] *= mirror
        start = x.copy()
        start[region] = _turned_onto(z, x[region])
        y, value = minimise_pairs(
            loss, start[nodes], li, lj, td, tw, max_iter=RELAYOUT_ITERATIONS, value=True, tol=HOP_TOLERANCE,
            held=~inside[nodes],
        )  # fmt: skip
        if value < lowest:
            best, lowest = y, value
    if best is None:
        return None
    out = x.copy()
    out[nodes] = best
    return out, before - lowest


def _turned_onto(z: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``z`` rotated (never reflected or scaled) and shifted to fit ``target`` best (Kabsch)."""
    zc, tc = z - z.mean(0), target - target.mean(0)
    u, _, vt = np.linalg.svd(zc.T @ tc)
    flip = np.ones(len(u))
    flip[-1] = np.sign(np.linalg.det(u @ vt)) or 1.0
    return zc @ (u * flip) @ vt + target.mean(0)


def _pair_terms(
    squared: bool, x: np.ndarray, i: np.ndarray, j: np.ndarray, d: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Each pair's term of the loss: ``weights (dhat^2 - d^2)^2`` (course) or ``weights (dhat - d)^2``."""
    fitted = np.sqrt(((x[i] - x[j]) ** 2).sum(1))
    r = fitted * fitted - d * d if squared else fitted - d
    return weights * r * r


def basin_hops(
    loss: str, x: np.ndarray, value: float, i: np.ndarray, j: np.ndarray, d: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, float]:
    """Monotonic basin hopping: perturb the best map found, descend again, keep the lower, until hops stop paying.

    Returns the map and its objective.
    Each place is moved by a normal step of half the distance to its nearest partner (seeded, so the
    same table gives the same start). Folds of a few neighbouring places, which no single move and no
    global loss undoes, are left by one of the hops: on six 500-place pair lists (3-4 nearest + 2 far)
    raw stress ended at 0.994-1.017x the reference minimum (two below it), where the continuation
    alone ended at 1.007-6.2x.
    """
    rng = np.random.default_rng(0)
    nearest = _nearest_partner(len(x), i, j, d)
    step = 0.5 * np.where(np.isfinite(nearest), nearest, 0.0)[:, None]
    misses = 0
    for _ in range(HOPS):
        y, lower = descend(loss, x + step * rng.standard_normal(x.shape), i, j, d, w, tol=HOP_TOLERANCE)
        if lower < value * (1 - 1e-7):
            x, value, misses = y, lower, 0
        else:
            misses += 1
            if misses >= HOP_PATIENCE:
                break
    return descend(loss, x, i, j, d, w)


def minimise_pairs(
    loss: str,
    x: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    w: np.ndarray,
    max_iter: int = 20000,
    value: bool = False,
    tol: float = CONTINUATION_TOLERANCE,
    held: np.ndarray | None = None,
) -> Any:
    """``loss`` over the pairs ``(i, j)`` minimised from ``x`` by SciPy's L-BFGS, in float64 (deterministic).

    The objective is rescaled to start at 10^6, so that SciPy's tolerance on its change is relative.
    With ``value``, returns ``(x, objective at x)``. Places where ``held`` is True stay where they are.
    """
    kind = losses.get(loss)
    n, dim = x.shape
    # in units of the distances' root mean square: L-BFGS-B's first step moves the map by 1 whatever its size, and
    # on a map 0.04 across (the fit's normalised units) its line search ran out of trials and stopped short
    # (weighted stress on 500 places: 2.8x its optimum, where the same start in km reached it)
    positive = d[d > 0]
    unit = float(np.sqrt(np.mean(positive**2))) if len(positive) else 1.0
    unit = unit if np.isfinite(unit) and unit > 0 else 1.0
    original_d, x, d = d, x / unit, d / unit
    weights = w if kind.squared else _np_pair_weights(kind.power, d, w)

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        y = flat.reshape(n, dim)
        diff = y[i] - y[j]
        fitted = np.sqrt((diff * diff).sum(1))
        if kind.squared:
            r = fitted * fitted - d * d
            value, coefficient = float((weights * r * r).sum()), 4.0 * weights * r
        else:
            r = fitted - d
            value = float((weights * r * r).sum())
            coefficient = np.where(fitted > 0, 2.0 * weights * r / np.where(fitted > 0, fitted, 1.0), 0.0)
        step = coefficient[:, None] * diff
        grad = np.stack([np.bincount(i, step[:, k], n) - np.bincount(j, step[:, k], n) for k in range(dim)], 1)
        if held is not None:  # held places get no gradient, so L-BFGS never moves them
            grad[held] = 0.0
        return value, grad.ravel()

    out = _lbfgs(objective, x.ravel(), max_iter, tol, memory=20).x.reshape(n, dim) * unit
    if not value:
        return out
    own = w if kind.squared else _np_pair_weights(kind.power, original_d, w)
    return out, float(_pair_terms(kind.squared, out, i, j, original_d, own).sum())


def _np_pair_weights(power: float, d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``w d^power`` (pairs at distance 0 left out when ``power < 0``)."""
    if power == 0:
        return w
    return np.where(d > 0, w * np.where(d > 0, d, 1.0) ** power, 0.0)


def check_start(method: str, table: DistanceTable, dim: int, geometry: str = "plane") -> None:
    """Refuse, in one line, a start that cannot be made for this table, dimension and geometry."""
    if method not in STARTS:
        raise ConfigError(f"unknown start {method!r}: expected one of {', '.join(STARTS)}")
    if geometry == "sphere" and method not in ("random", "classical"):
        raise ConfigError(f"start {method!r} makes a flat map: use random or classical on a sphere")
    if method in ("mercator", "lambert"):
        if table.latlon is None:
            raise ConfigError(f"start {method!r} needs latitude/longitude in the input")
        if dim != 2:
            raise ConfigError(f"start {method!r} makes a 2-D map, but the model has dim={dim}")


def initial_coords(
    method: str,
    table: DistanceTable,
    dim: int,
    rng: np.random.Generator,
    scale: float = 1.0,
    loss: str = "stress",
    record: list[Stage] | None = None,
) -> np.ndarray:
    """Initial positions of a table's places in the units of ``distances / scale``.

    ``random`` ignores the distances; ``pivot`` is pivot MDS on the distances from about 100 pivots,
    through the known pairs by Dijkstra where pairs are missing (the standard start of sparse
    stress): O(pivots (m + n log n)), no ``n x n`` array; ``classical`` is Torgerson MDS on the whole
    matrix (shortest paths where pairs are missing), and pivot MDS above a size; ``mercator`` and
    ``lambert`` need latitude/longitude and a 2-D map; ``continuation`` is :func:`continuation` towards ``loss``.
    """
    n = table.n
    check_start(method, table, dim)
    if method == "continuation":
        return continuation(table, loss, dim, scale, record)
    if method == "random":
        return random_start(n, dim, rng)
    if method in ("mercator", "lambert"):
        return np.ascontiguousarray(projection_start(table.latlon, method) / scale)
    limit = CLASSICAL_LIMIT if table.complete else SPARSE_CLASSICAL_LIMIT
    if method == "classical" and n > limit:
        log.info(f"start classical on {n} places{'' if table.complete else ' with missing pairs'}: pivot MDS")
    if method == "pivot" or n > limit:
        return pivot_mds(table.path_columns, dim, rng=rng, n=n) / scale
    if dim not in table._classical:  # deterministic: computed once per table (anchors, start, quality guard)
        table._classical[dim] = classical_mds(full_distances(table), dim)
    return np.ascontiguousarray(table._classical[dim] / scale)


def sphere_start(
    table: DistanceTable, radius: float | None = None, flat: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Unit vectors of places on a sphere from great-circle-like distances, and the radius used.

    Classical MDS in 3-D on the chord lengths ``2R sin(d / 2R)`` gives points on a sphere about an
    unknown centre (MDS centres them on their centroid); the centre is found by least squares and
    each place becomes its direction from it. Unknown pairs are filled by shortest paths. Above
    :data:`CLASSICAL_LIMIT` places (:data:`SPARSE_CLASSICAL_LIMIT` with missing pairs), pivot MDS on
    the chords of the distances to 100 pivots replaces classical MDS: no ``n x n`` array.
    Without a given radius, the radius is chosen among candidates (from a quarter to 40 great
    circles' worth of the largest distance) by the stress-1 of the start it gives over the known pairs.

    ``flat``, a flat map of the places in the input's unit (the :func:`continuation` of a table with
    missing pairs), is a candidate too, wrapped onto each radius by the inverse azimuthal equidistant
    projection about its centre: shortest paths through a sparse table overstate the long distances,
    and chord MDS of them started a names-only 500-place pair list at stress-1 0.045 (the fit's end),
    where the wrapped continuation starts it at the optimum.
    """
    limit = CLASSICAL_LIMIT if table.complete else SPARSE_CLASSICAL_LIMIT
    if table.n > limit:
        pivots, columns = maxmin_pivots(table.path_columns, table.n, 100, np.random.default_rng(0))
        embed = lambda chords: pivot_embedding(pivots, chords, 3)  # noqa: E731
    else:
        pivots, columns = np.arange(table.n), full_distances(table)
        embed = lambda chords: classical_mds(chords, 3)  # noqa: E731
    columns = np.where(np.isfinite(columns), columns, np.nanmax(columns))
    i, j, d, w = table.known_values()
    top = float(np.nanmax(columns))
    candidates = [radius] if radius is not None else list(top / np.pi * np.geomspace(1.0, 40.0, 16))
    best: tuple[float, np.ndarray, float] | None = None
    for r in candidates:
        made = [_directions_from_centre(embed(2 * r * np.sin(np.clip(columns / (2 * r), 0, np.pi / 2))))]
        if flat is not None:
            made.append(_wrapped(flat, r))
        for u in made:
            angle = geo.central_angle(u[i], u[j]).numpy()
            stress = float(metrics.stress1(r * angle, d, w))
            if best is None or stress < best[0]:
                best = (stress, u, r)
    return np.ascontiguousarray(best[1]), float(best[2])


def settle_on_sphere(
    loss: str, u: np.ndarray, radius: float, table: DistanceTable, learn: bool, max_iter: int = 20000
) -> tuple[np.ndarray, float]:
    """``loss`` over the known pairs minimised on a sphere from the directions ``u`` (and ``radius``, learned or held).

    SciPy's L-BFGS in float64 through torch's autograd, in units of the distances' root mean square
    (the radius as its logarithm): the start of a sphere on a table with missing pairs. The epochs'
    L-BFGS in normalised units crept on a 500-place names-only pair list (0.18% an epoch at epoch 60,
    stress-1 0.0044) from the wrapped flat start.
    """
    from threadpoolctl import threadpool_limits

    kind = losses.get(loss)
    i, j, d, w = table.known_values()
    unit = float(np.sqrt(np.mean(d[d > 0] ** 2))) or 1.0
    ti, tj = torch.from_numpy(i), torch.from_numpy(j)
    td, tw = torch.from_numpy(d / unit), torch.from_numpy(w.astype(np.float64))
    n = len(u)

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        p = torch.from_numpy(flat).requires_grad_(True)
        v = p[:-1].view(n, 3)
        v = v / v.norm(dim=1, keepdim=True)
        r = p[-1].exp() if learn else torch.tensor(radius / unit, dtype=torch.float64)
        value = kind.terms(r * geo.central_angle(v[ti], v[tj]), td, tw).sum()
        (grad,) = torch.autograd.grad(value, p)
        return float(value.detach()), grad.numpy()

    with threadpool_limits(1):
        found = _lbfgs(objective, np.r_[u.ravel(), np.log(radius / unit)], max_iter, CONTINUATION_TOLERANCE).x
    v = found[:-1].reshape(n, 3)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v), float(np.exp(found[-1]) * unit) if learn else radius


def _lbfgs(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    start: np.ndarray,
    max_iter: int,
    tol: float,
    memory: int = 10,
) -> Any:
    """SciPy's L-BFGS-B from ``start`` on ``objective`` (value and gradient), to a relative tolerance ``tol``.

    Returns SciPy's result: ``x``, and ``success`` (stopped by its tolerance, not its iteration cap).

    L-BFGS-B's ``ftol`` is relative to ``max(|f|, 1)``: the objective is rescaled to start at 10^6, so it
    stays relative whatever the objective's unit.
    """
    from scipy.optimize import minimize

    norm = (objective(start)[0] or 1.0) * 1e-6

    def scaled(flat: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = objective(flat)
        return value / norm, grad / norm

    options = {"maxiter": max_iter, "maxfun": 2 * max_iter, "ftol": tol, "gtol": 1e-14, "maxcor": memory}
    return minimize(scaled, start, jac=True, method="L-BFGS-B", options=options)


def _nearest_partner(n: int, i: np.ndarray, j: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``(n,)`` each place's smallest ``d`` over its pairs (inf for a place in none)."""
    nearest = np.full(n, np.inf)
    np.minimum.at(nearest, i, d)
    np.minimum.at(nearest, j, d)
    return nearest


def _wrapped(flat: np.ndarray, radius: float) -> np.ndarray:
    """Unit vectors of a flat map wrapped onto a sphere of ``radius``: the inverse azimuthal equidistant projection.

    Each place keeps its distance and bearing from the map's centroid, which becomes the pole.
    """
    x = flat - flat.mean(0)
    rho = np.sqrt((x * x).sum(1))
    c = np.clip(rho / radius, 0.0, np.pi)
    theta = np.arctan2(x[:, 1], x[:, 0])
    return np.stack([np.sin(c) * np.cos(theta), np.sin(c) * np.sin(theta), np.cos(c)], 1)


def _directions_from_centre(x: np.ndarray) -> np.ndarray:
    """Unit directions of points ``x`` from the centre of the sphere that fits them best (least squares)."""
    design = np.hstack([2 * x, np.ones((len(x), 1))])
    solution, *_ = np.linalg.lstsq(design, (x**2).sum(axis=1), rcond=None)
    v = x - solution[:3]
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
