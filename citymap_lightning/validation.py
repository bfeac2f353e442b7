"""Validation of distance tables: names, signs, symmetry, and whether the known pairs hold the places together.

Each check works on every table kind without an ``n x n`` array where the kind holds none: the
graph checks take the known pairs as COO arrays and find connected groups with
``scipy.sparse.csgraph``. Problems are :class:`DataError` s told in one line; what may be fixed or
only deserves attention is a warning kept with the table.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from citymap_lightning.errors import DataError
from citymap_lightning.lists import listed
from citymap_lightning.tables import DistanceTable, MatrixTable, PairTable, PlacesTable

log = logging.getLogger("citymap_lightning")

SYMMETRY_RTOL = 1e-6
"""Relative difference between ``d[i, j]`` and ``d[j, i]`` above which a matrix is called asymmetric."""


def check_names(where: str, names: list[str]) -> None:
    """Refuse empty or duplicate names."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name == "":
            raise DataError(f"{where}: place {i + 1} has an empty name")
        if name in seen:
            raise DataError(f"{where}: duplicate name {name!r} (places {seen[name] + 1} and {i + 1})")
        seen[name] = i


def _common(table: DistanceTable) -> str:
    """Checks every kind shares: at least 3 places with distinct names. Returns where to say it happened."""
    where = table.source or "input"
    if table.n < 3:
        raise DataError(f"{where}: {table.n} place{'s' if table.n != 1 else ''}: a map needs at least 3")
    check_names(where, table.names)
    return where


