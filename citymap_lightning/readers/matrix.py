"""A square distance matrix: a CSV with names in the first row and column, or an array."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from citymap_lightning import validation
from citymap_lightning.errors import DataError
from citymap_lightning.readers.text import first_cell, parse_numbers
from citymap_lightning.tables import MatrixTable


def from_matrix(
    distances: np.ndarray,
    names: list[str] | None = None,
    weights: np.ndarray | None = None,
    source: str = "",
    symmetrize: bool = False,
    owned: bool = False,
) -> MatrixTable:
    """A table from a square matrix (NaN marks unknown pairs); names default to ``0..n-1``.

    The matrix is copied unless ``owned`` (a reader's own array, which the table may keep).
    """
    d = np.asarray(distances, dtype=np.float64)
    where = source or "the matrix"
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise DataError(f"{where}: the distance matrix is not square (shape {tuple(d.shape)})")
    names = [str(i) for i in range(d.shape[0])] if names is None else list(names)
    if len(names) != d.shape[0]:
        raise DataError(f"{where}: {len(names)} names for a {d.shape[0]} x {d.shape[0]} matrix")
    w = np.ones_like(d) if weights is None else np.array(weights, dtype=np.float64)
    table = MatrixTable(names=names, distances=d if owned else d.copy(), weights=w, source=source)
    return validation.validate_matrix(table, symmetrize=symmetrize)


def read_matrix(
    path: Path, header: list[str], lines: list[str], separator: str, decimal_comma: bool, symmetrize: bool
) -> MatrixTable:
    """A square matrix CSV with names in the first row and the first column.

    Each row's numbers are parsed in C (``numpy.fromstring``); a row with anything unusual (an empty
    or non-numeric cell, a quoted name, a trailing separator) is parsed cell by cell instead, which
    also gives the exact message for a bad cell.
    """
    names = header[1:]
    n = len(names)
    if len(lines) != n:
        raise DataError(f"{path}: not square: {n} names in the header but {len(lines)} rows")
    d = np.empty((n, n))
    for i, line in enumerate(lines):
        values = None if line.startswith('"') else _fast_row(line, separator, decimal_comma, n)
        if values is not None:
            name = first_cell(line, separator)
        else:
            row = next(csv.reader([line], delimiter=separator))
            name = row[0].strip() if row else ""
            if len(row) != n + 1:
                raise DataError(f"{path}: not square: row {i + 2} ({name}) has {len(row) - 1} values, expected {n}")
        if name != names[i]:
            raise DataError(f"{path}: row {i + 2} is named {name!r} but column {i + 2} is {names[i]!r}")
        if values is None:
            where = lambda j, i=i, name=name: f"row {i + 2} ({name}), column {names[j]}"  # noqa: E731
            values = parse_numbers(path, row[1:], where, decimal_comma, allow_empty=True)
        d[i] = values
    return from_matrix(d, names, source=str(path), symmetrize=symmetrize, owned=True)


def _fast_row(line: str, separator: str, decimal_comma: bool, n: int) -> np.ndarray | None:
    """The ``n`` numbers after a row's name, parsed in C; None when the row needs a careful look."""
    start = line.find(separator)
    if start < 0 or line.rstrip().endswith(separator):
        return None
    rest = line[start + 1 :]
    if decimal_comma:
        if "." in rest:
            return None  # thousands dots: the careful path refuses them by name
        rest = rest.replace(",", ".")
    try:
        values = np.fromstring(rest, sep=separator)
    except ValueError:
        return None
    return values if len(values) == n else None
