"""Read and validate distance inputs: places with latitude/longitude, square matrices, pair lists.

Everything a user can get wrong in a file ends in a :class:`DataError` whose message names the file
and the problem in one line; the CLI prints it without a traceback.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from citymap_lightning import geo
from citymap_lightning.errors import DataError

log = logging.getLogger("citymap_lightning")

FORMATS = ("auto", "places", "matrix", "pairs", "npy")
"""Values of ``--data.format``: ``auto`` tells the format from the extension and the header."""

_LAT = ("latitude", "lat")
_LON = ("longitude", "lon", "lng", "long")
SYMMETRY_RTOL = 1e-6
"""Relative difference between ``d[i, j]`` and ``d[j, i]`` above which a matrix is called asymmetric."""


@dataclass
class DistanceTable:
    """Places and the known distances between them.

    Attributes:
        names: place names, in input order.
        distances: ``(n, n)`` float64, symmetric, zero diagonal, NaN where the pair is unknown; None
            for a *lazy* places table, whose distances are computed from ``latlon`` when asked for
            (:meth:`pair_distances`, :meth:`columns`), so that no ``n x n`` matrix is ever held.
        weights: ``(n, n)`` per-pair weights (1 unless given), 0 where the pair is unknown; None
            for a lazy table (every weight 1).
        latlon: ``(n, 2)`` latitude/longitude in degrees when the input had them, else None.
        source: the file the table came from.
        unit: the distances' unit when known ("km" for great-circle distances), else "".

    """

    names: list[str]
    distances: np.ndarray | None
    weights: np.ndarray | None
    latlon: np.ndarray | None = None
    source: str = ""
    unit: str = ""
    kind: str = "matrix"
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of places."""
        return len(self.names)

    @property
    def lazy(self) -> bool:
        """True when distances are computed from latitude/longitude on demand (no matrix is held)."""
        return self.distances is None

    @property
    def known(self) -> np.ndarray:
        """``(n, n)`` bool: the pair's distance is known (and its weight positive); False on the diagonal."""
        if self.distances is None:
            k = np.ones((self.n, self.n), dtype=bool)
        else:
            k = np.isfinite(self.distances) & (self.weights > 0)
        np.fill_diagonal(k, False)
        return k

    @property
    def n_known_pairs(self) -> int:
        """Number of unordered pairs with a known distance."""
        if self.distances is None:
            return self.n_pairs
        return int(self.known.sum()) // 2  # known is symmetric

    def materialise(self) -> DistanceTable:
        """Compute and keep the distance matrix of a lazy table (a no-op for others)."""
        if self.distances is None:
            self.distances = geo.distance_matrix(self.latlon)
            self.weights = np.ones((self.n, self.n))
        return self

    def pair_distances(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Distances of the pairs ``(i[k], j[k])`` (great-circle from latitude/longitude for a lazy table)."""
        if self.distances is None:
            return geo.haversine(self.latlon[i], self.latlon[j])
        return self.distances[i, j]

    def pair_weights(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Weights of the pairs ``(i[k], j[k])`` (1 for a lazy table)."""
        if self.weights is None:
            return np.ones(len(i))
        return self.weights[i, j]

    def columns(self, cols: np.ndarray) -> np.ndarray:
        """``(n, len(cols))`` distances from every place to the places ``cols`` (NaN where unknown)."""
        if self.distances is None:
            return geo.haversine(self.latlon[:, None, :], self.latlon[None, cols, :])
        d = self.distances[:, cols]
        known = (np.isfinite(d) & (self.weights[:, cols] > 0)) | (np.arange(self.n)[:, None] == cols)
        return np.where(known, d, np.nan)

    @property
    def n_pairs(self) -> int:
        """Number of unordered pairs."""
        return self.n * (self.n - 1) // 2


def from_latlon(names: list[str], latlon: np.ndarray, source: str = "", lazy: bool = False) -> DistanceTable:
    """A complete table of great-circle distances (km) between places given by latitude/longitude.

    ``lazy`` keeps no matrix: distances are computed for the pairs asked for.
    """
    latlon = np.asarray(latlon, dtype=np.float64)
    table = DistanceTable(
        names=list(names),
        distances=None if lazy else geo.distance_matrix(latlon),
        weights=None if lazy else np.ones((len(names), len(names))),
        latlon=latlon,
        source=source,
        unit="km",
        kind="places",
    )
    return validate(table, computed=True)


def from_matrix(
    distances: np.ndarray,
    names: list[str] | None = None,
    weights: np.ndarray | None = None,
    source: str = "",
    symmetrize: bool = False,
) -> DistanceTable:
    """A table from a square matrix (NaN marks unknown pairs); names default to ``0..n-1``."""
    d = np.asarray(distances, dtype=np.float64)
    where = source or "the matrix"
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise DataError(f"{where}: the distance matrix is not square (shape {tuple(d.shape)})")
    names = [str(i) for i in range(d.shape[0])] if names is None else list(names)
    if len(names) != d.shape[0]:
        raise DataError(f"{where}: {len(names)} names for a {d.shape[0]} x {d.shape[0]} matrix")
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=np.float64)
    table = DistanceTable(names=names, distances=d.copy(), weights=w.copy(), source=source)
    return validate(table, symmetrize=symmetrize)


