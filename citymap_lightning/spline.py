"""The warp of a time-space map: the real plane carried onto the map by a thin-plate spline that does not fold.

A thin-plate spline through every place reproduces each place's displacement exactly, and between
sparse places that disagree (a town on a fast line pulled past its slower neighbour) it folds the
plane over itself: the distortion grid crosses itself and wanders far past the places. The spline
here is regularised instead: ``scipy.interpolate.RBFInterpolator``'s ``smoothing`` (a penalty on the
spline's bending, against its distance from the places) is the least, on a ladder of
:data:`SMOOTHING`, for which the warp's Jacobian determinant keeps the sign of the places' affine fit
(at least :data:`MIN_AREA` of its area scale) everywhere in the region drawn. The places' own
coordinates are scaled to their extent first, so the smoothing is the same for km, miles or hours.
A map with no fold between its places keeps the exact spline (smoothing 0).

The region is the places' convex hull grown by :data:`HULL_MARGIN` of their extent: the grid and the
coastlines carried by the warp are drawn there only, never extrapolated far over the sea.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SPLINE_PLACES = 1000
"""The spline goes through at most this many places (an even sample beyond)."""
HULL_MARGIN = 0.1
"""The region drawn: the places' convex hull grown by this share of their extent (the larger side)."""
SMOOTHING = (0.0, *(10.0 ** np.arange(-6.0, 3.01, 0.25)))
"""The smoothing tried, least first (in the places' coordinates scaled to their extent)."""
MIN_AREA = 0.02
"""The warp's least area scale anywhere in the region, as a share of the places' affine fit's: above 0, it
does not fold."""
LATTICE = 60
"""The Jacobian is checked on a ``LATTICE x LATTICE`` lattice over the region (the points inside it)."""


@dataclass
class Region:
    """The places' convex hull grown by a margin: ``inside`` where ``normals @ p + offsets <= 0`` for every facet."""

    normals: np.ndarray
    offsets: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def contains(self, points: np.ndarray) -> np.ndarray:
        """``(m,)`` bool: which of ``(m, 2)`` points lie in the region."""
        points = np.asarray(points, dtype=np.float64)
        return (points @ self.normals.T + self.offsets <= 0).all(axis=1)

    def lattice(self, cells: int = LATTICE) -> np.ndarray:
        """The points of a ``cells x cells`` lattice over the region's bounding box that lie inside it."""
        x, y = np.meshgrid(np.linspace(self.low[0], self.high[0], cells), np.linspace(self.low[1], self.high[1], cells))
        points = np.stack([x.ravel(), y.ravel()], axis=1)
        return points[self.contains(points)]


def hull_region(points: np.ndarray, margin: float = HULL_MARGIN) -> Region:
    """The convex hull of ``points`` grown by ``margin`` times their extent.

    Their bounding box, so grown, when the hull is flat (fewer than 3 places, or all on a line).
    """
    from scipy.spatial import ConvexHull, QhullError

    points = np.asarray(points, dtype=np.float64)
    grow = margin * max(float(np.ptp(points, axis=0).max()), np.finfo(float).tiny)
    try:
        equations = ConvexHull(points).equations
    except (QhullError, ValueError):
        equations = np.array([[1.0, 0, -points[:, 0].max()], [-1.0, 0, points[:, 0].min()],
                              [0, 1.0, -points[:, 1].max()], [0, -1.0, points[:, 1].min()]])  # fmt: skip
    normals, offsets = equations[:, :2], equations[:, 2] - grow
    return Region(normals, offsets, points.min(axis=0) - grow, points.max(axis=0) + grow)


