"""Places by latitude/longitude (``name,latitude,longitude``): great-circle distances, computed on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from citymap_lightning import validation
from citymap_lightning.errors import DataError
from citymap_lightning.readers.text import (
    LATITUDE,
    LONGITUDE,
    body_lines,
    check_row_lengths,
    column_numbers,
    find_column,
    plain_columns,
    split_rows,
)
from citymap_lightning.tables import PlacesTable


def from_latlon(names: list[str], latlon: np.ndarray, source: str = "") -> PlacesTable:
    """A complete table of great-circle distances (km) between places given by latitude/longitude."""
    table = PlacesTable(names=list(names), latlon=np.asarray(latlon, dtype=np.float64), source=source)
    return validation.validate_places(table)


def read_places(path: Path, header: list[str], body: str, separator: str, decimal_comma: bool) -> PlacesTable:
    """A places CSV: great-circle distances between ``name,latitude,longitude`` rows.

    A plain body (every row as long as the header, no value across lines) is cut into cells at once;
    any other goes through the csv module row by row.
    """
    fields = latlon_fields(path, header)
    columns = plain_columns(body, separator, len(header))
    if columns is None:
        rows = split_rows(body_lines(body), separator)
        del body
        names, latlon = latlon_rows(path, header, rows, decimal_comma)
    else:
        del body
        names, latlon = latlon_columns(path, fields, columns, decimal_comma)
    return from_latlon(names, latlon, source=str(path))


def latlon_fields(path: Path, header: list[str]) -> tuple[int, int, int]:
    """The columns of name, latitude and longitude in a places CSV's header."""
    name = find_column(path, header, ("name",))
    return name, find_column(path, header, LATITUDE), find_column(path, header, LONGITUDE)


def latlon_rows(
    path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool
) -> tuple[list[str], np.ndarray]:
    """Names and ``(n, 2)`` latitude/longitude of a places CSV's rows, each checked for range."""
    fields = latlon_fields(path, header)
    check_row_lengths(path, rows, max(fields) + 1, len(header))
    return latlon_columns(path, fields, {k: [row[k] for row in rows] for k in fields}, decimal_comma)


def latlon_columns(
    path: Path, fields: tuple[int, int, int], columns: Any, decimal_comma: bool
) -> tuple[list[str], np.ndarray]:
    """As :func:`latlon_rows`, from the cells by column (``columns[k]``: column ``k``'s cells)."""
    i_name, i_lat, i_lon = fields
    names = list(map(str.strip, columns[i_name]))
    result = []
    for index, what in ((i_lat, "latitude"), (i_lon, "longitude")):
        where = lambda r, what=what: f"row {r + 2} ({names[r]}) {what}"  # noqa: E731
        result.append(column_numbers(path, columns[index], where, decimal_comma, allow_empty=False))
    latlon = np.stack(result, axis=1).reshape(-1, 2)
    for k, (what, limit) in enumerate((("latitude", 90), ("longitude", 180))):
        bad = np.flatnonzero(~(np.abs(latlon[:, k]) <= limit))
        if bad.size:
            r = int(bad[0])
            raise DataError(f"{path}: row {r + 2} ({names[r]}): {what} {latlon[r, k]:g} is outside [-{limit}, {limit}]")
    return names, latlon
