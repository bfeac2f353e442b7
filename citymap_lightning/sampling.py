"""Which pairs a pair-batch fit sees: near neighbours plus random partners, new random ones each epoch.

Random pairs carry the map's large-scale shape, near neighbours its local detail: the mix that
sparse stress majorisation and s_gd2 use. An epoch's pairs depend only on the seed and the epoch,
so a resumed run sees the same pairs, and under DDP each rank takes its own share of one common
set: the ranks together see exactly the pairs one process would.
"""

from __future__ import annotations

import numpy as np

from citymap_lightning.tables import DistanceTable


def known_pairs_sample(table: DistanceTable, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` distinct known pairs ``i < j`` drawn at random (all of them when there are fewer).

    A complete table is sampled without building an ``n x n`` mask.
    """
    if table.complete:
        return np.triu_indices(table.n, 1) if table.n_pairs <= count else evaluation_pairs(table.n, count, seed)
    i, j = table.known_pairs()
    if len(i) > count:
        pick = np.sort(np.random.default_rng(seed).choice(len(i), count, replace=False))
        i, j = i[pick], j[pick]
    return i, j


def epoch_pairs(
    n: int, neighbours: np.ndarray, random_pairs: int, seed: int, epoch: int
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of one epoch of a complete table, shuffled: each place with its neighbours and random partners.

    An incomplete table's epoch is its known pairs instead (unknown pairs have no distance to
    sample), in the order :func:`epoch_order` gives.
    """
    rng = np.random.default_rng([seed, epoch])
    i = np.repeat(np.arange(n), neighbours.shape[1] + random_pairs)
    partners = np.concatenate([neighbours, rng.integers(0, n, size=(n, random_pairs))], axis=1)
    j = partners.reshape(-1)
    i, j = i[i != j], j[i != j]
    order = rng.permutation(len(i))
    return i[order], j[order]


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which an epoch takes an incomplete table's ``count`` known pairs (from the seed and the epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(count)


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
