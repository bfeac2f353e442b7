"""An independent reference minimiser for the conformance matrix, and the data it is measured on.

Nothing here imports ``citymap_lightning``: the objectives, their gradients, the starts and the
minimiser are written again with numpy and scipy alone, so that the package's result can be judged
against a minimum it had no hand in. The tests import this file (``tests/`` is on ``sys.path``
under pytest) and so does ``benchmarks/conformance.py``.

Objectives, over the known pairs ``i < j`` with weights ``w`` (1 where not given), given values
``d`` and map distances ``dhat``:

- ``course``: ``sum w (dhat^2 - d^2)^2``;
- ``stress``: ``sum w (dhat - d)^2``;
- ``weighted_stress``: ``sum w / d^2 (dhat - d)^2`` (pairs with ``d = 0`` left out);
- ``sammon``: ``sum w / d (dhat - d)^2`` (pairs with ``d = 0`` left out).

Under a transform (stress-type losses only) the pair weights ``W`` are the loss's (``w``, ``w/d^2``
or ``w/d``, with ``d`` the given value ``t``), and the objective is

- ``interval``: ``min over a, b of sum W (t - a - b dhat)^2 / sum W (t - mean_W t)^2``;
- ``ordinal``: ``sum W (dhat - dp)^2 / sum W dhat^2``, ``dp`` the isotonic regression of ``dhat``
  on the order of ``t`` (ties in ``t`` ordered by ``dhat``: the primary approach).

Geometries: ``plane`` (dim 2), ``space`` (dim 3) and ``sphere`` (each point a direction, distances
``R * atan2(|u x v|, u . v)``; the radius is given, or learned when ``radius`` is None).
Anchored places are held at given coordinates; only the others move.

The minimiser (:func:`reference_minimize`) runs scipy's L-BFGS-B with analytic gradients and tight
tolerances from several starts (the true positions when known, classical MDS of the shortest-path
completed table, a continuation course -> stress -> the loss, and SMACOF for stress-type losses on
flat maps) and keeps the lowest objective.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize, sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parent.parent
EARTH_RADIUS_KM = 6371.0088
LOSS_POWER = {"course": 0.0, "stress": 0.0, "weighted_stress": -2.0, "sammon": -1.0}
"""Each loss's exponent of ``d`` in its pair weights (``course`` compares squared distances instead)."""
LOSSES = tuple(LOSS_POWER)
GEOMETRY_DIM = {"plane": 2, "space": 3, "sphere": 3}

# ---- objectives --------------------------------------------------------------------------------------------------


