"""Readers: a file becomes a table of the right kind (places, dense matrix or sparse pairs), validated.

Everything a user can get wrong in a file ends in a :class:`DataError` whose message names the file
and the problem in one line; the CLI prints it without a traceback.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from citymap_lightning import geo, paths, validation
from citymap_lightning.errors import DataError
from citymap_lightning.placing import MIN_KNOWN, NewPlaces
from citymap_lightning.tables import DistanceTable, MatrixTable, PairTable, PlacesTable

log = logging.getLogger("citymap_lightning")

FORMATS = ("auto", "places", "matrix", "pairs", "npy")
"""Values of ``--data.format``: ``auto`` tells the format from the extension and the header."""

LATITUDE = ("latitude", "lat")
LONGITUDE = ("longitude", "lon", "lng", "long")
"""Header names of the latitude and longitude columns (case-insensitive), wherever they are read."""


def from_latlon(names: list[str], latlon: np.ndarray, source: str = "") -> PlacesTable:
    """A complete table of great-circle distances (km) between places given by latitude/longitude."""
    table = PlacesTable(names=list(names), latlon=np.asarray(latlon, dtype=np.float64), source=source)
    return validation.validate_places(table)


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


def load_table(
    path: str | Path,
    format: str = "auto",
    names: str | Path | None = None,
    symmetrize: bool = False,
) -> DistanceTable:
    """Read and validate the distance input at ``path``.

    Args:
        path: a places CSV (``name,latitude,longitude``), a square matrix as CSV (names in the first
            row and column) or ``.npy``, or a pair list CSV (``source,target,distance[,weight]``).
        format: one of :data:`FORMATS`; ``auto`` tells it from the extension and the header.
        names: for ``.npy`` matrices, a text file with one name per line (UTF-8).
        symmetrize: average ``d[i, j]`` and ``d[j, i]`` when they differ, instead of refusing.

    Returns the table kind the input is: :class:`PlacesTable` (no matrix is held), :class:`MatrixTable`
    or :class:`PairTable` (the listed pairs only).

    """
    path = Path(path)
    if format not in FORMATS:
        raise DataError(f"{path}: unknown format {format!r}: expected one of {', '.join(FORMATS)}")
    paths.check_file(path, "data file")
    suffix = path.suffix.lower()
    if format == "npy" or (format == "auto" and suffix == ".npy"):
        return _read_npy(path, names, symmetrize)
    if names is not None:
        raise DataError(f"{names}: a names file goes with a .npy matrix; a CSV names its places itself")
    if format == "auto" and suffix not in (".csv", ".tsv", ".txt"):
        raise DataError(f"{path}: unknown extension {path.suffix!r}: expected .csv or .npy (or set --data.format)")
    header, lines, separator = _read_csv(path)
    kind = format if format != "auto" else _csv_kind(path, header, lines, separator)
    decimal_comma = separator == ";" and any("," in line for line in lines)
    if kind == "places":
        return _places(path, header, _rows(lines, separator), decimal_comma)
    if kind == "pairs":
        return _pairs(path, header, _rows(lines, separator), decimal_comma, symmetrize)
    if kind == "matrix":
        return _matrix_csv(path, header, lines, separator, decimal_comma, symmetrize)
    raise DataError(f"{path}: format {kind!r} is not a CSV format")


def read_rows(path: str | Path, what: str) -> tuple[list[str], list[list[str]], bool]:
    """A small CSV (``what``: anchors, ...) as header cells, rows of cells, and whether it uses decimal commas."""
    path = paths.check_file(path, what)
    header, lines, separator = _read_csv(path, what)
    return header, _rows(lines, separator), separator == ";" and any("," in line for line in lines)


def _read_csv(path: Path, what: str = "data file") -> tuple[list[str], list[str], str]:
    """Header cells, body lines and separator of a CSV from a spreadsheet.

    UTF-8 with or without BOM, `,` `;` or tab separated (`;` files may use decimal commas). The body
    stays as lines: each reader parses them its own way (a matrix row at a time, in C).
    """
    text = paths.read_text(path, what)
    # line ends kept (a quoted name may hold a line break, which the csv module then keeps), and only
    # \n, \r and \r\n end a line, as for the csv module: a form feed or U+2028 inside a name does not
    lines = [line for line in io.StringIO(text, newline=None) if line.strip("\r\n")]
    del text
    if not lines:
        raise DataError(f"{path}: the file is empty")
    first = lines[0]
    separator = max((";", "\t", ","), key=first.count) if any(c in first for c in ";\t,") else ","
    header = next(csv.reader([first], delimiter=separator))
    return [cell.strip() for cell in header], lines[1:], separator


def _first_cell(line: str, separator: str) -> str:
    """The first cell of a CSV line, stripped (the whole line is parsed only when it starts with a quote)."""
    if line.startswith('"'):
        return next(csv.reader([line], delimiter=separator))[0].strip()
    return line.split(separator, 1)[0].strip()


def _rows(lines: list[str], separator: str) -> list[list[str]]:
    """Parse CSV lines into cells (quotes as a spreadsheet writes them; a cell may be as long as the file)."""
    csv.field_size_limit(max(csv.field_size_limit(), paths.max_file_bytes()))
    return list(csv.reader(lines, delimiter=separator))


def _csv_kind(path: Path, header: list[str], lines: list[str], separator: str) -> str:
    """Tell places, pairs or matrix from a CSV header (a matrix: empty corner, or row names = column names)."""
    cols = {h.lower() for h in header}
    if "name" in cols and cols & set(LATITUDE) and cols & set(LONGITUDE):
        return "places"
    if {"source", "target", "distance"} <= cols:
        return "pairs"
    row_names = [_first_cell(line, separator) for line in lines[: len(header) - 1]]
    if len(header) >= 2 and (header[0] == "" or (row_names and row_names == header[1 : 1 + len(row_names)])):
        return "matrix"
    raise DataError(
        f"{path}: unrecognised header {','.join(header)!r}: expected name,latitude,longitude; "
        "source,target,distance; or a matrix with names in the first row and column"
    )


MISSING = frozenset({"", "#n/a", "n/a", "na", "nan", "-"})
"""Cells every reader takes for an unknown value where one is allowed (case-insensitive, spaces around ignored):
empty, Excel's ``#N/A``, ``N/A``, ``NA``, ``nan`` and ``-``. Elsewhere (a latitude, an anchor) they are refused."""