def load_table(
    path: str | Path,
    format: str = "auto",
    names: str | Path | None = None,
    symmetrize: bool = False,
    lazy: bool = False,
) -> DistanceTable:
    """Read and validate the distance input at ``path``.

    Args:
        path: a places CSV (``name,latitude,longitude``), a square matrix as CSV (names in the first
            row and column) or ``.npy``, or a pair list CSV (``source,target,distance[,weight]``).
        format: one of :data:`FORMATS`; ``auto`` tells it from the extension and the header.
        names: for ``.npy`` matrices, a text file with one name per line (UTF-8).
        symmetrize: average ``d[i, j]`` and ``d[j, i]`` when they differ, instead of refusing.
        lazy: for a places CSV, hold no distance matrix (see :class:`DistanceTable`).

    """
    path = Path(path)
    if format not in FORMATS:
        raise DataError(f"{path}: unknown format {format!r}: expected one of {', '.join(FORMATS)}")
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a data file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    if format == "npy" or (format == "auto" and suffix == ".npy"):
        return _read_npy(path, names, symmetrize)
    if format == "auto" and suffix not in (".csv", ".tsv", ".txt"):
        raise DataError(f"{path}: unknown extension {path.suffix!r}: expected .csv or .npy (or set --data.format)")
    header, rows, decimal_comma = _read_csv(path)
    kind = format if format != "auto" else _csv_kind(path, header, rows)
    if kind == "places":
        return _places(path, header, rows, decimal_comma, lazy)
    if kind == "pairs":
        return _pairs(path, header, rows, decimal_comma, symmetrize)
    if kind == "matrix":
        return _matrix_csv(path, header, rows, decimal_comma, symmetrize)
    raise DataError(f"{path}: format {kind!r} is not a CSV format")


