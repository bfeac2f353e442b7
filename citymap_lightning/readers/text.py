"""What every reader shares: a CSV from a spreadsheet as header and lines, its cells, numbers and columns.

Everything a user can get wrong in a file ends in a :class:`DataError` whose message names the file
and the problem in one line; the CLI prints it without a traceback.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from citymap_lightning import paths
from citymap_lightning.errors import DataError

FORMATS = ("auto", "places", "matrix", "pairs", "npy", "parquet")
"""Values of ``--data.format``: ``auto`` tells the format from the extension and the header."""

LATITUDE = ("latitude", "lat")


LONGITUDE = ("longitude", "lon", "lng", "long")
"""Header names of the latitude and longitude columns (case-insensitive), wherever they are read."""


MISSING = frozenset({"", "#n/a", "n/a", "na", "nan", "-"})
"""Cells every reader takes for an unknown value where one is allowed (case-insensitive, spaces around ignored):
empty, Excel's ``#N/A``, ``N/A``, ``NA``, ``nan`` and ``-``. Elsewhere (a latitude, an anchor) they are refused."""


SHOWN_ROWS = 3
"""Rows named in a message about many rows (the rest are counted)."""


def read_rows(path: str | Path, what: str) -> tuple[list[str], list[list[str]], bool]:
    """A small CSV (``what``: anchors, ...) as header cells, rows of cells, and whether it uses decimal commas."""
    path = paths.check_file(path, what)
    header, lines, separator = read_csv(path, what)
    return header, split_rows(lines, separator), decimal_commas(separator, lines)


def decimal_commas(separator: str, lines: list[str]) -> bool:
    """Whether a CSV's numbers use decimal commas: a ``;``-separated file with a comma in its body."""
    return separator == ";" and any("," in line for line in lines)


def read_csv(path: Path, what: str = "data file") -> tuple[list[str], list[str], str]:
    """Header cells, body lines and separator of a CSV from a spreadsheet.

    UTF-8 with or without BOM, `,` `;` or tab separated (`;` files may use decimal commas). The body
    stays as lines: each reader parses them its own way (a matrix row at a time, in C).
    """
    header, body, separator = read_csv_body(path, what)
    return header, body_lines(body), separator


def read_csv_body(path: Path, what: str = "data file") -> tuple[list[str], str, str]:
    """Header cells, the body as one text (every line ending in a newline) and separator of a CSV from a spreadsheet.

    As :func:`read_csv`, without cutting the body into lines: a reader of millions of rows takes its
    cells from the text at once (:func:`plain_columns`) and needs the lines only when that fails.
    """
    text = paths.read_text(path, what)
    # only \n, \r and \r\n end a line, as for the csv module: a form feed or U+2028 inside a name does not
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = len(text) - len(text.lstrip("\n"))  # blank lines before the header are skipped
    if start == len(text):
        raise DataError(f"{path}: the file is empty")
    end = text.find("\n", start)
    first = text[start:] if end < 0 else text[start : end + 1]
    body = "" if end < 0 else text[end + 1 :]
    del text
    separator = max((";", "\t", ","), key=first.count) if any(c in first for c in ";\t,") else ","
    header = next(csv.reader([first], delimiter=separator))
    return [cell.strip() for cell in header], body, separator


def body_lines(body: str) -> list[str]:
    """The non-blank lines of a body, line ends kept (a quoted name may hold a line break, which csv then keeps)."""
    return [line for line in io.StringIO(body, newline=None) if line.strip("\r\n")]


def head_lines(body: str, count: int) -> list[str]:
    """The first ``count`` non-blank lines of a body, without cutting the rest of it."""
    lines: list[str] = []
    start = 0
    while len(lines) < count and start < len(body):
        end = body.find("\n", start)
        end = len(body) if end < 0 else end + 1
        if body[start:end].strip("\r\n"):
            lines.append(body[start:end])
        start = end
    return lines


def plain_columns(body: str, separator: str, width: int) -> list[list[str]] | None:
    """The cells of a body by column, cut at once; None when a line is not as :func:`split_rows` would cut it so.

    Every line must hold ``width`` cells. Lines without quotes are cut at the separators, lines with
    them (a name holding the separator) by the csv module one at a time; a quoted value across lines,
    a blank line or a NUL anywhere leaves the whole body to :func:`split_rows`, whose rows the readers
    check one by one for the exact message.
    """
    text = body[:-1] if body.endswith("\n") else body
    if not text or "\x00" in text or "\n\n" in text or text.startswith("\n") or width < 1:
        return None
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)  # newline, quote, separators: one byte each
    ends = np.append(np.flatnonzero(data == ord("\n")), len(data))
    per_line = np.diff(np.searchsorted(np.flatnonzero(data == ord(separator)), ends), prepend=0)
    quoted_at = np.searchsorted(ends, np.flatnonzero(data == ord('"')))
    quoted, quotes = np.unique(quoted_at, return_counts=True)
    plain = np.ones(len(ends), dtype=bool)
    plain[quoted] = False
    if (quotes % 2).any() or (per_line[plain] != width - 1).any():
        return None
    fixed = {}
    for line in quoted.tolist():
        start = int(ends[line - 1]) + 1 if line else 0
        cells = next(csv.reader([data[start : ends[line]].tobytes().decode("utf-8") + "\n"], delimiter=separator))
        if len(cells) != width or any("\n" in cell for cell in cells):  # the last cell's quote left open
            return None
        fixed[line] = cells
    del data, plain, quoted_at
    cells = text.replace("\n", separator).split(separator) if width > 1 else text.split("\n")
    if not fixed:
        return [cells[k::width] for k in range(width)]
    every = np.array(cells, dtype=object)
    del cells
    raw = per_line + 1 if width > 1 else np.ones_like(per_line)  # cells of each line as cut at every separator
    first = np.cumsum(raw) - raw
    columns = [every[first + k] for k in range(width)]
    for line, row in fixed.items():
        for k in range(width):
            columns[k][line] = row[k]
    return [column.tolist() for column in columns]


