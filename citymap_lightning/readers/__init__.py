"""Readers: a file becomes a table of the right kind (places, dense matrix or sparse pairs), validated.

One module per input format (:mod:`.places`, :mod:`.matrix`, :mod:`.pairs`, :mod:`.npy`, :mod:`.parquet`,
and :mod:`.new_places` for ``predict``); :mod:`.text` holds what the CSV readers share. Everything a user
can get wrong in a file ends in a :class:`DataError` whose message names the file and the problem in
one line; the CLI prints it without a traceback.
"""

from __future__ import annotations

from pathlib import Path

from citymap_lightning import paths
from citymap_lightning.errors import DataError
from citymap_lightning.readers.matrix import from_matrix, read_matrix
from citymap_lightning.readers.new_places import load_new_places
from citymap_lightning.readers.npy import read_npy
from citymap_lightning.readers.pairs import read_pairs
from citymap_lightning.readers.parquet import SUFFIXES as PARQUET_SUFFIXES
from citymap_lightning.readers.parquet import read_parquet
from citymap_lightning.readers.places import from_latlon, read_places
from citymap_lightning.readers.text import (
    FORMATS,
    LATITUDE,
    LONGITUDE,
    MISSING,
    body_lines,
    csv_kind,
    head_lines,
    read_csv_body,
    read_rows,
)
from citymap_lightning.tables import DistanceTable

__all__ = [
    "FORMATS", "LATITUDE", "LONGITUDE", "MISSING", "from_latlon", "from_matrix", "load_new_places", "load_table",
    "read_rows",
]  # fmt: skip


def load_table(
    path: str | Path,
    format: str = "auto",
    names: str | Path | None = None,
    symmetrize: bool = False,
) -> DistanceTable:
    """Read and validate the distance input at ``path``.

    Args:
        path: a places CSV (``name,latitude,longitude``), a square matrix as CSV (names in the first
            row and column) or ``.npy``, or a pair list CSV (``source,target,distance[,weight]``); a
            pair list or places as Parquet (``.parquet``, with pyarrow: the ``large`` extra).
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
        return read_npy(path, names, symmetrize)
    if names is not None:
        raise DataError(f"{names}: a names file goes with a .npy matrix; a CSV names its places itself")
    if format == "parquet" or (format == "auto" and suffix in PARQUET_SUFFIXES):
        return read_parquet(path, symmetrize)
    if format == "auto" and suffix not in (".csv", ".tsv", ".txt"):
        raise DataError(
            f"{path}: unknown extension {path.suffix!r}: expected .csv, .npy or .parquet (or set --data.format)"
        )
    header, body, separator = read_csv_body(path)
    kind = format if format != "auto" else csv_kind(path, header, head_lines(body, len(header) - 1), separator)
    decimal_comma = separator == ";" and "," in body  # decimal_commas of the lines, without cutting them
    if kind == "places":
        return read_places(path, header, body, separator, decimal_comma)
    if kind == "pairs":
        return read_pairs(path, header, body, separator, decimal_comma, symmetrize)
    lines = body_lines(body)
    del body
    return read_matrix(path, header, lines, separator, decimal_comma, symmetrize)