SHOWN_ROWS = 3
"""Rows named in a message about many rows (the rest are counted)."""


def _number(path: Path, cell: str, where: str, decimal_comma: bool, allow_empty: bool = False) -> float:
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
        return np.array([_number(path, c, where(k), decimal_comma, allow_empty) for k, c in enumerate(cells)])
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
        return np.array([_number(path, c, where(k), decimal_comma, allow_empty) for k, c in enumerate(cells)])


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


def _places(path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool) -> PlacesTable:
    """A places CSV: great-circle distances between ``name,latitude,longitude`` rows."""
    names, latlon = _latlon_rows(path, header, rows, decimal_comma)
    return from_latlon(names, latlon, source=str(path))


def _latlon_rows(
    path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool
) -> tuple[list[str], np.ndarray]:
    """Names and ``(n, 2)`` latitude/longitude of a places CSV's rows, each checked for range."""
    i_name, i_lat, i_lon = (
        find_column(path, header, ("name",)),
        find_column(path, header, LATITUDE),
        find_column(path, header, LONGITUDE),
    )
    check_row_lengths(path, rows, max(i_name, i_lat, i_lon) + 1, len(header))
    names = [row[i_name].strip() for row in rows]
    columns = []
    for index, what in ((i_lat, "latitude"), (i_lon, "longitude")):
        where = lambda r, what=what: f"row {r + 2} ({names[r]}) {what}"  # noqa: E731
        columns.append(parse_numbers(path, [row[index] for row in rows], where, decimal_comma, allow_empty=False))
    latlon = np.stack(columns, axis=1).reshape(-1, 2)
    for k, (what, limit) in enumerate((("latitude", 90), ("longitude", 180))):
        bad = np.flatnonzero(~(np.abs(latlon[:, k]) <= limit))
        if bad.size:
            r = int(bad[0])
            raise DataError(f"{path}: row {r + 2} ({names[r]}): {what} {latlon[r, k]:g} is outside [-{limit}, {limit}]")
    return names, latlon