def validate_places(table: PlacesTable) -> PlacesTable:
    """Places are complete and finite by construction: only names and places at the same position are checked."""
    where = _common(table)
    _, first, group = np.unique(table.latlon, axis=0, return_index=True, return_inverse=True)
    if len(first) == 1:
        raise DataError(f"{where}: every known distance is 0: nothing to map")
    group = group.ravel()
    same = np.flatnonzero(first[group] != np.arange(table.n))
    sizes = np.bincount(group)
    _warn_zero_distances(table, where, first[group][same], same, int((sizes * (sizes - 1) // 2).sum()))
    return table


def validate_matrix(table: MatrixTable, symmetrize: bool = False) -> MatrixTable:
    """A square matrix: finite, non-negative, zero diagonal, symmetric (or averaged), connected."""
    where, d, names = _common(table), table.distances, table.names
    if np.isinf(d).any():
        i, j = np.argwhere(np.isinf(d))[0]
        raise DataError(f"{where}: infinite distance between {names[i]} and {names[j]}")
    diag = np.diag(d)
    bad = np.flatnonzero(~(diag == 0))
    if bad.size:
        raise DataError(f"{where}: distance from {names[bad[0]]} to itself is {diag[bad[0]]:g}, expected 0")
    if (d < 0).any():
        i, j = np.argwhere(d < 0)[0]
        raise DataError(f"{where}: negative distance {d[i, j]:g} between {names[i]} and {names[j]}")
    if (table.weights < 0).any() or not np.isfinite(table.weights).all():
        raise DataError(f"{where}: weights must be finite and >= 0")
    table.distances = _symmetric(table, where, symmetrize)
    i, j = table.known_pairs()
    _check_graph(table, where, i, j, table.distances[i, j])
    return table


def validate_pairs(table: PairTable) -> PairTable:
    """A pair list (rows already checked one by one by the reader): the graph checks."""
    where = _common(table)
    _check_graph(table, where, table.i, table.j, table.d)
    return table


def _check_graph(table: DistanceTable, where: str, i: np.ndarray, j: np.ndarray, d: np.ndarray) -> None:
    """Refuse inputs with nothing to map, a place without known distance or unconnected groups; warn of weak places."""
    names, n = table.names, table.n
    if len(d) == 0:
        raise DataError(f"{where}: no pair has a known distance (every distance is empty or every weight 0)")
    if not (d > 0).any():
        raise DataError(f"{where}: every known distance is 0: nothing to map")
    positive = d[d > 0]
    if positive.max() > 1e150 or positive.min() < 1e-150:
        raise DataError(
            f"{where}: distances from {positive.min():.3g} to {positive.max():.3g}: beyond 1e-150 to 1e150, their "
            "squares leave double precision; rescale them (any unit gives the same map)"
        )
    counts = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    for place in np.flatnonzero(counts == 0)[:1]:
        raise DataError(f"{where}: {names[place]} has no known distance to any other place")
    count, labels = 1, None
    if len(i) < n * (n - 1) // 2:  # a complete table is connected
        count, labels = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    if count > 1:
        sizes = np.bincount(labels)
        order = np.argsort(-sizes, kind="stable")
        first = [int(np.flatnonzero(labels == g)[0]) for g in order[:5]]
        examples = listed(
            [f"{names[p]} ({sizes[g]} place{'s' if sizes[g] > 1 else ''})" for p, g in zip(first, order, strict=False)],
            total=count,
        )
        raise DataError(
            f"{where}: the known pairs split the places into {count} unconnected groups whose relative "
            f"position is undetermined: {examples}"
        )
    weak = np.flatnonzero(counts < 3)
    for place in weak[:5]:
        freedom = (
            "it may lie anywhere on a circle about its one partner"
            if counts[place] == 1
            else ("its position may be mirrored across the line through its two partners")
        )
        _warn(table, f"{where}: {names[place]} has only {counts[place]} known distance(s): {freedom}")
    if len(weak) > 5:
        _warn(table, f"{where}: {len(weak)} places in all have fewer than 3 known distances")
    zero = np.flatnonzero(d == 0)
    _warn_zero_distances(table, where, i[zero], j[zero])


def _warn_zero_distances(
    table: DistanceTable, where: str, a: np.ndarray, b: np.ndarray, count: int | None = None
) -> None:
    """Warn about (a few of) the ``count`` pairs of different places at distance 0 (``a``, ``b``: examples)."""
    count = len(a) if count is None else count
    for i, j in zip(a[:5], b[:5], strict=True):
        _warn(table, f"{where}: {table.names[i]} and {table.names[j]} are at distance 0: they will share a point")
    if count > 5:
        _warn(table, f"{where}: {count} pairs in all are at distance 0")


def _symmetric(table: MatrixTable, where: str, symmetrize: bool) -> np.ndarray:
    """The matrix made symmetric: one-sided pairs are copied across; two-sided ones must agree unless averaged."""
    if np.array_equal(table.distances, table.distances.T, equal_nan=True):
        return table.distances
    d, names = table.distances.copy(), table.names
    t = d.T
    one_sided = np.isnan(d) & ~np.isnan(t)
    d[one_sided] = t[one_sided]
    t = d.T
    scale = np.maximum(np.abs(d), np.abs(t))
    differ = np.abs(d - t) > SYMMETRY_RTOL * scale
    differ &= np.isfinite(d) & np.isfinite(t)
    if differ.any():
        i, j = np.argwhere(np.triu(differ, 1))[0]
        if not symmetrize:
            raise DataError(
                f"{where}: asymmetric: {names[i]} -> {names[j]} is {d[i, j]:g} but {names[j]} -> {names[i]} is "
                f"{d[j, i]:g}; pass --data.symmetrize true to average both directions"
            )
        count = int(np.triu(differ, 1).sum())
        from citymap_lightning import comparison

        table.skew = comparison.skew_part(d)
        table.asymmetry_share = comparison.asymmetry_share(d, table.skew)
        _warn(
            table,
            f"{where}: {count} asymmetric pair(s) averaged (e.g. {names[i]} - {names[j]}); the skew-symmetric "
            f"part ({table.asymmetry_share:.3g} of the table) goes to asymmetry.csv and drift.png",
        )
        d = (d + d.T) / 2
    return d


def _warn(table: DistanceTable, message: str) -> None:
    """Log a warning about the data."""
    log.warning(message)
