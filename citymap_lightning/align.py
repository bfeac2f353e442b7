"""Put a fitted map the right way round: north up, east right, origin at the centroid.

A fit only determines positions up to rotation, reflection and translation. With latitude and
longitude the map is fitted (rotation/reflection, no scaling) onto the places' projected true
positions; without them, named anchors give the course's rule (Copenhagen north of Rome, Reykjavik
west of Moscow); without either, the map's principal axis is laid east-west.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from citymap_lightning import geometry as geo

NORTH_ANCHORS = ("Copenhagen", "Rome")
"""The course's rule: the first city is placed due north of the second."""
WEST_ANCHORS = ("Reykjavik", "Moscow")
"""The course's rule: the first city ends west of the second (else the map is mirrored)."""


@dataclass
class Orientation:
    """An orthogonal map ``x -> (x - centre) @ rotation + offset``, applied the same to every snapshot."""

    rotation: np.ndarray
    centre: np.ndarray
    offset: np.ndarray

    def apply(self, coords: np.ndarray) -> np.ndarray:
        """Transform ``(..., n, dim)`` coordinates."""
        return (coords - self.centre) @ self.rotation + self.offset


@dataclass
class GeoFrame:
    """How a map's coordinates become latitude/longitude, for any point of the map (new places too).

    On a plane: ``inverse_azimuthal_equidistant(km_per_unit * p + shift, centre)``; with no
    ``centre`` (a sphere, or 3-D space about the Earth's centre): each point's direction.
    """

    centre: tuple[float, float] | None = None
    shift: np.ndarray | None = None
    km_per_unit: float = 1.0

    def latlon(self, coords: np.ndarray) -> np.ndarray:
        """``(m, 2)`` latitude/longitude in degrees of ``(m, dim)`` points in the map's frame."""
        if self.centre is None:
            return geo.from_unit_vectors(coords)
        shift = np.zeros(coords.shape[1]) if self.shift is None else self.shift
        return geo.inverse_azimuthal_equidistant(self.km_per_unit * coords + shift, self.centre)


def procrustes(source: np.ndarray, target: np.ndarray) -> Orientation:
    """The rotation/reflection and translation (no scaling) that best map ``source`` onto ``target``."""
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    u, _, vt = np.linalg.svd((source - mu_s).T @ (target - mu_t))
    return Orientation(rotation=u @ vt, centre=mu_s, offset=mu_t)


def anchor_rule(coords: np.ndarray, names: list[str]) -> Orientation | None:
    """The course's rule as a transform, when the anchor cities are among ``names`` (2-D only)."""
    index = {name: i for i, name in enumerate(names)}
    if coords.shape[1] != 2 or not all(a in index for a in NORTH_ANCHORS):
        return None
    up = coords[index[NORTH_ANCHORS[0]]] - coords[index[NORTH_ANCHORS[1]]]
    angle = np.pi / 2 - np.arctan2(up[1], up[0])
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, s], [-s, c]])
    if all(a in index for a in WEST_ANCHORS):
        turned = coords @ rotation
        if turned[index[WEST_ANCHORS[0]], 0] > turned[index[WEST_ANCHORS[1]], 0]:
            rotation = rotation @ np.diag([-1.0, 1.0])
    centre = coords.mean(axis=0)
    return Orientation(rotation=rotation, centre=centre, offset=np.zeros(2))


def principal_axes(coords: np.ndarray) -> Orientation:
    """Lay the map's longest extent along x (a deterministic choice when nothing else is known)."""
    centre = coords.mean(axis=0)
    _, _, vt = np.linalg.svd(coords - centre, full_matrices=False)
    rotation = vt.T
    signs = np.sign(np.sum(((coords - centre) @ rotation) ** 3, axis=0))
    rotation = rotation * np.where(signs == 0, 1.0, signs)
    return Orientation(rotation=rotation, centre=centre, offset=np.zeros(coords.shape[1]))


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[Orientation, float]:
    """The rotation/reflection, scale and translation that best map ``source`` onto ``target``, and the scale.

    The returned orientation rotates only (``(x - centre) @ rotation + offset`` with no scaling);
    ``scale * (x - centre) @ rotation + offset`` lands on ``target``.
    """
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    a, b = source - mu_s, target - mu_t
    u, singular, vt = np.linalg.svd(a.T @ b)
    scale = float(singular.sum() / max((a * a).sum(), np.finfo(float).tiny))
    return Orientation(rotation=u @ vt, centre=mu_s, offset=mu_t), scale