def _matrix_csv(
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
            name = _first_cell(line, separator)
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


def _pairs(path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool, symmetrize: bool) -> PairTable:
    """A pair list ``source,target,distance[,weight]``: only the listed pairs are known, held as COO arrays.

    Places are numbered in order of first appearance. A pair listed twice must have the same
    distance (or is averaged with ``symmetrize``); its weights are averaged. Weight 0 or an empty
    distance leaves a pair unknown.
    """
    sources, targets, d, w = _pair_rows(path, header, rows, decimal_comma)
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
    empty = _empty_distances(path, sources, targets, d)
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


def _empty_distances(path: Path, sources: list[str], targets: list[str], d: np.ndarray) -> str | None:
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


def _pair_rows(
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


def _read_npy(path: Path, names_path: str | Path | None, symmetrize: bool) -> MatrixTable:
    """A square ``.npy`` matrix, with names from a text file (one per line) or ``0..n-1``.

    The header is read first: a file that is not a plain ``.npy`` array (a ``.npz``, a pickle), whose
    shape is not square, or that is shorter than its header claims is refused before any memory is
    set aside for it. Complex numbers are taken when every imaginary part is 0, refused otherwise.
    """
    size = paths.check_file(path, "data file").stat().st_size
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
        except (ValueError, OSError) as e:
            raise DataError(f"{path}: not a NumPy .npy array ({str(e).splitlines()[0]})") from None
        offset = f.tell()
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise DataError(f"{path}: the array holds {dtype}, not numbers")
    if len(shape) != 2 or shape[0] != shape[1]:
        raise DataError(f"{path}: the distance matrix is not square (shape {tuple(shape)})")
    if offset + shape[0] * shape[1] * dtype.itemsize > size:
        raise DataError(f"{path}: the file is shorter than the {shape[0]} x {shape[1]} array its header declares")
    try:
        d = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a NumPy .npy array ({str(e).splitlines()[0]})") from None
    if np.iscomplexobj(d):
        if np.any(d.imag != 0):
            raise DataError(f"{path}: the array holds complex numbers with non-zero imaginary parts")
        d = d.real
    names = None
    if names_path is not None:
        names_file = Path(names_path)
        text = paths.read_text(names_file, "names file")
        names = [line.strip() for line in io.StringIO(text, newline=None) if line.strip()]
        validation.check_names(str(names_file), names)
        if len(names) != d.shape[0]:
            raise DataError(f"{names_file}: {len(names)} names for the {d.shape[0]} x {d.shape[0]} matrix in {path}")
    return from_matrix(d.astype(np.float64), names, source=str(path), symmetrize=symmetrize, owned=True)


def packaged_path(kind: str, name: str) -> Path:
    """Path of a bundled file (``kind`` is ``data`` or ``configs``), installed or in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / kind / name, here.parent / kind / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"bundled {kind} file {name!r} is missing from the installation")


def load_new_places(
    path: str | Path, fitted: list[str], fitted_latlon: np.ndarray | None = None, format: str = "auto"
) -> NewPlaces | None:
    """Read new places and their distances to the places of a fitted map (``predict`` of new places).

    ``path`` is a places CSV (distances to the fitted places computed from latitude/longitude, when
    the fit had them), a pair list whose pairs join a new place to a fitted one, or a matrix CSV
    with new places as rows and fitted places as columns (an empty cell: unknown). Rows naming
    fitted places are left out. Returns None when the file names no new place (the fitted places
    themselves: their map is drawn again).
    """
    path = paths.check_file(path, "data file")
    if format not in FORMATS:
        raise DataError(f"{path}: unknown format {format!r}: expected one of {', '.join(FORMATS)}")
    if format == "npy" or path.suffix.lower() == ".npy":
        raise DataError(f"{path}: new places are read from a CSV (a places file, a pair list or a matrix)")
    header, lines, separator = _read_csv(path)
    decimal_comma = separator == ";" and any("," in line for line in lines)
    cols = {h.lower() for h in header}
    kind = format
    if kind == "auto":
        if "name" in cols and cols & set(LATITUDE) and cols & set(LONGITUDE):
            kind = "places"
        elif {"source", "target", "distance"} <= cols:
            kind = "pairs"
        else:
            kind = "matrix" if header and header[0] == "" else _csv_kind(path, header, lines, separator)
    position = {name: k for k, name in enumerate(fitted)}
    n = len(fitted)
    if kind == "places":
        names, latlon = _latlon_rows(path, header, _rows(lines, separator), decimal_comma)
        new = [k for k, name in enumerate(names) if name not in position]
        if not new:
            return None
        if fitted_latlon is None:
            raise DataError(
                f"{path}: the map was not fitted from latitude/longitude, so distances to its places cannot be "
                "computed: give the new places' distances (a pair list or a matrix)"
            )
        validation.check_names(str(path), [names[k] for k in new])
        d = geo.haversine(latlon[new][:, None, :], np.asarray(fitted_latlon)[None, :, :])
        return _checked_new(path, NewPlaces([names[k] for k in new], d, np.ones_like(d), str(path)))
    if kind == "pairs":
        sources, targets, values, weights = _pair_rows(path, header, _rows(lines, separator), decimal_comma)
        rows: dict[str, int] = {}
        entries = []
        between_fitted = 0
        for r, (a, b) in enumerate(zip(sources, targets, strict=True)):
            if a in position and b in position:
                between_fitted += 1  # a pair of fitted places: already on the map
                continue
            if a not in position and b not in position:
                raise DataError(
                    f"{path}: row {r + 2}: neither {a!r} nor {b!r} is a place of the fitted map (two new places, or a "
                    "misspelt name): each pair must join a new place to a fitted one"
                )
            new_name, old = (a, position[b]) if b in position else (b, position[a])
            entries.append((rows.setdefault(new_name, len(rows)), old, values[r], weights[r], r))
        if not rows:
            return None
        empty = _empty_distances(path, sources, targets, values)
        if empty:
            log.warning(empty)
        if between_fitted:
            log.info(f"{path}: {between_fitted} pair(s) of two fitted places left out: those places do not move")
        d, w = np.full((len(rows), n), np.nan), np.zeros((len(rows), n))
        for row, col, value, weight, r in entries:
            if np.isnan(value) or weight == 0:
                continue
            if np.isfinite(d[row, col]) and d[row, col] != value:
                raise DataError(f"{path}: row {r + 2}: pair {sources[r]} - {targets[r]} is listed twice with "
                                "different distances")  # fmt: skip
            d[row, col], w[row, col] = value, weight
        return _checked_new(path, NewPlaces(list(rows), d, w, str(path)))
    if kind != "matrix":
        raise DataError(f"{path}: format {kind!r} cannot hold new places")
    columns = header[1:]
    unknown = [name for name in columns if name not in position]
    if unknown:
        raise DataError(f"{path}: column {unknown[0]!r} is not a place of the fitted map (columns name fitted "
                        "places, rows new ones)")  # fmt: skip
    cols_index = np.array([position[name] for name in columns], dtype=np.int64)
    names, values = [], []
    for r, row in enumerate(_rows(lines, separator)):
        name = row[0].strip() if row else ""
        if len(row) != len(header):
            raise DataError(f"{path}: row {r + 2} ({name}) has {len(row) - 1} values, expected {len(columns)}")
        if name in position:
            continue
        where = lambda j, r=r, name=name: f"row {r + 2} ({name}), column {columns[j]}"  # noqa: E731
        values.append(parse_numbers(path, row[1:], where, decimal_comma, allow_empty=True))
        names.append(name)
    if not names:
        return None
    validation.check_names(str(path), names)
    d = np.full((len(names), n), np.nan)
    d[:, cols_index] = np.array(values)
    for test, problem in ((np.isinf(d), "is infinite"), (d < 0, "is negative")):
        if test.any():
            r, c = np.argwhere(test)[0]
            raise DataError(f"{path}: distance {d[r, c]:g} from {names[r]} to {fitted[c]} {problem}")
    return _checked_new(path, NewPlaces(names, d, np.where(np.isfinite(d), 1.0, 0.0), str(path)))


def _checked_new(path: Path, new: NewPlaces) -> NewPlaces:
    """Refuse a new place with fewer than 3 known distances to fitted places, naming it."""
    known = ((new.weights > 0) & np.isfinite(new.distances)).sum(axis=1)
    few = np.flatnonzero(known < MIN_KNOWN)
    if few.size:
        k = int(few[0])
        raise DataError(
            f"{path}: new place {new.names[k]!r} has {known[k]} known distance(s) to places of the fitted map: "
            f"at least {MIN_KNOWN} are needed to place it"
        )
    return new
