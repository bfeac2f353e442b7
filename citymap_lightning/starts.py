"""Initial positions: the course's random start, classical (Torgerson) MDS and map projections."""

from __future__ import annotations

import numpy as np

from citymap_lightning import geo
from citymap_lightning.errors import ConfigError

STARTS = ("random", "classical", "mercator", "lambert")
"""Start names accepted by :func:`initial_coords`."""


def random_start(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """The course's start: standard normal positions divided by the Frobenius norm of their distance matrix."""
    x = rng.standard_normal((n, dim))
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    return x / np.linalg.norm(d)


def classical_mds(distances: np.ndarray, dim: int, known: np.ndarray | None = None) -> np.ndarray:
    """Classical (Torgerson) MDS: the top eigenvectors of the double-centred squared distances.

    Unknown pairs (``known`` False) are filled with the shortest-path distance through known pairs,
    which keeps the start on the right side of the map for sparse inputs.
    """
    d = np.array(distances, dtype=np.float64)
    if known is not None and not known.all():
        d = _shortest_paths(np.where(known, d, np.inf))
    n = d.shape[0]
    centring = np.eye(n) - 1.0 / n
    b = -0.5 * centring @ (d**2) @ centring
    values, vectors = np.linalg.eigh(b)
    order = np.argsort(values)[::-1][:dim]
    return vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))


def _shortest_paths(d: np.ndarray) -> np.ndarray:
    """All-pairs shortest paths (Floyd-Warshall, vectorised); unreachable pairs stay infinite."""
    d = d.copy()
    np.fill_diagonal(d, 0.0)
    for k in range(d.shape[0]):
        np.minimum(d, d[:, k : k + 1] + d[k : k + 1, :], out=d)
    return d


def projection_start(latlon: np.ndarray, kind: str) -> np.ndarray:
    """Positions (km) of the places on a Mercator or Lambert conformal conic map about their centre."""
    centre = geo.spherical_centre(latlon)
    if kind == "mercator":
        return geo.mercator(latlon, centre)
    return geo.lambert_conformal_conic(latlon, centre)


def initial_coords(
    method: str,
    distances: np.ndarray,
    dim: int,
    rng: np.random.Generator,
    known: np.ndarray | None = None,
    latlon: np.ndarray | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """Initial positions in the units of ``distances / scale``.

    ``random`` ignores the distances; ``classical`` uses them; ``mercator`` and ``lambert`` need
    latitude/longitude and a 2-D map.
    """
    n = distances.shape[0]
    if method == "random":
        return random_start(n, dim, rng)
    if method == "classical":
        return np.ascontiguousarray(classical_mds(distances, dim, known) / scale)
    if method in ("mercator", "lambert"):
        if latlon is None:
            raise ConfigError(f"start {method!r} needs latitude/longitude in the input")
        if dim != 2:
            raise ConfigError(f"start {method!r} makes a 2-D map, but the model has dim={dim}")
        return np.ascontiguousarray(projection_start(latlon, method) / scale)
    raise ConfigError(f"unknown start {method!r}: expected one of {', '.join(STARTS)}")
