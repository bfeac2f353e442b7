"""New places and their distances to a fitted map's places, for ``predict``: any CSV kind."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from citymap_lightning import geometry as geo
from citymap_lightning import paths, validation
from citymap_lightning.errors import DataError
from citymap_lightning.placing import MIN_KNOWN, NewPlaces
from citymap_lightning.readers.pairs import empty_distances, pair_rows
from citymap_lightning.readers.places import latlon_rows
from citymap_lightning.readers.text import (
    FORMATS,
    LATITUDE,
    LONGITUDE,
    csv_kind,
    decimal_commas,
    parse_numbers,
    read_csv,
    split_rows,
)

log = logging.getLogger("citymap_lightning")


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
    if format in ("npy", "parquet") or path.suffix.lower() in (".npy", ".parquet", ".pq"):
        raise DataError(f"{path}: new places are read from a CSV (a places file, a pair list or a matrix)")
    header, lines, separator = read_csv(path)
    decimal_comma = decimal_commas(separator, lines)
    cols = {h.lower() for h in header}
    kind = format
    if kind == "auto":
        if "name" in cols and cols & set(LATITUDE) and cols & set(LONGITUDE):
            kind = "places"
        elif {"source", "target", "distance"} <= cols:
            kind = "pairs"
        else:
            kind = "matrix" if header and header[0] == "" else csv_kind(path, header, lines, separator)
    position = {name: k for k, name in enumerate(fitted)}
    n = len(fitted)
    if kind == "places":
        names, latlon = latlon_rows(path, header, split_rows(lines, separator), decimal_comma)
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
        sources, targets, values, weights = pair_rows(path, header, split_rows(lines, separator), decimal_comma)
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
        empty = empty_distances(path, sources, targets, values)
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
    columns = header[1:]
    unknown = [name for name in columns if name not in position]
    if unknown:
        raise DataError(f"{path}: column {unknown[0]!r} is not a place of the fitted map (columns name fitted "
                        "places, rows new ones)")  # fmt: skip
    cols_index = np.array([position[name] for name in columns], dtype=np.int64)
    names, values = [], []
    for r, row in enumerate(split_rows(lines, separator)):
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