def _read_csv(path: Path) -> tuple[list[str], list[list[str]], bool]:
    """Header and rows of a CSV from a spreadsheet: UTF-8 with or without BOM, `,` `;` or tab separated."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8 CSV") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: the file is empty")
    first = lines[0]
    separator = max((";", "\t", ","), key=first.count) if any(c in first for c in ";\t,") else ","
    rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=separator)]
    return rows[0], rows[1:], separator == ";"


def _csv_kind(path: Path, header: list[str], rows: list[list[str]]) -> str:
    """Tell places, pairs or matrix from a CSV header (a matrix: empty corner, or row names = column names)."""
    cols = {h.lower() for h in header}
    if "name" in cols and cols & set(_LAT) and cols & set(_LON):
        return "places"
    if {"source", "target", "distance"} <= cols:
        return "pairs"
    row_names = [row[0] for row in rows if row]
    if len(header) >= 2 and (header[0] == "" or (row_names and row_names == header[1 : 1 + len(row_names)])):
        return "matrix"
    raise DataError(
        f"{path}: unrecognised header {','.join(header)!r}: expected name,latitude,longitude; "
        "source,target,distance; or a matrix with names in the first row and column"
    )


def _number(path: Path, cell: str, where: str, decimal_comma: bool, allow_empty: bool = False) -> float:
    """Parse one numeric cell; empty cells are NaN (unknown) where allowed."""
    text = cell.replace(",", ".") if decimal_comma else cell
    if text == "" or text.lower() in ("nan", "na", "n/a"):
        if allow_empty:
            return math.nan
        raise DataError(f"{path}: {where}: empty cell")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}: {where}: {cell!r} is not a number") from None
    return value


def _column(path: Path, header: list[str], options: tuple[str, ...]) -> int:
    """Index of the first header column named one of ``options`` (case-insensitive)."""
    lower = [h.lower() for h in header]
    for name in options:
        if name in lower:
            return lower.index(name)
    raise DataError(f"{path}: no {options[0]!r} column in the header {','.join(header)!r}")


def _cells(path: Path, rows: list[list[str]], width: int) -> None:
    """Refuse rows shorter than the header needs."""
    for r, row in enumerate(rows, start=2):
        if len(row) < width:
            raise DataError(f"{path}: row {r} has {len(row)} cells, expected at least {width}")


def _places(
    path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool, lazy: bool = False
) -> DistanceTable:
    """A places CSV: great-circle distances between ``name,latitude,longitude`` rows."""
    i_name, i_lat, i_lon = _column(path, header, ("name",)), _column(path, header, _LAT), _column(path, header, _LON)
    _cells(path, rows, max(i_name, i_lat, i_lon) + 1)
    names = [row[i_name] for row in rows]
    latlon = np.array(
        [
            [
                _number(path, row[i_lat], f"row {r} ({row[i_name]}) latitude", decimal_comma),
                _number(path, row[i_lon], f"row {r} ({row[i_name]}) longitude", decimal_comma),
            ]
            for r, row in enumerate(rows, start=2)
        ],
        dtype=np.float64,
    ).reshape(-1, 2)
    for r, (name, (lat, lon)) in enumerate(zip(names, latlon, strict=False), start=2):
        if not (math.isfinite(lat) and -90 <= lat <= 90):
            raise DataError(f"{path}: row {r} ({name}): latitude {lat:g} is outside [-90, 90]")
        if not (math.isfinite(lon) and -180 <= lon <= 180):
            raise DataError(f"{path}: row {r} ({name}): longitude {lon:g} is outside [-180, 180]")
    _check_names(path, names)
    return from_latlon(names, latlon, source=str(path), lazy=lazy)


def _matrix_csv(
    path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool, symmetrize: bool
) -> DistanceTable:
    """A square matrix CSV with names in the first row and the first column."""
    names = header[1:]
    n = len(names)
    if len(rows) != n:
        raise DataError(f"{path}: not square: {n} names in the header but {len(rows)} rows")
    d = np.empty((n, n))
    for i, row in enumerate(rows):
        if len(row) != n + 1:
            raise DataError(
                f"{path}: not square: row {i + 2} ({row[0] if row else ''}) has {len(row) - 1} values, expected {n}"
            )
        if row[0] != names[i]:
            raise DataError(f"{path}: row {i + 2} is named {row[0]!r} but column {i + 2} is {names[i]!r}")
        for j, cell in enumerate(row[1:]):
            d[i, j] = _number(path, cell, f"row {i + 2} ({row[0]}), column {names[j]}", decimal_comma, True)
    _check_names(path, names)
    return from_matrix(d, names, source=str(path), symmetrize=symmetrize)


def _pairs(
    path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool, symmetrize: bool
) -> DistanceTable:
    """A pair list ``source,target,distance[,weight]``: only the listed pairs are known."""
    i_s, i_t = _column(path, header, ("source",)), _column(path, header, ("target",))
    i_d = _column(path, header, ("distance",))
    has_w = "weight" in [h.lower() for h in header]
    i_w = _column(path, header, ("weight",)) if has_w else -1
    _cells(path, rows, max(i_s, i_t, i_d, i_w) + 1)
    index: dict[str, int] = {}
    for row in rows:
        for name in (row[i_s], row[i_t]):
            if name == "":
                raise DataError(f"{path}: a row has an empty place name")
            index.setdefault(name, len(index))
    n = len(index)
    d = np.full((n, n), np.nan)
    w = np.ones((n, n))
    np.fill_diagonal(d, 0.0)
    for r, row in enumerate(rows, start=2):
        a, b = index[row[i_s]], index[row[i_t]]
        value = _number(path, row[i_d], f"row {r} ({row[i_s]} - {row[i_t]}) distance", decimal_comma, True)
        weight = 1.0
        if has_w:
            weight = _number(path, row[i_w], f"row {r} ({row[i_s]} - {row[i_t]}) weight", decimal_comma, True)
            weight = 1.0 if math.isnan(weight) else weight
            if not math.isfinite(weight) or weight < 0:
                raise DataError(f"{path}: row {r} ({row[i_s]} - {row[i_t]}): weight {weight:g} must be finite and >= 0")
        if a == b:
            if not (value == 0 or math.isnan(value)):
                raise DataError(f"{path}: row {r}: distance from {row[i_s]} to itself is {value:g}, not 0")
            continue
        if math.isnan(value):
            continue
        for i, j in ((a, b), (b, a)):
            if np.isfinite(d[i, j]) and d[i, j] != value and not symmetrize:
                raise DataError(
                    f"{path}: row {r}: pair {row[i_s]} - {row[i_t]} is listed twice with different distances"
                )
        if np.isfinite(d[a, b]) and symmetrize:
            value = (d[a, b] + value) / 2
        d[a, b] = d[b, a] = value
        w[a, b] = w[b, a] = weight
    table = DistanceTable(names=list(index), distances=d, weights=w, source=str(path), kind="pairs")
    return validate(table)


def _read_npy(path: Path, names_path: str | Path | None, symmetrize: bool) -> DistanceTable:
    """A square ``.npy`` matrix, with names from a text file (one per line) or ``0..n-1``."""
    try:
        d = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a NumPy .npy array ({str(e).splitlines()[0]})") from None
    if not np.issubdtype(d.dtype, np.number):
        raise DataError(f"{path}: the array holds {d.dtype}, not numbers")
    names = None
    if names_path is not None:
        names_file = Path(names_path)
        if not names_file.exists():
            raise DataError(f"{names_file}: names file not found")
        try:
            names = [line.strip() for line in names_file.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        except UnicodeDecodeError:
            raise DataError(f"{names_file}: names file is not UTF-8 text") from None
        _check_names(names_file, names)
        if d.ndim == 2 and d.shape[0] == d.shape[1] and len(names) != d.shape[0]:
            raise DataError(f"{names_file}: {len(names)} names for the {d.shape[0]} x {d.shape[0]} matrix in {path}")
    return from_matrix(d.astype(np.float64), names, source=str(path), symmetrize=symmetrize)


def _check_names(path: Path | str, names: list[str]) -> None:
    """Refuse empty or duplicate names."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name == "":
            raise DataError(f"{path}: place {i + 1} has an empty name")
        if name in seen:
            raise DataError(f"{path}: duplicate name {name!r} (places {seen[name] + 1} and {i + 1})")
        seen[name] = i


