"""Places by latitude/longitude (``name,latitude,longitude``): great-circle distances, computed on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from citymap_lightning import validation
from citymap_lightning.errors import DataError
from citymap_lightning.readers.text import LATITUDE, LONGITUDE, check_row_lengths, find_column, parse_numbers
from citymap_lightning.tables import PlacesTable


def from_latlon(names: list[str], latlon: np.ndarray, source: str = "") -> PlacesTable:
    """A complete table of great-circle distances (km) between places given by latitude/longitude."""
    table = PlacesTable(names=list(names), latlon=np.asarray(latlon, dtype=np.float64), source=source)
    return validation.validate_places(table)


def read_places(path: Path, header: list[str], rows: list[list[str]], decimal_comma: bool) -> PlacesTable:
    """A places CSV: great-circle distances between ``name,latitude,longitude`` rows."""
    names, latlon = latlon_rows(path, header, rows, decimal_comma)
    return from_latlon(names, latlon, source=str(path))


def latlon_rows(
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
