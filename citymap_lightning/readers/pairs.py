"""A pair list (``source,target,distance[,weight]``): only the listed pairs are known."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from citymap_lightning import validation
from citymap_lightning.errors import DataError
from citymap_lightning.lists import listed
from citymap_lightning.readers.text import (
    SHOWN_ROWS,
    body_lines,
    check_row_lengths,
    column_numbers,
    find_column,
    plain_columns,
    split_rows,
)
from citymap_lightning.tables import PairTable

log = logging.getLogger("citymap_lightning")


def read_pairs(
    path: Path, header: list[str], body: str, separator: str, decimal_comma: bool, symmetrize: bool
) -> PairTable:
    """A pair list ``source,target,distance[,weight]``: only the listed pairs are known, held as COO arrays.

    Places are numbered in order of first appearance. A pair listed twice must have the same
    distance (or is averaged with ``symmetrize``); its weights are averaged. Weight 0 or an empty
    distance leaves a pair unknown. A plain body (no quotes, every row as long as the header) is cut
    into cells at once; any other goes through the csv module row by row.
    """
    fields = pair_fields(path, header)
    columns = plain_columns(body, separator, len(header))
    if columns is None:
        rows = split_rows(body_lines(body), separator)
        del body
        return pairs_table(path, *pair_rows(path, header, rows, decimal_comma), symmetrize)
    del body
    return pairs_table(path, *pair_columns(path, fields, columns, decimal_comma), symmetrize)


def pairs_table(
    path: Path, sources: list[str], targets: list[str], d: np.ndarray, w: np.ndarray, symmetrize: bool
) -> PairTable:
    """The table of checked pair-list rows: places numbered in order of first appearance, each pair once."""
    a, b, names = number_places(sources, targets)
    self_pair = a == b
    bad = np.flatnonzero(self_pair & ~((d == 0) | np.isnan(d)))
    if bad.size:
        r = int(bad[0])
        raise DataError(f"{path}: row {r + 2}: distance from {sources[r]} to itself is {d[r]:g}, not 0")
    keep = ~self_pair & ~np.isnan(d)
    empty = empty_distances(path, sources, targets, d)
    rows_kept = np.flatnonzero(keep)
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    d, w = d[keep], w[keep]
    n = len(names)
    key = lo * n + hi
    unique, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    if len(unique) < len(key):
        if symmetrize:
            averaged = int((np.bincount(inverse, weights=d) / counts != d[first]).sum())
            if averaged:
                log.warning(f"{path}: {averaged} pair(s) listed twice with different distances were averaged")
        else:
            differ = np.flatnonzero(d != d[first][inverse])
            if differ.size:
                r = int(rows_kept[differ[0]])
                raise DataError(
                    f"{path}: row {r + 2}: pair {sources[r]} - {targets[r]} is listed twice with different distances"
                )
        d = np.bincount(inverse, weights=d) / counts
        w = np.bincount(inverse, weights=w) / counts
    else:
        d, w = d[first], w[first]
    known = w > 0
    table = PairTable(
        names=names, i=(unique // n)[known], j=(unique % n)[known], d=d[known], w=w[known], source=str(path)
    )
    if empty:
        log.warning(empty)
    return validation.validate_pairs(table)


def empty_distances(path: Path, sources: list[str], targets: list[str], d: np.ndarray) -> str | None:
    """The warning for pair-list rows whose distance is a :data:`MISSING` marker: counted, the first named.

    Such a pair is unknown, as one never listed, but a listed pair without its distance is more often
    a gap in the data than a choice: the user is told which rows.
    """
    rows = np.array([r for r in np.flatnonzero(np.isnan(d)).tolist() if sources[r] != targets[r]], dtype=np.int64)
    if not rows.size:
        return None
    named = listed([f"row {r + 2} ({sources[r]} - {targets[r]})" for r in rows[:SHOWN_ROWS]], total=rows.size)
    return f"{path}: {rows.size} pair(s) without a distance are left unknown: {named}"


def number_places(sources: list[str], targets: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each row's source and target as place numbers, in order of first appearance (source before target)."""
    both = np.empty(2 * len(sources), dtype=object)
    both[0::2], both[1::2] = sources, targets
    names = list(dict.fromkeys(both.tolist()))
    del both
    index = dict(zip(names, range(len(names)), strict=True))
    a = np.fromiter(map(index.__getitem__, sources), dtype=np.int64, count=len(sources))
    b = np.fromiter(map(index.__getitem__, targets), dtype=np.int64, count=len(targets))
    return a, b, names


def pair_fields(path: Path, header: list[str]) -> tuple[int, int, int, int]:
    """The columns of source, target, distance and weight (-1: no weight column) in a pair list's header."""
    i_s, i_t = find_column(path, header, ("source",)), find_column(path, header, ("target",))
    i_d = find_column(path, header, ("distance",))
    has_w = "weight" in [h.lower() for h in header]
    return i_s, i_t, i_d, find_column(path, header, ("weight",)) if has_w else -1


def pair_rows(
    path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Sources, targets, distances (NaN where empty) and weights of a pair list's rows, each checked."""
    fields = pair_fields(path, header)
    check_row_lengths(path, rows, max(fields) + 1, len(header))
    columns = {k: [row[k] for row in rows] for k in fields if k >= 0}
    return pair_columns(path, fields, columns, decimal_comma)


def pair_columns(
    path: Path, fields: tuple[int, int, int, int], columns: Any, decimal_comma: bool
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """As :func:`pair_rows`, from the cells by column (``columns[k]``: column ``k``'s cells, rows as long as needed)."""
    i_s, i_t, i_d, i_w = fields
    sources, targets = list(map(str.strip, columns[i_s])), list(map(str.strip, columns[i_t]))
    label = lambda r: f"row {r + 2} ({sources[r]} - {targets[r]})"  # noqa: E731
    if "" in sources or "" in targets:
        r = min(names.index("") for names in (sources, targets) if "" in names)
        raise DataError(f"{path}: row {r + 2} has an empty place name")
    d = column_numbers(path, columns[i_d], lambda r: f"{label(r)} distance", decimal_comma, True)
    w = np.ones(len(sources))
    if i_w >= 0:
        numeric = isinstance(columns[i_w], np.ndarray)  # a Parquet column: a null is an empty cell
        cells = columns[i_w] if numeric else list(map(str.strip, columns[i_w]))
        w = column_numbers(path, cells, lambda r: f"{label(r)} weight", decimal_comma, True)
        stated = np.zeros(0) if numeric else np.flatnonzero(np.isnan(w) & np.array([c != "" for c in cells], bool))
        if stated.size:
            r = int(stated[0])
            raise DataError(f"{path}: {label(r)}: weight {cells[r]!r} is not a number (leave it empty for weight 1)")
        w = np.where(np.isnan(w), 1.0, w)
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if bad.size:
            r = int(bad[0])
            raise DataError(f"{path}: {label(r)}: weight {w[r]:g} must be finite and >= 0")
    for test, problem in ((np.isinf(d), "is infinite"), (d < 0, "is negative")):
        bad = np.flatnonzero(test)
        if bad.size:
            r = int(bad[0])
            raise DataError(f"{path}: {label(r)}: distance {d[r]:g} {problem}")
    return sources, targets, d, w