def validate(table: DistanceTable, symmetrize: bool = False, computed: bool = False) -> DistanceTable:
    """Check a table's distances and structure; fix what may be fixed with a warning, refuse the rest.

    Refused: fewer than 3 places, duplicate names, infinite or negative distances, a diagonal that
    is not 0, asymmetry (unless ``symmetrize``), a place with no known distance, places split into
    unconnected groups, and inputs whose known distances are all 0. A ``computed`` matrix (great-circle
    distances of places) is finite, symmetric and complete by construction: only names and zero
    distances are checked.
    """
    where, d, names = table.source or "input", table.distances, table.names
    n = len(names)
    if n < 3:
        raise DataError(f"{where}: {n} place{'s' if n != 1 else ''}: a map needs at least 3")
    _check_names(where, names)
    if computed:
        _, first, group = np.unique(table.latlon, axis=0, return_index=True, return_inverse=True)
        if len(first) == 1:
            raise DataError(f"{where}: every known distance is 0: nothing to map")
        same = np.flatnonzero(first[group.ravel()] != np.arange(n))
        _warn_zero_distances(table, where, np.stack([first[group.ravel()][same], same], axis=1))
        return table
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
    d = _symmetric(where, d, names, symmetrize, table.warnings)
    table.distances = d
    known = table.known
    if not (d[known] > 0).any():
        raise DataError(f"{where}: every known distance is 0: nothing to map")
    counts = known.sum(axis=1)
    for i in np.flatnonzero(counts == 0):
        raise DataError(f"{where}: {names[i]} has no known distance to any other place")
    groups = _components(known)
    if len(groups) > 1:
        examples = ", ".join(f"{names[g[0]]} ({len(g)} place{'s' if len(g) > 1 else ''})" for g in groups[:5])
        raise DataError(
            f"{where}: the known pairs split the places into {len(groups)} unconnected groups whose relative "
            f"position is undetermined: {examples}"
        )
    for i in np.flatnonzero(counts < 3):
        _warn(table, f"{where}: {names[i]} has only {counts[i]} known distance(s): its position may be mirrored")
    _warn_zero_distances(table, where, np.argwhere(np.triu(known & (d == 0), 1)))
    return table