def first_cell(line: str, separator: str) -> str:
    """The first cell of a CSV line, stripped (the whole line is parsed only when it starts with a quote)."""
    if line.startswith('"'):
        return next(csv.reader([line], delimiter=separator))[0].strip()
    return line.split(separator, 1)[0].strip()


def split_rows(lines: list[str], separator: str) -> list[list[str]]:
    """Parse CSV lines into cells (quotes as a spreadsheet writes them; a cell may be as long as the file)."""
    csv.field_size_limit(max(csv.field_size_limit(), paths.max_file_bytes()))
    return list(csv.reader(lines, delimiter=separator))


def csv_kind(path: Path, header: list[str], lines: list[str], separator: str) -> str:
    """Tell places, pairs or matrix from a CSV header (a matrix: empty corner, or row names = column names)."""
    cols = {h.lower() for h in header}
    if "name" in cols and cols & set(LATITUDE) and cols & set(LONGITUDE):
        return "places"
    if {"source", "target", "distance"} <= cols:
        return "pairs"
    row_names = [first_cell(line, separator) for line in lines[: len(header) - 1]]
    if len(header) >= 2 and (header[0] == "" or (row_names and row_names == header[1 : 1 + len(row_names)])):
        return "matrix"
    raise DataError(
        f"{path}: unrecognised header {','.join(header)!r}: expected name,latitude,longitude; "
        "source,target,distance; or a matrix with names in the first row and column"
    )


def number(path: Path, cell: str, where: str, decimal_comma: bool, allow_empty: bool = False) -> float:
    """Parse one numeric cell; a :data:`MISSING` marker is NaN (unknown) where allowed."""
    cell = cell.strip()
    if decimal_comma and "." in cell and "," not in cell and cell.lower() not in MISSING:
        raise DataError(
            f"{path}: {where}: {cell!r} has a '.' in a file whose numbers use decimal commas: write "
            "numbers without thousands separators"
        )
    text = cell.replace(",", ".") if decimal_comma else cell
    if text.lower() in MISSING:
        if allow_empty:
            return math.nan
        raise DataError(f"{path}: {where}: {'empty cell' if not cell else f'{cell!r} is not a number'}")
    try:
        if "_" in text:
            raise ValueError
        value = float(text)
    except ValueError:
        raise DataError(f"{path}: {where}: {cell!r} is not a number") from None
    return value


def parse_numbers(
    path: Path, cells: list[str], where: Callable[[int], str], decimal_comma: bool, allow_empty: bool
) -> np.ndarray:
    """Parse a column or row of numeric cells at once; on any odd cell, cell by cell for the exact message."""
    if decimal_comma and any("." in cell for cell in cells):
        return np.array([number(path, c, where(k), decimal_comma, allow_empty) for k, c in enumerate(cells)])
    array = np.asarray(cells, dtype=str)
    if decimal_comma:
        array = np.char.replace(array, ",", ".")
    try:
        if allow_empty:
            array = np.where(np.char.str_len(array) == 0, "nan", array)
        values = array.astype(np.float64)
        if np.isnan(values).any() and not allow_empty:
            raise ValueError
        if any("_" in cell for cell in cells):
            raise ValueError
        return values
    except ValueError:
        return np.array([number(path, c, where(k), decimal_comma, allow_empty) for k, c in enumerate(cells)])


def column_numbers(
    path: Path, cells: list[str] | np.ndarray, where: Callable[[int], str], decimal_comma: bool, allow_empty: bool
) -> np.ndarray:
    """:func:`parse_numbers` of a column of cells, or a column that holds numbers already (NaN: an empty cell)."""
    if isinstance(cells, np.ndarray) and cells.dtype.kind == "f":
        values = cells.astype(np.float64)
        empty = np.flatnonzero(np.isnan(values)) if not allow_empty else np.zeros(0, dtype=np.int64)
        if empty.size:
            raise DataError(f"{path}: {where(int(empty[0]))}: empty cell")
        return values
    return parse_numbers(path, cells, where, decimal_comma, allow_empty)


def find_column(path: Path, header: list[str], options: tuple[str, ...]) -> int:
    """Index of the header column named one of ``options`` (case-insensitive); two such columns are refused."""
    lower = [h.lower() for h in header]
    found = [k for k, h in enumerate(lower) if h in options]
    if len(found) > 1:
        raise DataError(
            f"{path}: the header has {len(found)} columns for {options[0]!r} ({', '.join(header[k] for k in found)}): "
            "keep one"
        )
    if found:
        return found[0]
    raise DataError(f"{path}: no {options[0]!r} column in the header {','.join(header)!r}")


def check_row_lengths(path: Path, rows: list[list[str]], width: int, header: int) -> None:
    """Refuse rows shorter than the header needs, or longer than the header (the columns would shift)."""
    for r, row in enumerate(rows, start=2):
        if len(row) < width:
            raise DataError(f"{path}: row {r} has {len(row)} cells, expected at least {width}")
        if len(row) > header and any(cell.strip() for cell in row[header:]):
            raise DataError(
                f"{path}: row {r} has {len(row)} cells but the header {header}: a separator inside a value "
                "(a decimal comma in a comma-separated file?) would shift the columns"
            )
