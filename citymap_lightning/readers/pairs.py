"""A pair list (``source,target,distance[,weight]``): only the listed pairs are known."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from citymap_lightning import validation
from citymap_lightning.errors import DataError
from citymap_lightning.readers.text import SHOWN_ROWS, check_row_lengths, find_column, parse_numbers
from citymap_lightning.tables import PairTable

log = logging.getLogger("citymap_lightning")


def read_pairs(
    path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool, symmetrize: bool
) -> PairTable:
    """A pair list ``source,target,distance[,weight]``: only the listed pairs are known, held as COO arrays.

    Places are numbered in order of first appearance. A pair listed twice must have the same
    distance (or is averaged with ``symmetrize``); its weights are averaged. Weight 0 or an empty
    distance leaves a pair unknown.
    """
    sources, targets, d, w = pair_rows(path, header, rows, decimal_comma)
    index: dict[str, int] = {}
    for name_a, name_b in zip(sources, targets, strict=True):
        index.setdefault(name_a, len(index))
        index.setdefault(name_b, len(index))
    a = np.fromiter((index[name] for name in sources), dtype=np.int64, count=len(rows))
    b = np.fromiter((index[name] for name in targets), dtype=np.int64, count=len(rows))
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
    n = len(index)
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
        names=list(index), i=(unique // n)[known], j=(unique % n)[known], d=d[known], w=w[known], source=str(path)
    )
    if empty:
        log.warning(empty)
    return validation.validate_pairs(table)


def empty_distances(path: Path, sources: list[str], targets: list[str], d: np.ndarray) -> str | None:
    """The warning for pair-list rows whose distance is a :data:`MISSING` marker: counted, the first named.

    Such a pair is unknown, as one never listed, but a listed pair without its distance is more often
    a gap in the data than a choice: the user is told which rows.
    """
    rows = np.flatnonzero(np.isnan(d) & (np.asarray(sources, dtype=object) != np.asarray(targets, dtype=object)))
    if not rows.size:
        return None
    named = ", ".join(f"row {r + 2} ({sources[r]} - {targets[r]})" for r in rows[:SHOWN_ROWS])
    more = f" and {rows.size - SHOWN_ROWS} more" if rows.size > SHOWN_ROWS else ""
    return f"{path}: {rows.size} pair(s) without a distance are left unknown: {named}{more}"


def pair_rows(
    path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Sources, targets, distances (NaN where empty) and weights of a pair list's rows, each checked."""
    i_s, i_t = find_column(path, header, ("source",)), find_column(path, header, ("target",))
    i_d = find_column(path, header, ("distance",))
    has_w = "weight" in [h.lower() for h in header]
    i_w = find_column(path, header, ("weight",)) if has_w else -1
    check_row_lengths(path, rows, max(i_s, i_t, i_d, i_w) + 1, len(header))
    sources, targets = [row[i_s].strip() for row in rows], [row[i_t].strip() for row in rows]
    label = lambda r: f"row {r + 2} ({sources[r]} - {targets[r]})"  # noqa: E731
    for r, (a, b) in enumerate(zip(sources, targets, strict=True)):
        if a == "" or b == "":
            raise DataError(f"{path}: row {r + 2} has an empty place name")
    d = parse_numbers(path, [row[i_d] for row in rows], lambda r: f"{label(r)} distance", decimal_comma, True)
    w = np.ones(len(rows))
    if has_w:
        cells = [row[i_w].strip() for row in rows]
        w = parse_numbers(path, cells, lambda r: f"{label(r)} weight", decimal_comma, True)
        stated = np.flatnonzero(np.isnan(w) & np.array([cell != "" for cell in cells], dtype=bool))
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