def _warn_zero_distances(table: DistanceTable, where: str, zero: np.ndarray) -> None:
    """Warn about (a few of) the pairs of different places at distance 0."""
    for i, j in zero[:5]:
        _warn(table, f"{where}: {table.names[i]} and {table.names[j]} are at distance 0: they will share a point")
    if len(zero) > 5:
        _warn(table, f"{where}: {len(zero)} pairs in all are at distance 0")


def _symmetric(where: str, d: np.ndarray, names: list[str], symmetrize: bool, notes: list[str]) -> np.ndarray:
    """``d`` made symmetric: one-sided pairs are copied across; two-sided ones must agree unless averaged."""
    d = d.copy()
    t = d.T
    one_sided = np.isnan(d) & ~np.isnan(t)
    d[one_sided] = t[one_sided]
    t = d.T
    scale = np.maximum(np.abs(d), np.abs(t))
    differ = np.abs(d - t) > SYMMETRY_RTOL * scale + 1e-12
    differ &= np.isfinite(d) & np.isfinite(t)
    if differ.any():
        i, j = np.argwhere(np.triu(differ, 1))[0]
        if not symmetrize:
            raise DataError(
                f"{where}: asymmetric: {names[i]} -> {names[j]} is {d[i, j]:g} but {names[j]} -> {names[i]} is "
                f"{d[j, i]:g}; pass --data.symmetrize true to average both directions"
            )
        count = int(np.triu(differ, 1).sum())
        message = f"{where}: {count} asymmetric pair(s) averaged (e.g. {names[i]} - {names[j]})"
        log.warning(message)
        notes.append(message)
        d = (d + d.T) / 2
    return d


def _components(known: np.ndarray) -> list[list[int]]:
    """Connected groups of places under the known pairs, largest first."""
    n = known.shape[0]
    label = np.full(n, -1)
    groups: list[list[int]] = []
    for start in range(n):
        if label[start] >= 0:
            continue
        label[start] = len(groups)
        group, frontier = [start], [start]
        while frontier:
            nxt = np.flatnonzero(known[frontier].any(axis=0) & (label < 0))
            label[nxt] = len(groups)
            group.extend(nxt.tolist())
            frontier = nxt.tolist()
        groups.append(sorted(group))
    return sorted(groups, key=len, reverse=True)


def _warn(table: DistanceTable, message: str) -> None:
    """Log a warning about the data and keep it with the table."""
    log.warning(message)
    table.warnings.append(message)


def packaged_path(kind: str, name: str) -> Path:
    """Path of a bundled file (``kind`` is ``data`` or ``configs``), installed or in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / kind / name, here.parent / kind / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"bundled {kind} file {name!r} is missing from the installation")
