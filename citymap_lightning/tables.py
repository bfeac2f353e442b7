"""Distance tables: one interface, three kinds.

- :class:`MatrixTable`: a dense ``n x n`` matrix (NaN marks an unknown pair), with per-pair weights;
- :class:`PlacesTable`: latitude/longitude; great-circle distances are computed when asked for,
  and no ``n x n`` array is ever held;
- :class:`PairTable`: only some pairs are known, as COO arrays ``i < j, d, w``: memory O(pairs).

Everything downstream (validation, starts, fitting, the map callback) goes through the methods of
:class:`DistanceTable`; only :meth:`DistanceTable.matrix` builds an ``n x n`` array for the kinds
that hold none, and it is meant for small inputs (``pairs_fitted.csv``, tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from citymap_lightning import geometry as geo

BLOCK = 2**23
"""Elements per block of rows when a table is scanned by rows (64 MB of float64)."""


@dataclass
class DistanceTable:
    """Places and the known distances between them (the interface every kind implements).

    Attributes:
        names: place names, in input order.
        latlon: ``(n, 2)`` latitude/longitude in degrees when the input had them, else None.
        source: the file the table came from.
        unit: the distances' unit when known ("km" for great-circle distances), else "".
        kind: ``places``, ``matrix`` or ``pairs``: the input's format.
        located: for inputs without latitude/longitude, the places found by name in the gazetteer
            (a :class:`~citymap_lightning.gazetteer.Match`), which fix the map's frame and scale.
        anchors: places held at known positions (a :class:`~citymap_lightning.anchors.Placed`): they
            fix the map's frame, before latitude/longitude and the gazetteer.
        positions: real positions of some places (a :class:`~citymap_lightning.comparison.Positions`), compared
            with the map and never fitted; they fix the frame after anchors and latitude/longitude, before
            the gazetteer.
        skew: for an asymmetric matrix averaged by ``symmetrize``, its skew-symmetric part ``(A - A^T) / 2``.
        asymmetry_share: the skew part's Frobenius norm over the table's, with ``skew``.

    """

    names: list[str]
    latlon: np.ndarray | None = None
    source: str = ""
    unit: str = ""
    kind: str = "matrix"
    located: Any = None
    anchors: Any = None
    positions: Any = None
    skew: np.ndarray | None = field(default=None, repr=False, compare=False)
    asymmetry_share: float | None = None
    _nearest: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    _classical: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    _paths: dict[str, csr_matrix] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n(self) -> int:
        """Number of places."""
        return len(self.names)

    @property
    def n_pairs(self) -> int:
        """Number of unordered pairs."""
        return self.n * (self.n - 1) // 2

    @property
    def n_known_pairs(self) -> int:
        """Number of unordered pairs with a known distance (and a positive weight)."""
        raise NotImplementedError

    @property
    def complete(self) -> bool:
        """Every pair is known."""
        return self.n_known_pairs == self.n_pairs

    @property
    def unit_weights(self) -> bool:
        """Every known pair has weight 1."""
        raise NotImplementedError

    def known_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every known pair ``i < j`` (for a complete table, all ``n (n - 1) / 2`` of them)."""
        raise NotImplementedError

    def known_values(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every known pair ``i < j`` with its distance and weight."""
        i, j = self.known_pairs()
        return i, j, self.pair_distances(i, j), self.pair_weights(i, j)

    def pair_distances(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Distances of the known pairs ``(i[k], j[k])``."""
        raise NotImplementedError

    def pair_weights(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Weights of the known pairs ``(i[k], j[k])``."""
        raise NotImplementedError

    def columns(self, cols: np.ndarray) -> np.ndarray:
        """``(n, len(cols))`` distances from every place to the places ``cols`` (NaN where unknown)."""
        raise NotImplementedError

    def path_columns(self, cols: np.ndarray) -> np.ndarray:
        """Like :meth:`columns`, with unknown pairs filled by the shortest path through known pairs (Dijkstra)."""
        if self.complete:
            return self.columns(cols)
        if "graph" not in self._paths:  # both directions, made once: pivot MDS asks for 100 columns one by one
            graph = self.graph()
            self._paths["graph"] = (graph + graph.T).tocsr()
        return dijkstra(self._paths["graph"], directed=True, indices=np.asarray(cols)).T

    def graph(self) -> csr_matrix:
        """The known pairs as a sparse ``n x n`` graph weighted by distance (zero distances made tiny)."""
        i, j, d, _ = self.known_values()
        positive = d[d > 0]
        tiny = float(positive.min()) * 1e-9 if positive.size else 1e-300
        return coo_matrix((np.maximum(d, tiny), (i, j)), shape=(self.n, self.n)).tocsr()

    def matrix(self) -> np.ndarray:
        """``(n, n)`` distances, NaN where unknown. Builds the whole matrix: for small inputs only."""
        d = np.full((self.n, self.n), np.nan)
        i, j, values, _ = self.known_values()
        d[i, j] = d[j, i] = values
        np.fill_diagonal(d, 0.0)
        return d

    def weight_matrix(self) -> np.ndarray:
        """``(n, n)`` weights, 0 where a pair is unknown. For small inputs only."""
        w = np.zeros((self.n, self.n))
        i, j, _, values = self.known_values()
        w[i, j] = w[j, i] = values
        return w

    def full_batch(self) -> dict[str, torch.Tensor]:
        """Every known pair at once, in the table's natural form (see :mod:`citymap_lightning.solvers.full`).

        Complete and dense tables give the ``(n, n)`` matrix ``distances`` (0 where unknown) and, unless
        every weight is 1, ``weights``; pair tables give ``i``, ``j``, ``distances`` and ``weights``.
        """
        d = self.matrix()
        batch = {"distances": torch.from_numpy(np.nan_to_num(d, nan=0.0))}
        if not (self.complete and self.unit_weights):
            batch["weights"] = torch.from_numpy(self.weight_matrix())
        return batch

    def weight_range(self, loss_weights: str) -> tuple[float, float]:
        """Smallest and largest positive weight of the loss over every known pair.

        ``loss_weights`` names a stress-type loss: its weights are ``w d^power`` (``w / d^2`` for weighted stress).
        """
        _, _, d, w = self.known_values()
        power = _weight_power(loss_weights)
        if power:
            w = np.where(d > 0, w * np.where(d > 0, d, 1.0) ** power, 0.0)
        w = w[w > 0]
        return (float(w.min()), float(w.max())) if w.size else (1.0, 1.0)

    def nearest(self, k: int) -> np.ndarray:
        """``(n, k)``: each place's ``k`` nearest other places with a known distance (fewer if n is small).

        Computed once per ``k`` (a pass over every pair).
        """
        if k not in self._nearest:
            self._nearest[k] = self._find_nearest(k)
        return self._nearest[k]

    def _find_nearest(self, k: int) -> np.ndarray:
        k = min(k, self.n - 1)
        out = np.empty((self.n, max(k, 0)), dtype=np.int64)
        if k <= 0:
            return out
        rows = max(1, BLOCK // self.n)
        for start in range(0, self.n, rows):
            block = self.columns(np.arange(start, min(self.n, start + rows))).T
            block[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
            block = np.where(np.isnan(block), np.inf, block)
            out[start : start + len(block)] = np.argpartition(block, k - 1, axis=1)[:, :k]
        return out


@dataclass
class MatrixTable(DistanceTable):
    """A dense matrix: ``distances`` ``(n, n)`` float64, symmetric, zero diagonal, NaN where unknown.

    ``weights`` ``(n, n)``: each pair's weight (1 unless given), 0 marks a pair as unknown too.
    """

    distances: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def known(self) -> np.ndarray:
        """``(n, n)`` bool: the pair's distance is known and its weight positive; False on the diagonal."""
        k = np.isfinite(self.distances) & (self.weights > 0)
        np.fill_diagonal(k, False)
        return k

    @property
    def n_known_pairs(self) -> int:
        return int(self.known.sum()) // 2

    @property
    def unit_weights(self) -> bool:
        return bool((self.weights[self.known] == 1).all())

    def known_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return np.nonzero(np.triu(self.known, 1))

    def pair_distances(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return self.distances[i, j]

    def pair_weights(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return self.weights[i, j]

    def columns(self, cols: np.ndarray) -> np.ndarray:
        d = self.distances[:, cols]
        known = (np.isfinite(d) & (self.weights[:, cols] > 0)) | (np.arange(self.n)[:, None] == cols)
        return np.where(known, d, np.nan)

    def matrix(self) -> np.ndarray:
        return np.where(self.known | np.eye(self.n, dtype=bool), self.distances, np.nan)

    def weight_matrix(self) -> np.ndarray:
        return np.where(self.known, self.weights, 0.0)


@dataclass
class PlacesTable(DistanceTable):
    """Places by latitude/longitude: complete, unit weights, great-circle distances (km) computed on demand."""

    unit: str = "km"
    kind: str = "places"
    _units: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n_known_pairs(self) -> int:
        return self.n_pairs

    @property
    def unit_weights(self) -> bool:
        return True

    def known_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return np.triu_indices(self.n, 1)

    def pair_distances(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """By the chords between the places' unit vectors (made once): pair batches ask for 24 million an epoch."""
        if self._units is None:
            self._units = geo.to_unit_vectors(np.asarray(self.latlon, dtype=np.float64))
        return geo.chord_great_circle(np.take(self._units, i, axis=0), np.take(self._units, j, axis=0))

    def pair_weights(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.ones(len(i))

    def columns(self, cols: np.ndarray) -> np.ndarray:
        return geo.haversine(self.latlon[:, None, :], self.latlon[None, cols, :])

    def matrix(self) -> np.ndarray:
        return geo.distance_matrix(self.latlon)

    def weight_matrix(self) -> np.ndarray:
        w = np.ones((self.n, self.n))
        np.fill_diagonal(w, 0.0)
        return w

    def full_batch(self) -> dict[str, torch.Tensor]:
        return {"distances": torch.from_numpy(geo.distance_matrix(self.latlon))}

    def weight_range(self, loss_weights: str) -> tuple[float, float]:
        """Unit weights; for a local loss (weights ``d^power``), between the farthest pair and the closest.

        The closest pair is found among nearest neighbours (any already found will do: the closest
        pair is each other's nearest), the farthest by a few far-point sweeps.
        """
        power = _weight_power(loss_weights)
        if not power:
            return 1.0, 1.0
        near = next((v for v in self._nearest.values() if v.shape[1]), None)
        near = self.nearest(1) if near is None else near
        d = self.pair_distances(np.repeat(np.arange(self.n), near.shape[1]), near.ravel())
        low = float(d[d > 0].min()) if (d > 0).any() else 1.0
        far, high = 0, 0.0
        for _ in range(4):
            column = self.columns(np.array([far]))[:, 0]
            far, high = int(np.argmax(column)), max(high, float(column.max()))
        return high**power, low**power

    def _find_nearest(self, k: int) -> np.ndarray:
        """By a k-d tree on unit vectors (chord length is monotone in great-circle distance): O(n log n).

        The tree is asked for ``k + 1`` points, the place itself among them; where identical places tie
        with it and push it out, the last of the ``k + 1`` is dropped instead.
        """
        k = min(k, self.n - 1)
        if k <= 0:
            return np.empty((self.n, max(k, 0)), dtype=np.int64)
        u = geo.to_unit_vectors(np.asarray(self.latlon, dtype=np.float64))
        _, found = cKDTree(u).query(u, k=k + 1, workers=-1)
        found = np.asarray(found, dtype=np.int64).reshape(self.n, k + 1)
        own = found == np.arange(self.n)[:, None]
        own[~own.any(axis=1), k] = True
        return found[~own].reshape(self.n, k)


@dataclass
class PairTable(DistanceTable):
    """Only the listed pairs are known: COO arrays ``i < j`` (unique), ``d`` and ``w`` (positive weights)."""

    i: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    j: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    d: np.ndarray = field(default_factory=lambda: np.zeros(0))
    w: np.ndarray = field(default_factory=lambda: np.zeros(0))
    kind: str = "pairs"

    def __post_init__(self) -> None:
        self._csr: csr_matrix | None = None
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def n_known_pairs(self) -> int:
        return len(self.i)

    @property
    def unit_weights(self) -> bool:
        return bool((self.w == 1).all())

    def known_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return self.i, self.j

    def known_values(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.i, self.j, self.d, self.w

    def _lookup(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Positions of the pairs ``(i, j)`` in the COO arrays (-1 where not known).

        The last lookup is kept: a batch asks for its distances and then its weights, and the
        comparison of the pairs costs a fraction of the lookup (about 2 ms for 16,384 pairs).
        """
        i, j = np.asarray(i), np.asarray(j)
        last = self._last
        if last is not None and np.array_equal(last[0], i) and np.array_equal(last[1], j):
            return last[2]
        if self._csr is None:
            index = np.arange(1, len(self.i) + 1, dtype=np.int64)
            both = (np.concatenate([self.i, self.j]), np.concatenate([self.j, self.i]))
            self._csr = csr_matrix((np.concatenate([index, index]), both), shape=(self.n, self.n))
        found = np.asarray(self._csr[i, j]).ravel().astype(np.int64) - 1
        self._last = (i.copy(), j.copy(), found)
        return found

    def pair_distances(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        k = self._lookup(i, j)
        return np.where(k >= 0, self.d[k], np.where(np.asarray(i) == np.asarray(j), 0.0, np.nan))

    def pair_weights(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        k = self._lookup(i, j)
        return np.where(k >= 0, self.w[k], 0.0)

    def columns(self, cols: np.ndarray) -> np.ndarray:
        cols = np.asarray(cols)
        out = np.full((self.n, len(cols)), np.nan)
        for c, place in enumerate(cols):
            out[place, c] = 0.0
            for a, b in ((self.i, self.j), (self.j, self.i)):
                hit = a == place
                out[b[hit], c] = self.d[hit]
        return out

    def full_batch(self) -> dict[str, torch.Tensor]:
        return {
            "i": torch.from_numpy(self.i),
            "j": torch.from_numpy(self.j),
            "distances": torch.from_numpy(self.d),
            "weights": torch.from_numpy(self.w),
        }


def _weight_power(loss: str) -> float:
    """The exponent of the given distance in a loss's pair weights (0 for raw stress)."""
    from citymap_lightning.losses import get

    return get(loss).power
