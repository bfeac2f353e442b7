"""Which pairs a pair-batch fit sees: near neighbours plus random partners, new random ones each epoch.

Random pairs carry the map's large-scale shape, near neighbours its local detail: the mix that
sparse stress majorisation and s_gd2 use. An epoch's pairs depend only on the seed and the epoch,
so a resumed run sees the same pairs, and under DDP each rank takes its own share of one common
set: the ranks together see exactly the pairs one process would.
"""

from __future__ import annotations

import numpy as np
import torch

from citymap_lightning import geo
from citymap_lightning.data import DistanceTable

BLOCK = 2**23
"""Elements per block of rows when searching neighbours (64 MB of float64)."""


def nearest_neighbours(table: DistanceTable, k: int) -> np.ndarray:
    """``(n, k)``: each place's ``k`` nearest other places with a known distance (fewer columns if n is small).

    With latitude/longitude, by the largest dot products of unit vectors (chord length is monotone in
    great-circle distance), in blocks, without a distance matrix; otherwise from the matrix rows.
    """
    n = table.n
    k = min(k, n - 1)
    out = np.empty((n, k), dtype=np.int64)
    if k == 0:
        return out
    rows = max(1, BLOCK // n)
    if table.latlon is not None and table.n_known_pairs == table.n_pairs:
        u = torch.from_numpy(geo.to_unit_vectors(table.latlon))
        for start in range(0, n, rows):
            similarity = u[start : start + rows] @ u.T
            own = torch.arange(similarity.shape[0])
            similarity[own, own + start] = -3.0
            out[start : start + len(own)] = similarity.topk(k, dim=1).indices.numpy()
        return out
    known = table.known
    for start in range(0, n, rows):
        block = np.where(known[start : start + rows], table.distances[start : start + rows], np.inf)
        nearest = np.argpartition(block, k - 1, axis=1)[:, :k] if k < n else np.argsort(block, axis=1)[:, :k]
        out[start : start + len(block)] = nearest
    return out


def known_pair_list(table: DistanceTable) -> tuple[np.ndarray, np.ndarray]:
    """Every known pair ``i < j`` of an incomplete table."""
    return np.nonzero(np.triu(table.known, 1))


def known_pairs_sample(table: DistanceTable, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` distinct known pairs ``i < j`` drawn at random (all of them when there are fewer).

    A complete table is sampled without building an ``n x n`` mask.
    """
    if table.n_known_pairs == table.n_pairs:
        return np.triu_indices(table.n, 1) if table.n_pairs <= count else evaluation_pairs(table.n, count, seed)
    i, j = known_pair_list(table)
    if len(i) > count:
        pick = np.sort(np.random.default_rng(seed).choice(len(i), count, replace=False))
        i, j = i[pick], j[pick]
    return i, j


def epoch_pairs(
    n: int,
    neighbours: np.ndarray,
    random_pairs: int,
    seed: int,
    epoch: int,
    known: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of one epoch, shuffled: each place with its neighbours and ``random_pairs`` random partners.

    For an incomplete table (``known`` given), the epoch is every known pair instead: unknown pairs
    have no distance to sample.
    """
    rng = np.random.default_rng([seed, epoch])
    if known is not None:
        i, j = known
    else:
        i = np.repeat(np.arange(n), neighbours.shape[1] + random_pairs)
        partners = np.concatenate([neighbours, rng.integers(0, n, size=(n, random_pairs))], axis=1)
        j = partners.reshape(-1)
        i, j = i[i != j], j[i != j]
    order = rng.permutation(len(i))
    return i[order], j[order]


def shard(i: np.ndarray, j: np.ndarray, rank: int, world_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank ``rank``'s share of a shuffled pair list (every ``world_size``-th pair)."""
    return i[rank::world_size], j[rank::world_size]


def evaluation_pairs(n: int, count: int, seed: int = 12345) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random sample of ``count`` distinct pairs ``i < j`` (the same for every run on ``n`` places)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(int(count * 1.1) + 64, 2))
    draws = np.sort(draws, axis=1)
    draws = np.unique(draws[draws[:, 0] != draws[:, 1]], axis=0)
    draws = draws[rng.permutation(len(draws))[:count]]
    return draws[:, 0], draws[:, 1]