def _even_sample(m: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``m`` items, evenly spread (deterministic)."""
    return np.arange(m) if m <= limit else np.unique(np.linspace(0, m - 1, limit).round().astype(np.int64))


class _Similarity:
    """The places' least-squares similarity, the warp of places that span no plane (fewer than 3, or on a line)."""

    def __init__(self, source: np.ndarray, target: np.ndarray) -> None:
        from citymap_lightning import align

        self.orientation, self.scale = align.similarity(source, target)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        o = self.orientation
        return self.scale * (points - o.centre) @ o.rotation + o.offset


@dataclass
class Warp:
    """Points of the real plane carried onto the map: ``warp(points)``.

    Attributes:
        spline: the thin-plate spline (of the places' coordinates scaled to their extent), or their similarity
            when they span no plane.
        smoothing: the spline's smoothing (0: it goes through every place).
        region: where the warp is drawn (the places' hull and a margin, on the real plane).
        places: how many places the spline was fitted to.

    """

    spline: object
    centre: np.ndarray
    spread: float
    smoothing: float
    region: Region
    places: int
    affine_area: float

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        if len(points) == 0:
            return points.reshape(0, 2).copy()
        return self.spline((points - self.centre) / self.spread)

    def area_scale(self, points: np.ndarray) -> np.ndarray:
        """The Jacobian determinant at ``points`` over the affine fit's (positive: the warp does not fold there)."""
        if isinstance(self.spline, _Similarity):
            return np.ones(len(points))
        return _area_scale(self.spline, (np.asarray(points, dtype=np.float64) - self.centre) / self.spread,
                           self.affine_area)  # fmt: skip


def _area_scale(spline: object, scaled: np.ndarray, affine_area: float) -> np.ndarray:
    """The spline's Jacobian determinant (central differences) at ``scaled`` points, over ``affine_area``."""
    h = 1e-5
    dx = (spline(scaled + [h, 0.0]) - spline(scaled - [h, 0.0])) / (2 * h)
    dy = (spline(scaled + [0.0, h]) - spline(scaled - [0.0, h])) / (2 * h)
    return (dx[:, 0] * dy[:, 1] - dx[:, 1] * dy[:, 0]) / affine_area


def fit(real: np.ndarray, mapped: np.ndarray, region: Region | None = None) -> Warp:
    """The least-smoothed thin-plate spline from the places ``real`` onto ``mapped`` that does not fold.

    ``real``: ``(m, 2)`` places on the real plane; ``mapped``: the same places on the map; ``region``: where
    it must not fold (default: :func:`hull_region` of ``real``). Fewer than 3 distinct places, or places on a
    line, give their similarity (no plane's warp to fit).
    """
    from scipy.interpolate import RBFInterpolator

    real, mapped = np.asarray(real, dtype=np.float64), np.asarray(mapped, dtype=np.float64)
    region = hull_region(real) if region is None else region
    keep = _even_sample(len(real), MAX_SPLINE_PLACES)
    source, first = np.unique(real[keep], axis=0, return_index=True)
    target = mapped[keep][first]
    centre = source.mean(axis=0) if len(source) else np.zeros(2)
    spread = float(np.ptp(source, axis=0).max()) if len(source) else 1.0
    spread = spread if spread > 0 else 1.0
    scaled = (source - centre) / spread
    if len(source) < 3:
        return Warp(_Similarity(scaled, target), centre, spread, 0.0, region, len(source), 1.0)
    affine = np.linalg.lstsq(np.column_stack([scaled, np.ones(len(scaled))]), target, rcond=None)[0]
    affine_area = float(np.linalg.det(affine[:2]))
    if abs(affine_area) <= 1e-12 * float(np.abs(affine[:2]).max()) ** 2:  # on a line: no plane to keep unfolded
        return Warp(_Similarity(scaled, target), centre, spread, 0.0, region, len(source), 1.0)
    lattice = (region.lattice() - centre) / spread

    def spline_at(smoothing: float) -> tuple[object, bool]:
        try:
            spline = RBFInterpolator(scaled, target, kernel="thin_plate_spline", smoothing=max(smoothing, 1e-10))
        except (np.linalg.LinAlgError, ValueError):  # (nearly) on a line: the spline's polynomial part is singular
            return _Similarity(scaled, target), False
        return spline, bool(len(lattice) == 0 or _area_scale(spline, lattice, affine_area).min() >= MIN_AREA)

    spline, unfolded = spline_at(SMOOTHING[0])
    if unfolded:
        return Warp(spline, centre, spread, SMOOTHING[0], region, len(source), affine_area)
    low, high = 0, len(SMOOTHING) - 1  # the least smoothing that does not fold: bisection (more smoothing, less fold)
    best, ok = spline_at(SMOOTHING[high])
    if not ok:  # not even a nearly affine spline: the similarity, smoothing without end
        return Warp(_Similarity(scaled, target), centre, spread, float("inf"), region, len(source), 1.0)
    while high - low > 1:
        middle = (low + high) // 2
        candidate, ok = spline_at(SMOOTHING[middle])
        if ok:
            high, best = middle, candidate
        else:
            low = middle
    return Warp(best, centre, spread, float(SMOOTHING[high]), region, len(source), affine_area)


def grid_lines(region: Region, lines: int = 15, steps: int = 201) -> list[np.ndarray]:
    """A regular grid of ``lines`` lines each way over the region's bounding box: the pieces inside the region."""
    low, high = region.low, region.high
    t = np.linspace(0.0, 1.0, steps)
    out = []
    x, y = low[0] + t * (high[0] - low[0]), low[1] + t * (high[1] - low[1])
    for k in np.linspace(0.0, 1.0, lines):
        across = np.stack([x, np.full_like(t, low[1] + k * (high[1] - low[1]))], axis=1)
        up = np.stack([np.full_like(t, low[0] + k * (high[0] - low[0])), y], axis=1)
        for line in (across, up):
            out.extend(runs(line, region.contains(line)))
    return out


def runs(line: np.ndarray, inside: np.ndarray) -> list[np.ndarray]:
    """The pieces of a polyline made of consecutive points ``inside`` (2 points at least)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(np.int8), [0]])))
    return [line[a:b] for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= 2]
