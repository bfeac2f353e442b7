"""Where fitted points live and how far apart they are: :class:`Plane` and :class:`Sphere`; great circles; projections.

A geometry object is chosen once (:func:`of`) from ``--model.geometry`` and ``--model.dim``; the
solvers, the starts and the result ask it for distances instead of comparing mode strings. The one
great-circle formula for fitted points is :func:`central_angle`; :func:`haversine` serves
latitude/longitude. The projections put a fitted map in the real frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), the radius every great-circle distance in the package uses."""


def haversine(latlon_a: np.ndarray, latlon_b: np.ndarray, radius: float = EARTH_RADIUS_KM) -> np.ndarray:
    """Great-circle distance between points given as ``(..., 2)`` arrays of latitude, longitude in degrees.

    The two arrays broadcast against each other, so ``haversine(p[:, None], p[None, :])`` is the
    full distance matrix of the points ``p``.
    """
    a = np.radians(np.asarray(latlon_a, dtype=np.float64))
    b = np.radians(np.asarray(latlon_b, dtype=np.float64))
    dlat = b[..., 0] - a[..., 0]
    dlon = b[..., 1] - a[..., 1]
    h = np.sin(dlat / 2) ** 2 + np.cos(a[..., 0]) * np.cos(b[..., 0]) * np.sin(dlon / 2) ** 2
    return 2 * radius * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def distance_matrix(latlon: np.ndarray, radius: float = EARTH_RADIUS_KM) -> np.ndarray:
    """The ``n x n`` great-circle distance matrix of ``n`` places (exactly symmetric, zero diagonal).

    Computed from chord lengths, ``2 R asin(|u_i - u_j| / 2)`` with ``|u_i - u_j|^2 = 2 - 2 u_i . u_j``:
    one matrix product instead of four trigonometric functions per pair, in torch's threads (0.5 s
    at n = 5,000 on 2 cores, against 2.2 s for the same in numpy and 20 s for haversine),
    and in float64 exact to a millimetre for places a kilometre apart; pairs closer than about 60 m
    are recomputed by :func:`haversine`, so that identical places are exactly 0 apart.
    """
    latlon = np.asarray(latlon, dtype=np.float64)
    u = torch.from_numpy(to_unit_vectors(latlon))
    d = great_circle_block(u, u, radius)
    d = torch.maximum(d, d.T)  # the product's rounding is not exactly symmetric
    close = torch.nonzero(torch.triu(d < 0.06 * radius / EARTH_RADIUS_KM, 1)).numpy()
    d.fill_diagonal_(0.0)
    d = d.numpy()
    if len(close):
        exact = haversine(latlon[close[:, 0]], latlon[close[:, 1]], radius)
        d[close[:, 0], close[:, 1]] = exact
        d[close[:, 1], close[:, 0]] = exact
    return d