def pair_weights(loss: str, d: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Each pair's weight in the loss: ``w * d^power``, 0 for pairs with ``d = 0`` when the power is negative."""
    w = np.ones_like(d) if w is None else np.asarray(w, dtype=float)
    power = LOSS_POWER[loss]
    if power == 0:
        return w
    safe = np.where(d > 0, d, 1.0)
    return np.where(d > 0, w * safe**power, 0.0)


def _isotonic(dhat: np.ndarray, t: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Disparities: the weighted isotonic regression of ``dhat`` on the order of ``t`` (primary ties)."""
    order = np.lexsort((dhat, t))
    fitted = optimize.isotonic_regression(dhat[order], weights=np.maximum(weights[order], 1e-300)).x
    out = np.empty_like(dhat)
    out[order] = fitted
    return out


def pair_loss(
    loss: str, dhat: np.ndarray, d: np.ndarray, w: np.ndarray | None, transform: str = "ratio"
) -> tuple[float, np.ndarray]:
    """The objective over the pairs and its derivative with respect to each pair's map distance."""
    if loss == "course":
        if transform != "ratio":
            raise ValueError("the course objective takes no transform")
        w = np.ones_like(d) if w is None else w
        r = dhat**2 - d**2
        return float((w * r * r).sum()), 4.0 * w * r * dhat
    weights = pair_weights(loss, d, w)
    if transform == "ratio":
        r = dhat - d
        return float((weights * r * r).sum()), 2.0 * weights * r
    if transform == "interval":
        total = weights.sum()
        mean_t = (weights * d).sum() / total
        mean_f = (weights * dhat).sum() / total
        cf = dhat - mean_f
        b = (weights * cf * (d - mean_t)).sum() / max((weights * cf * cf).sum(), 1e-300)
        a = mean_t - b * mean_f
        spread = (weights * (d - mean_t) ** 2).sum()
        r = d - a - b * dhat
        # a and b are the minimisers: the envelope theorem leaves only the direct derivative
        return float((weights * r * r).sum() / spread), -2.0 * weights * b * r / spread
    if transform == "ordinal":
        dp = _isotonic(dhat, d, weights)
        num = float((weights * (dhat - dp) ** 2).sum())
        den = float((weights * dhat**2).sum())
        grad = (2.0 * weights * (dhat - dp) * den - num * 2.0 * weights * dhat) / den**2
        return num / den, grad
    raise ValueError(f"unknown transform {transform!r}")


def _flat_distances(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diff = x[i] - x[j]
    return np.sqrt((diff * diff).sum(1)), diff


def _sphere_parts(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, ...]:
    """Angles between the directions of ``x[i]`` and ``x[j]``, with what their gradient needs."""
    norm = np.linalg.norm(x, axis=1)
    u = x / norm[:, None]
    ui, uj = u[i], u[j]
    cross = np.cross(ui, uj)
    s = np.sqrt((cross * cross).sum(1))
    c = (ui * uj).sum(1)
    return np.arctan2(s, c), ui, uj, s, c, norm


def map_distances(
    coords: np.ndarray, i: np.ndarray, j: np.ndarray, geometry: str = "plane", radius: float | None = None
) -> np.ndarray:
    """Map distances of the pairs ``(i, j)``; on a sphere with ``radius`` None, the radius is the points' mean norm."""
    coords = np.asarray(coords, dtype=float)
    if geometry == "sphere":
        radius = float(np.linalg.norm(coords, axis=1).mean()) if radius is None else radius
        return radius * _sphere_parts(coords, i, j)[0]
    return _flat_distances(coords, i, j)[0]


def objective(
    loss: str,
    coords: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    w: np.ndarray | None = None,
    geometry: str = "plane",
    radius: float | None = None,
    transform: str = "ratio",
) -> float:
    """The objective ``loss`` of any coordinates (n x dim) over the pairs ``(i, j)`` with given values ``d``.

    On a sphere the points are directions; ``radius`` None takes the points' mean norm (a written
    ``coordinates.csv`` of a sphere has them on the sphere, in the input's unit).
    """
    dhat = map_distances(coords, np.asarray(i), np.asarray(j), geometry, radius)
    return pair_loss(loss, dhat, np.asarray(d, dtype=float), None if w is None else np.asarray(w, float), transform)[0]


def value_and_grad(
    loss: str,
    coords: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    w: np.ndarray | None = None,
    geometry: str = "plane",
    radius: float = 1.0,
    transform: str = "ratio",
) -> tuple[float, np.ndarray, float]:
    """The objective, its gradient with respect to the coordinates, and its derivative with respect to the radius."""
    n, dim = coords.shape
    if geometry == "sphere":
        theta, ui, uj, s, c, norm = _sphere_parts(coords, i, j)
        value, g = pair_loss(loss, radius * theta, d, w, transform)
        gt = radius * g / np.maximum(s, 1e-300)
        # d theta / d x_i = -(u_j - c u_i) / (s |x_i|): the component along u_i is 0
        gi = -(uj - c[:, None] * ui) * (gt / norm[i])[:, None]
        gj = -(ui - c[:, None] * uj) * (gt / norm[j])[:, None]
        d_radius = float((g * theta).sum())
    else:
        dhat, diff = _flat_distances(coords, i, j)
        value, g = pair_loss(loss, dhat, d, w, transform)
        gi = diff * (g / np.maximum(dhat, 1e-300))[:, None]
        gj = -gi
        d_radius = 0.0
    grad = np.empty((n, dim))
    for k in range(dim):
        grad[:, k] = np.bincount(i, gi[:, k], minlength=n) + np.bincount(j, gj[:, k], minlength=n)
    return value, grad, d_radius


# ---- starts ------------------------------------------------------------------------------------------------------


def completed_matrix(n: int, i: np.ndarray, j: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The n x n table with its missing pairs filled by shortest paths through the known ones."""
    graph = sparse.coo_matrix((np.maximum(d, 1e-12), (i, j)), shape=(n, n)).tocsr()
    return csgraph.shortest_path(graph, method="D", directed=False)


def classical_mds(full: np.ndarray, dim: int) -> np.ndarray:
    """Torgerson's classical MDS of a complete n x n distance matrix."""
    sq = full**2
    b = -0.5 * (sq - sq.mean(0) - sq.mean(1)[:, None] + sq.mean())
    vals, vecs = np.linalg.eigh(b)
    top = np.argsort(vals)[::-1][:dim]
    return vecs[:, top] * np.sqrt(np.maximum(vals[top], 1e-12 * max(vals.max(), 1e-300)))[None, :]


def sphere_start(full: np.ndarray, radius: float) -> np.ndarray:
    """Classical MDS in 3-D of the chord lengths ``2 R sin(d / 2R)``: points near a sphere."""
    chord = 2 * radius * np.sin(np.minimum(full / (2 * radius), np.pi / 2))
    x = classical_mds(chord, 3)
    # the centre of the sphere through the points: |x|^2 = 2 x . c + (R^2 - |c|^2), least squares in (c, k)
    design = np.c_[2 * x, np.ones(len(x))]
    (cx, cy, cz, _), *_ = np.linalg.lstsq(design, (x * x).sum(1), rcond=None)
    centre = np.array([cx, cy, cz])
    if not np.all(np.isfinite(centre)) or np.linalg.norm(centre) > 10 * radius:
        centre = x.mean(0) - radius * np.array([0.0, 0.0, 1.0])  # nearly flat: put the centre below the plane
    return x - centre


def latlon_to_unit(latlon: np.ndarray) -> np.ndarray:
    """Unit vectors of latitude/longitude in degrees."""
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], 1)


def azimuthal_equidistant(latlon: np.ndarray, radius: float = EARTH_RADIUS_KM) -> np.ndarray:
    """Latitude/longitude on the azimuthal equidistant plane about their mean direction (km, x east, y north)."""
    u = latlon_to_unit(latlon)
    centre = u.mean(0)
    centre /= np.linalg.norm(centre)
    east = np.cross([0.0, 0.0, 1.0], centre)
    east /= np.linalg.norm(east)
    north = np.cross(centre, east)
    c = u @ centre
    tangent = u - c[:, None] * centre
    s = np.linalg.norm(tangent, axis=1)
    angle = np.arctan2(s, c)
    scale = np.where(s > 0, radius * angle / np.maximum(s, 1e-300), radius)
    return np.stack([(tangent @ east) * scale, (tangent @ north) * scale], 1)


def true_start(latlon: np.ndarray, geometry: str, radius: float = EARTH_RADIUS_KM) -> np.ndarray:
    """The true positions in a geometry: projected (plane), on the Earth (space, sphere)."""
    if geometry == "plane":
        return azimuthal_equidistant(latlon, radius)
    return radius * latlon_to_unit(latlon)


def smacof(
    x: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    weights: np.ndarray,
    anchored: np.ndarray | None = None,
    iterations: int = 500,
    tol: float = 1e-10,
) -> np.ndarray:
    """SMACOF's Guttman transforms of raw stress with pair weights ``weights`` (anchored rows held)."""
    n = len(x)
    wmat = sparse.coo_matrix((np.r_[weights, weights], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).toarray()
    v = np.diag(wmat.sum(1)) - wmat
    free = np.ones(n, bool) if anchored is None else ~anchored
    if anchored is None or not anchored.any():
        solve = np.linalg.pinv(v + 1.0 / n) - 1.0 / n  # V's pseudo-inverse, V having the ones as its null space
    else:
        solve = np.linalg.inv(v[np.ix_(free, free)])
        coupling = v[np.ix_(free, anchored)] @ x[anchored]
    x = x.copy()
    last = math.inf
    for _ in range(iterations):
        dhat, _ = _flat_distances(x, i, j)
        value = float((weights * (dhat - d) ** 2).sum())
        if last - value <= tol * value:
            break
        last = value
        ratio = weights * d / np.maximum(dhat, 1e-300)
        bmat = sparse.coo_matrix((np.r_[-ratio, -ratio], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).toarray()
        bmat[np.diag_indices(n)] = -bmat.sum(1)
        bx = bmat @ x
        if anchored is None or not anchored.any():
            x = solve @ bx
        else:
            x[free] = solve @ (bx[free] - coupling)
    return x


# ---- the minimiser -----------------------------------------------------------------------------------------------


@dataclass
class Reference:
    """The reference minimum of one problem: its value in input units, the coordinates, and every start's value."""

    value: float
    coords: np.ndarray
    radius: float | None
    best_start: str
    starts: dict[str, float] = field(default_factory=dict)


def lbfgs(
    loss: str,
    x0: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    w: np.ndarray | None,
    geometry: str,
    radius: float,
    learn_radius: bool = False,
    anchored: np.ndarray | None = None,
    transform: str = "ratio",
    maxiter: int = 50_000,
) -> tuple[np.ndarray, float, float]:
    """Minimise by L-BFGS-B from ``x0`` (anchored rows held); returns coordinates, radius and value."""
    n, dim = x0.shape
    free = np.ones(n, bool) if anchored is None else ~anchored
    x0 = x0.astype(float).copy()
    # a normalised objective, so that the tolerances mean the same on every table
    scale = pair_loss(loss, map_distances(x0, i, j, geometry, radius), d, w, transform)[0] or 1.0

    def unpack(p: np.ndarray) -> tuple[np.ndarray, float]:
        x = x0.copy()
        x[free] = p[: free.sum() * dim].reshape(-1, dim)
        return x, (math.exp(p[-1]) if learn_radius else radius)

    def fun(p: np.ndarray) -> tuple[float, np.ndarray]:
        x, r = unpack(p)
        value, grad, d_radius = value_and_grad(loss, x, i, j, d, w, geometry, r, transform)
        out = grad[free].ravel()
        if learn_radius:
            out = np.r_[out, d_radius * r]
        return value / scale, out / scale

    p0 = x0[free].ravel()
    bounds = None
    if learn_radius:  # the log of the radius, kept within a factor e^6 of its start (a cap flattens as R grows)
        p0 = np.r_[p0, math.log(radius)]
        bounds = [(None, None)] * (len(p0) - 1) + [(math.log(radius) - 6, math.log(radius) + 6)]
    with _one_blas_thread():
        res = optimize.minimize(
            fun,
            p0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": maxiter, "maxfun": 2 * maxiter, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 30},
        )
    x, r = unpack(res.x)
    return x, r, float(res.fun * scale)


def _one_blas_thread() -> object:
    """One BLAS thread: L-BFGS-B's small products ran 10x slower with OpenBLAS threads on a busy 2-core machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, as many threads as BLAS takes
        return nullcontext()
    return threadpool_limits(1)


def reference_minimize(
    loss: str,
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    w: np.ndarray | None = None,
    geometry: str = "plane",
    radius: float | None = EARTH_RADIUS_KM,
    transform: str = "ratio",
    true: np.ndarray | None = None,
    anchors: dict[int, np.ndarray] | None = None,
    radius_start: float = EARTH_RADIUS_KM,
    smacof_limit: int = 3000,
) -> Reference:
    """The lowest objective found from every start, in input units.

    Args:
        loss, transform: the objective (see the module).
        n, i, j, d, w: the places and the known pairs ``i < j`` with given values and weights.
        geometry, radius: ``plane``, ``space`` or ``sphere``; a sphere's radius is learned when None.
        true: true positions in the geometry (n x dim), a start when known (see :func:`true_start`).
        anchors: held places, index -> coordinates in the geometry (on a sphere, a direction).
        radius_start: the learned radius's start (and the chord start's radius).
        smacof_limit: SMACOF (dense n x n) is a start up to this many places.

    """
    i, j, d = np.asarray(i), np.asarray(j), np.asarray(d, dtype=float)
    w = None if w is None else np.asarray(w, dtype=float)
    dim = GEOMETRY_DIM[geometry]
    learn = geometry == "sphere" and radius is None
    # work in units where the typical distance is 1: the tolerances then mean the same everywhere
    unit = float(np.sqrt(np.mean(d[d > 0] ** 2)))
    ds = d / unit
    r0 = (radius_start if learn else (radius or 1.0)) / unit if geometry == "sphere" else 1.0
    anchored = np.zeros(n, bool)
    held = np.zeros((n, dim))
    for k, xy in (anchors or {}).items():
        anchored[k] = True
        held[k] = np.asarray(xy, float) / unit
    if geometry == "sphere" and anchored.any():
        held[anchored] *= r0 / np.linalg.norm(held[anchored], axis=1, keepdims=True)

    def place(x: np.ndarray) -> np.ndarray:
        """A start with the anchors put in: moved onto them by a similarity fit first (flat maps)."""
        x = x.copy()
        if not anchored.any():
            return x
        if geometry != "sphere" and anchored.sum() >= dim + 1:
            x = _similarity_onto(x, anchored, held[anchored])
        elif geometry == "sphere":
            x = _rotation_onto(x, anchored, held[anchored])
        x[anchored] = held[anchored]
        return x

    candidates: dict[str, np.ndarray] = {}
    if true is not None:
        candidates["true"] = place(np.asarray(true, float) / unit)
    full = completed_matrix(n, i, j, ds)
    classical = sphere_start(full, r0) if geometry == "sphere" else classical_mds(full, dim)
    candidates["classical"] = place(classical)

    results: dict[str, tuple[np.ndarray, float, float]] = {}

    def run(name: str, x: np.ndarray, target: str = loss, r: float = r0) -> tuple[np.ndarray, float, float]:
        return lbfgs(target, x, i, j, ds, w, geometry, r, learn, anchored, transform if target == loss else "ratio")

    for name, x in candidates.items():
        results[name] = run(name, x)
    # the continuation: the course objective settles the global shape, then raw stress, then the loss
    # (under a transform: raw stress on the given values, then under the transform, then the loss)
    x, r = candidates["classical"], r0
    chain = [("stress", "ratio")] if loss == "course" else [("course", "ratio"), ("stress", "ratio")]
    if transform != "ratio":
        chain.append(("stress", transform))
    for step, kind in chain:
        if (step, kind) != (loss, transform):
            x, r, _ = lbfgs(step, x, i, j, ds, w, geometry, r, learn, anchored, kind)
    results["continuation"] = run("continuation", x, r=r)
    if loss != "course" and transform == "ratio" and geometry != "sphere" and n <= smacof_limit:
        weights = pair_weights(loss, ds, w)
        for name in ("classical", "continuation"):
            start = candidates["classical"] if name == "classical" else results["continuation"][0]
            results[f"smacof({name})"] = run("smacof", smacof(start, i, j, ds, weights, anchored))
    best = min(results, key=lambda k: results[k][2])
    x, r, _ = results[best]
    coords = x * unit
    out_radius = r * unit if geometry == "sphere" else None
    if geometry == "sphere":
        coords = coords / np.linalg.norm(coords, axis=1, keepdims=True) * out_radius
    value = objective(loss, coords, i, j, d, w, geometry, out_radius, transform)
    starts = {}
    for name, (xs, rs, _) in results.items():
        rr = rs * unit if geometry == "sphere" else None
        starts[name] = objective(loss, xs * unit, i, j, d, w, geometry, rr, transform)
    return Reference(value, coords, out_radius, best, starts)


def _similarity_onto(x: np.ndarray, rows: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``x`` moved by the similarity (rotation, reflection, scale, shift) best fitting ``x[rows]`` onto ``target``."""
    a, b = x[rows], target
    ma, mb = a.mean(0), b.mean(0)
    u, s, vt = np.linalg.svd((a - ma).T @ (b - mb))
    rot = u @ vt
    scale = s.sum() / max(((a - ma) ** 2).sum(), 1e-300)
    return (x - ma) @ rot * scale + mb


def _rotation_onto(x: np.ndarray, rows: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Directions ``x`` turned by the orthogonal map that best fits ``x[rows]`` onto ``target`` (about the centre)."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    a, s, bt = np.linalg.svd(u[rows].T @ t)
    return x @ (a @ bt)


# ---- data: generated tables, deterministic from a seed, not tuned to the package ------------------------------------


GAZETTEER = ROOT / "citymap_lightning" / "gazetteer.tsv.gz"
"""GeoNames cities of 15,000 people or more (the data file bundled with the repository, read here as plain TSV)."""


@dataclass
class Table:
    """A generated table: the places, the known pairs ``i < j`` and their given values, and what is true of them."""

    kind: str
    names: list[str]
    i: np.ndarray
    j: np.ndarray
    d: np.ndarray
    w: np.ndarray | None = None
    latlon: np.ndarray | None = None
    """True latitude/longitude (degrees) where known."""
    anchors: list[int] = field(default_factory=list)
    """Indices of the anchored places (the anchors CSV holds their latitude/longitude)."""

    @property
    def n(self) -> int:
        return len(self.names)


def us_places(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` random places of the 48 contiguous US states with 15,000 people or more (GeoNames), names made unique."""
    rows = []
    with gzip.open(GAZETTEER, "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            lat, lon = float(row["latitude"]), float(row["longitude"])
            if row["country"] == "US" and 24 < lat < 50 and -125 < lon < -66:
                rows.append((int(row["geonameid"]), row["name"], lat, lon))
    rows.sort()
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
    chosen = [rows[k] for k in pick]
    counts: dict[str, int] = {}
    for _, name, _, _ in chosen:
        counts[name] = counts.get(name, 0) + 1
    names = [name if counts[name] == 1 else f"{name} #{gid}" for gid, name, _, _ in chosen]
    return names, np.array([[lat, lon] for _, _, lat, lon in chosen])


def great_circle(latlon: np.ndarray, i: np.ndarray, j: np.ndarray, radius: float = EARTH_RADIUS_KM) -> np.ndarray:
    """Great-circle distances (km) of the pairs, by the haversine formula."""
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    h = np.sin((lat[j] - lat[i]) / 2) ** 2 + np.cos(lat[i]) * np.cos(lat[j]) * np.sin((lon[j] - lon[i]) / 2) ** 2
    return 2 * radius * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def all_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``i < j``."""
    return np.triu_indices(n, 1)


def places_table(n: int, seed: int = 0) -> Table:
    """(a) Places from latitude/longitude: every pair known, great-circle km."""
    names, latlon = us_places(n, seed)
    i, j = all_pairs(n)
    return Table("places", names, i, j, great_circle(latlon, i, j), latlon=latlon)


def _connect(n: int, pairs: set[tuple[int, int]], latlon: np.ndarray) -> set[tuple[int, int]]:
    """Add, for each group of places the pairs leave apart, the shortest link to the first group."""
    while True:
        i, j = (np.array(v, dtype=int) for v in zip(*sorted(pairs), strict=True))
        graph = sparse.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
        count, label = csgraph.connected_components(graph, directed=False)
        if count == 1:
            return pairs
        inside, outside = np.flatnonzero(label == label[0]), np.flatnonzero(label != label[0])
        tree = cKDTree(latlon_to_unit(latlon[inside]))
        dist, near = tree.query(latlon_to_unit(latlon[outside]))
        k = int(np.argmin(dist))
        a, b = int(inside[near[k]]), int(outside[k])
        pairs.add((min(a, b), max(a, b)))


def road_pairs(latlon: np.ndarray, nearest: tuple[int, int] = (3, 4), far: int = 2, seed: int = 0) -> set:
    """A road-shaped pair set: each place's 3 or 4 nearest neighbours plus ``far`` random partners, connected."""
    n = len(latlon)
    rng = np.random.default_rng(seed)
    tree = cKDTree(latlon_to_unit(latlon))
    _, near = tree.query(latlon_to_unit(latlon), k=max(nearest) + 1)
    pairs: set[tuple[int, int]] = set()
    for a in range(n):
        k = int(rng.integers(nearest[0], nearest[1] + 1))
        for b in [int(v) for v in near[a, 1:] if v != a][:k]:
            pairs.add((min(a, b), max(a, b)))
        for b in rng.choice(n - 1, size=far, replace=False):
            b = int(b) + (b >= a)
            pairs.add((min(a, b), max(a, b)))
    return _connect(n, pairs, latlon)


def pairs_table(n: int, seed: int = 0, nearest: tuple[int, int] = (3, 4), far: int = 2) -> Table:
    """(b, f) The places as a sparse pair list: a few nearest neighbours and random far partners, great-circle km."""
    names, latlon = us_places(n, seed)
    pairs = sorted(road_pairs(latlon, nearest, far, seed + 1))
    i, j = (np.array(v) for v in zip(*pairs, strict=True))
    return Table("pairs", names, i, j, great_circle(latlon, i, j), latlon=latlon)


def holey_table(n: int, seed: int = 0, empty: float = 1 / 3) -> Table:
    """(c) A full matrix with a third of its pairs empty (symmetric), the rest still connected."""
    names, latlon = us_places(n, seed)
    rng = np.random.default_rng(seed + 2)
    i, j = all_pairs(n)
    # a random spanning tree is never emptied: each place after the first links to an earlier one
    order = rng.permutation(n)
    keep = set()
    for k in range(1, n):
        a, b = int(order[k]), int(order[rng.integers(0, k)])
        keep.add((min(a, b), max(a, b)))
    code = i * n + j
    protected = np.isin(code, [a * n + b for a, b in keep])
    candidates = np.flatnonzero(~protected)
    gone = rng.choice(candidates, size=int(round(empty * len(i))), replace=False)
    known = np.ones(len(i), bool)
    known[gone] = False
    i, j = i[known], j[known]
    return Table("holey", names, i, j, great_circle(latlon, i, j), latlon=latlon)


def matrix_table(n: int, seed: int = 0) -> Table:
    """A names-only full matrix of great-circle km (no coordinates in the file)."""
    names, latlon = us_places(n, seed)
    i, j = all_pairs(n)
    return Table("matrix", names, i, j, great_circle(latlon, i, j), latlon=latlon)


def anchored_table(n: int, seed: int = 0, share: float = 0.1) -> Table:
    """(d) A names-only full matrix, with about ``share`` of its places anchored at their latitude/longitude."""
    names, latlon = us_places(n, seed)
    i, j = all_pairs(n)
    anchors = sorted(int(k) for k in np.random.default_rng(seed + 3).choice(n, max(3, round(share * n)), False))
    return Table("anchored", names, i, j, great_circle(latlon, i, j), latlon=latlon, anchors=anchors)


def eurodist_table() -> Table:
    """(e) R's eurodist: road km between 21 European cities, no coordinates."""
    with open(ROOT / "data" / "eurodist.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    names = rows[0][1:]
    full = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    i, j = all_pairs(len(names))
    return Table("eurodist", names, i, j, full[i, j])


def write_table(table: Table, folder: Path) -> tuple[Path, Path | None]:
    """Write the table in the format a user would bring it in; returns the data file and the anchors file (or None)."""
    folder.mkdir(parents=True, exist_ok=True)
    if table.kind == "places":
        path = folder / "places.csv"
        rows = [[name, repr(float(a)), repr(float(b))] for name, (a, b) in zip(table.names, table.latlon, strict=True)]
        _write_csv(path, ["name", "latitude", "longitude"], rows)
    elif table.kind == "pairs":
        path = folder / "pairs.csv"
        rows = [
            [table.names[a], table.names[b], repr(float(v))] for a, b, v in zip(table.i, table.j, table.d, strict=True)
        ]
        if table.w is not None:
            rows = [[*row, repr(float(v))] for row, v in zip(rows, table.w, strict=True)]
        _write_csv(path, ["source", "target", "distance"] + ([] if table.w is None else ["weight"]), rows)
    else:
        path = folder / f"{table.kind}.csv"
        full = np.full((table.n, table.n), np.nan)
        full[table.i, table.j] = table.d
        full[table.j, table.i] = table.d
        np.fill_diagonal(full, 0.0)
        rows = [
            [name, *("" if np.isnan(v) else repr(float(v)) for v in row)]
            for name, row in zip(table.names, full, strict=True)
        ]
        _write_csv(path, ["", *table.names], rows)
    if not table.anchors:
        return path, None
    anchors = folder / "anchors.csv"
    rows = [[table.names[k], repr(float(table.latlon[k, 0])), repr(float(table.latlon[k, 1]))] for k in table.anchors]
    _write_csv(anchors, ["name", "latitude", "longitude"], rows)
    return path, anchors


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)


def read_coordinates(path: Path, names: list[str]) -> np.ndarray:
    """A written ``coordinates.csv`` as an n x dim array in the order of ``names``."""
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f))
    axes = [k for k, column in enumerate(rows[0]) if re.fullmatch(r"x\d*|y|z", column)]
    by_name = {row[0]: [float(row[k]) for k in axes] for row in rows[1:]}
    return np.array([by_name[name] for name in names])