def true_plane(latlon: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The places' true positions (km) on an azimuthal equidistant map about their spherical centre."""
    centre = geo.spherical_centre(latlon)
    return geo.azimuthal_equidistant(latlon, centre), centre


def orient(coords: np.ndarray, names: list[str]) -> Orientation:
    """Orient a 2-D map without latitude/longitude: the course's anchor rule when it applies, else principal axes."""
    rule = anchor_rule(coords, names)
    return rule if rule is not None else principal_axes(coords)


def rotation_only(source: np.ndarray, target: np.ndarray) -> Orientation:
    """The rotation/reflection about the origin that best maps ``source`` onto ``target`` (a sphere's centre stays)."""
    u, _, vt = np.linalg.svd(source.T @ target)
    zero = np.zeros(source.shape[1])
    return Orientation(rotation=u @ vt, centre=zero, offset=zero)


def orient_geometry(
    coords: np.ndarray, names: list[str], latlon: np.ndarray | None, geometry: str, radius: float | None = None
) -> tuple[Orientation, np.ndarray | None, GeoFrame | None]:
    """The transform that puts a fitted map in the real frame, the places' latitude/longitude on it, and the frame.

    ``plane``: rotation/reflection onto the azimuthal equidistant projection of the true positions,
    latitude/longitude through that projection's inverse. ``sphere`` (vectors of length ``radius``):
    rotation/reflection about the centre onto the true directions. ``space``: rotation/reflection
    and translation onto the true positions in 3-D (the Earth's centre at the origin), the
    latitude/longitude being each point's direction. Without latitude/longitude, latitude/longitude
    is None and the map is oriented by :func:`orient` (plane) or its principal axes; so is a ``plane``
    of a dimension other than 2, which has no projection to be aligned on.
    """
    if geometry == "plane" and coords.shape[1] != 2:
        return principal_axes(coords), None, None
    if latlon is None:
        if geometry == "plane":
            return orient(coords, names), None, None
        if geometry == "sphere":
            zero = np.zeros(coords.shape[1])
            return Orientation(np.eye(coords.shape[1]), zero, zero), geo.from_unit_vectors(coords), GeoFrame()
        return principal_axes(coords), None, None
    if geometry == "plane":
        truth, centre = true_plane(latlon)
        fit = procrustes(coords, truth)
        estimate = geo.inverse_azimuthal_equidistant(fit.apply(coords), centre)
        frame = GeoFrame(centre, fit.offset.copy())
        fit.offset = np.zeros(2)
        return fit, estimate, frame
    directions = geo.to_unit_vectors(latlon)
    if geometry == "sphere":
        fit = rotation_only(coords, directions)
        return fit, geo.from_unit_vectors(fit.apply(coords)), GeoFrame()
    fit = procrustes(coords, directions * (radius or geo.EARTH_RADIUS_KM))
    return fit, geo.from_unit_vectors(fit.apply(coords)), GeoFrame()


OUTLIER_FACTOR = 10.0
"""A place found by name is left out of the alignment when it lies more than this times the median
distance of the kept ones from its match..."""
OUTLIER_SHARE = 0.05
"""... and more than this share of the matched places' spread (RMS distance from their centroid): on an
exact table the median is a few km, and a place 20 km off is no wrong match. Also the tolerance within
which a trial fit counts a match as agreeing."""
TRIALS = 200
"""Random triples of matches tried as the robust fit's start (all of them when there are fewer)."""


@dataclass
class RobustFit:
    """A similarity fitted on the matches that agree with it: ``scale * (x - centre) @ rotation + offset``."""

    orientation: Orientation
    scale: float
    inliers: np.ndarray
    """``(n,)`` bool: the matches the fit was made on."""
    residuals: np.ndarray
    """``(n,)`` each match's distance from its target after the fit (target units)."""


def robust_similarity(source: np.ndarray, target: np.ndarray, trials: int = TRIALS, seed: int = 0) -> RobustFit:
    """The similarity that maps most of ``source`` onto ``target``, unmoved by wrong matches.

    The start is the best of the least-squares fit of all matches and of ``trials`` triples
    (deterministic for a seed) by MSAC, each match costing its squared residual up to a tolerance of
    :data:`OUTLIER_SHARE` of the spread: a triple of right matches wins even when most are wrong.
    Then trimmed least squares from the matches within that tolerance: refit on those within
    :data:`OUTLIER_FACTOR` times their median residual (or the tolerance), until the set stops
    changing. This chooses the frame only; every match gets its residual. Fewer than 3 matches
    agreeing leave ``inliers`` with fewer than 3.
    """
    n = len(source)
    tolerance = OUTLIER_SHARE * float(np.sqrt(((target - target.mean(axis=0)) ** 2).sum(axis=1).mean()))

    def fit(keep: np.ndarray) -> tuple[Orientation, float, np.ndarray]:
        orientation, scale = similarity(source[keep], target[keep])
        moved = scale * (source - orientation.centre) @ orientation.rotation + orientation.offset
        return orientation, scale, np.linalg.norm(moved - target, axis=1)

    def cost(residuals: np.ndarray) -> float:
        return float((np.minimum(residuals, tolerance) ** 2).sum())

    best = fit(np.ones(n, dtype=bool))
    if n >= 3:
        rng = np.random.default_rng(seed)
        if math.comb(n, 3) <= trials:
            triples = np.array(list(itertools.combinations(range(n), 3)))
        else:
            triples = np.array([rng.choice(n, 3, replace=False) for _ in range(trials)])
        for triple in triples:
            keep = np.zeros(n, dtype=bool)
            keep[triple] = True
            candidate = fit(keep)
            if candidate[1] > 0 and cost(candidate[2]) < cost(best[2]):
                best = candidate
    orientation, scale, residuals = best
    inliers = residuals <= tolerance
    for _ in range(50):
        if inliers.sum() < 3:
            break
        orientation, scale, residuals = fit(inliers)
        kept = residuals <= max(OUTLIER_FACTOR * float(np.median(residuals[inliers])), tolerance)
        if np.array_equal(kept, inliers):
            break
        inliers = kept
    return RobustFit(orientation, scale, inliers, residuals)


@dataclass
class NamesFrame:
    """The real frame of a flat map from places found by name, and how each match agreed with it.

    Attributes:
        orientation: rotation/reflection of the map (input units) about its centroid, north up.
        frame: how its points become latitude/longitude; ``km_per_unit`` is the fitted scale.
        kept: ``(m,)`` bool over the matches: those the frame was fitted on.
        km: ``(m,)`` great-circle km from each match's position to where the map, so aligned, puts it.
        enough: whether the kept matches fix a frame (3 or more, not on one line, and most of the matches).

    """

    orientation: Orientation
    frame: GeoFrame
    kept: np.ndarray
    km: np.ndarray
    enough: bool


def frame_from_names(coords: np.ndarray, places: np.ndarray, latlon: np.ndarray) -> NamesFrame:
    """Fit a 2-D map (input units) onto the places found by name (``places``, at ``latlon``), robustly.

    The projection's centre is the kept matches' spherical centre: a wrong match on another
    continent moves neither the centre nor the fit.
    """
    kept = np.ones(len(places), dtype=bool)
    for _ in range(2):  # the second pass projects about the kept matches' centre
        centre = geo.spherical_centre(latlon[kept] if kept.sum() >= 3 else latlon)
        fit = robust_similarity(coords[places], geo.azimuthal_equidistant(latlon, centre))
        kept = fit.inliers
    orientation = Orientation(fit.orientation.rotation, coords.mean(axis=0), np.zeros(2))
    shift = (
        fit.scale * (orientation.centre - fit.orientation.centre) @ fit.orientation.rotation + fit.orientation.offset
    )
    frame = GeoFrame(centre, shift, fit.scale)
    km = geo.haversine(frame.latlon(orientation.apply(coords[places])), latlon)
    enough = bool(kept.sum() * 2 > len(kept) and non_collinear(latlon[kept]))
    return NamesFrame(orientation, frame, kept, km, enough)


def non_collinear(latlon: np.ndarray) -> bool:
    """At least 3 places that span a plane (not all on one great-circle line)."""
    if len(latlon) < 3:
        return False
    xy = geo.azimuthal_equidistant(latlon, geo.spherical_centre(latlon))
    singular = np.linalg.svd(xy - xy.mean(axis=0), compute_uv=False)
    return bool(singular[-1] > 1e-3 * singular[0])