def central_angle(u: torch.Tensor | np.ndarray, v: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The angle between the 3-D vectors ``u`` and ``v`` (``(..., 3)``, broadcast; any length), in float64.

    The package's one formula for great-circle distances between fitted points: ``atan2(|u x v|, u . v)``
    is accurate for near and antipodal points alike, and its gradient stays finite for close points,
    where ``arccos`` has an infinite one and float32 rounds nearby cities together. The cross product
    is taken by components: ``torch.linalg.cross`` on expanded tensors is ~40x slower.
    """
    u, v = (torch.as_tensor(t).double() for t in (u, v))
    cx = u[..., 1] * v[..., 2] - u[..., 2] * v[..., 1]
    cy = u[..., 2] * v[..., 0] - u[..., 0] * v[..., 2]
    cz = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    sine = (cx * cx + cy * cy + cz * cz).clamp_min(1e-300).sqrt()
    return torch.atan2(sine, (u * v).sum(-1))


def great_circle_block(rows: torch.Tensor, units: torch.Tensor, radius: float = EARTH_RADIUS_KM) -> torch.Tensor:
    """Great-circle distances ``(len(rows), len(units))`` between unit vectors (see :func:`distance_matrix`)."""
    half_chord = (rows @ units.T).mul_(-2.0).add_(2.0).clamp_(0.0, 4.0).sqrt_().mul_(0.5)
    return half_chord.asin_().mul_(2.0 * radius)


def lengths(differences: torch.Tensor) -> torch.Tensor:
    """Euclidean lengths over the last axis, kept above float's tiny so that their gradient stays finite."""
    return differences.square().sum(-1).clamp_min(torch.finfo(differences.dtype).tiny).sqrt()


def chord_great_circle(a: np.ndarray, b: np.ndarray, radius: float = EARTH_RADIUS_KM) -> np.ndarray:
    """Great-circle distances between rows of unit vectors ``a`` and ``b`` (``(m, 3)`` each), from their chords.

    The same distances as :func:`haversine` of the points' latitude/longitude (to about 1e-12 km), in
    a third of its time: no trigonometry but one arcsine.
    """
    diff = a - b
    half_chord = np.sqrt(np.einsum("ij,ij->i", diff, diff)) * 0.5
    return 2.0 * radius * np.arcsin(np.minimum(half_chord, 1.0))


def to_unit_vectors(latlon: np.ndarray) -> np.ndarray:
    """Points on the unit sphere (x towards 0N 0E, z towards the North Pole) of latitude/longitude degrees."""
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


def from_unit_vectors(xyz: np.ndarray) -> np.ndarray:
    """Latitude/longitude degrees of 3-D vectors (normalised first)."""
    xyz = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    lat = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    return np.stack([lat, lon], axis=1)


def spherical_centre(latlon: np.ndarray) -> tuple[float, float]:
    """Latitude/longitude of the normalised mean of the places' unit vectors."""
    mean = to_unit_vectors(latlon).mean(axis=0, keepdims=True)
    lat, lon = from_unit_vectors(mean)[0]
    return float(lat), float(lon)


def azimuthal_equidistant(
    latlon: np.ndarray, centre: tuple[float, float], radius: float = EARTH_RADIUS_KM
) -> np.ndarray:
    """Project latitude/longitude onto a plane (km, x east, y north) keeping distances from ``centre`` true.

    Distances between places near the centre are nearly true too, which makes this the natural
    "true map" to align a fitted map onto.
    """
    lat0, lon0 = np.radians(centre)
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    dlon = lon - lon0
    cos_c = np.sin(lat0) * np.sin(lat) + np.cos(lat0) * np.cos(lat) * np.cos(dlon)
    c = np.arccos(np.clip(cos_c, -1.0, 1.0))
    k = np.where(c > 1e-12, c / np.maximum(np.sin(c), 1e-300), 1.0)
    x = k * np.cos(lat) * np.sin(dlon)
    y = k * (np.cos(lat0) * np.sin(lat) - np.sin(lat0) * np.cos(lat) * np.cos(dlon))
    return radius * np.stack([x, y], axis=1)


def inverse_azimuthal_equidistant(
    xy: np.ndarray, centre: tuple[float, float], radius: float = EARTH_RADIUS_KM
) -> np.ndarray:
    """Latitude/longitude degrees of plane points (km) of :func:`azimuthal_equidistant` about ``centre``."""
    lat0, lon0 = np.radians(centre)
    x, y = xy[:, 0] / radius, xy[:, 1] / radius
    c = np.hypot(x, y)
    safe_c = np.where(c > 1e-12, c, 1.0)
    lat = np.arcsin(
        np.clip(np.cos(c) * np.sin(lat0) + np.where(c > 1e-12, y * np.sin(c) * np.cos(lat0) / safe_c, 0.0), -1, 1)
    )
    lon = lon0 + np.arctan2(x * np.sin(c), c * np.cos(lat0) * np.cos(c) - y * np.sin(lat0) * np.sin(c))
    lon = (lon + np.pi) % (2 * np.pi) - np.pi
    return np.degrees(np.stack([lat, lon], axis=1))


def mercator(latlon: np.ndarray, centre: tuple[float, float], radius: float = EARTH_RADIUS_KM) -> np.ndarray:
    """Mercator projection (km) scaled to be true at the centre's latitude, origin at the centre."""
    lat0, lon0 = np.radians(centre)
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    k = radius * np.cos(lat0)
    x = k * (lon - lon0)
    y = k * (np.log(np.tan(np.pi / 4 + lat / 2)) - np.log(np.tan(np.pi / 4 + lat0 / 2)))
    return np.stack([x, y], axis=1)


def lambert_conformal_conic(
    latlon: np.ndarray, centre: tuple[float, float], radius: float = EARTH_RADIUS_KM
) -> np.ndarray:
    """Lambert conformal conic projection (km), standard parallels at the places' latitude range quartiles."""
    lat0, lon0 = np.radians(centre)
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    phi1, phi2 = np.quantile(lat, [0.25, 0.75])
    if abs(phi2 - phi1) < 1e-6:
        n = np.sin(phi1)
    else:
        n = np.log(np.cos(phi1) / np.cos(phi2)) / np.log(np.tan(np.pi / 4 + phi2 / 2) / np.tan(np.pi / 4 + phi1 / 2))
    if abs(n) < 1e-9:
        return mercator(latlon, centre, radius)
    f = np.cos(phi1) * np.tan(np.pi / 4 + phi1 / 2) ** n / n
    rho = radius * f / np.tan(np.pi / 4 + lat / 2) ** n
    rho0 = radius * f / np.tan(np.pi / 4 + lat0 / 2) ** n
    theta = n * (lon - lon0)
    return np.stack([rho * np.sin(theta), rho0 - rho * np.cos(theta)], axis=1)


@dataclass(frozen=True)
class Plane:
    """Euclidean space of ``dim`` dimensions: a flat map (``plane``, 2-D) or ``space`` (3-D, or any ``dim``)."""

    dim: int = 2
    name: str = "plane"
    curved = False

    def pair_distances(
        self, coords: torch.Tensor, i: torch.Tensor, j: torch.Tensor, radius: object = None
    ) -> torch.Tensor:
        """``(restarts, m)`` distances of the pairs ``(i[k], j[k])`` of each map, with gradient."""
        i, j = i.to(coords.device), j.to(coords.device)
        return lengths(coords[:, i] - coords[:, j])

    def distances(self, coords: torch.Tensor, radius: object = None) -> torch.Tensor:
        """``(restarts, n, n)`` Euclidean distances between the points of each map ``(restarts, n, dim)``.

        Uses ``torch.cdist`` without its matrix-multiply shortcut, which in float32 leaves errors of
        about 3e-4 relative on the diagonal: far more than the residuals this problem ends with.
        """
        return torch.cdist(coords, coords, compute_mode="donot_use_mm_for_euclid_dist")


@dataclass(frozen=True)
class Sphere:
    """The surface of a sphere: each place a 3-D vector whose direction is its position; distances are great-circle.

    ``radius`` is the given radius in the input's unit, ``learn``, or None (the Earth's for
    latitude/longitude inputs, else learned); the radius in use is a per-restart tensor the model holds.
    """

    radius: float | str | None = None
    dim: int = 3
    name: str = "sphere"
    curved = True

    def pair_distances(
        self, coords: torch.Tensor, i: torch.Tensor, j: torch.Tensor, radius: torch.Tensor
    ) -> torch.Tensor:
        """``(restarts, m)`` great-circle distances (float64) of the pairs ``(i[k], j[k])``, with gradient."""
        i, j = i.to(coords.device), j.to(coords.device)
        return radius.double()[:, None] * central_angle(coords[:, i], coords[:, j])

    def distances(self, coords: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """``(restarts, n, n)`` great-circle distances between unnormalised 3-D vectors (float64).

        ``radius`` is a scalar or one value per restart.
        """
        u = coords.double()
        u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        radius = torch.as_tensor(radius, dtype=torch.float64, device=coords.device).reshape(-1, 1, 1)
        return radius * central_angle(u[:, :, None, :], u[:, None, :, :])


Geometry = Plane | Sphere

GEOMETRIES = ("plane", "space", "sphere")
"""Values of ``model.geometry``."""


def of(name: str, dim: int | None = None, radius: float | str | None = None) -> Geometry:
    """The geometry ``name`` (one of :data:`GEOMETRIES`) of ``dim`` dimensions (None: its own, 2 or 3)."""
    if name == "sphere":
        return Sphere(radius)
    return Plane(dim or (2 if name == "plane" else 3), name)
