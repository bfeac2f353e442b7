"""Parquet files (through pyarrow, the ``large`` extra): a pair list or places, with the CSV readers' checks.

The columns are those of the CSV of the same kind: ``source,target,distance[,weight]`` for a pair
list, ``name,latitude,longitude`` for places (any order, any case, other columns ignored). Names may
be strings or integers (a graph's node ids); numbers any numeric type, or strings read as the CSV
readers read cells. A null is an empty cell. Rows are numbered as in the CSV the file stands for,
the first data row being row 2, so that every message is the CSV reader's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from citymap_lightning.errors import DataError
from citymap_lightning.readers.pairs import pair_columns, pairs_table
from citymap_lightning.readers.places import from_latlon, latlon_columns
from citymap_lightning.readers.text import LATITUDE, LONGITUDE, find_column
from citymap_lightning.tables import DistanceTable

SUFFIXES = (".parquet", ".pq")
"""Extensions read as Parquet by ``--data.format auto``."""


def read_parquet(path: Path, symmetrize: bool) -> DistanceTable:
    """A pair list or places from a Parquet file; a one-line error when pyarrow is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"{path}: reading Parquet needs pyarrow: pip install 'citymap-lightning[large]' (or save the table as CSV)"
        ) from None
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"{path}: not a Parquet file ({_first_line(e)})") from None
    header = [name.strip() for name in schema.names]
    cols = {h.lower() for h in header}
    if "name" in cols and cols & set(LATITUDE) and cols & set(LONGITUDE):
        fields: tuple[int, ...] = (find_column(path, header, ("name",)), find_column(path, header, LATITUDE),
                                   find_column(path, header, LONGITUDE))  # fmt: skip
        names = (fields[0],)
    elif {"source", "target", "distance"} <= cols:
        i_w = find_column(path, header, ("weight",)) if "weight" in cols else -1
        fields = (find_column(path, header, ("source",)), find_column(path, header, ("target",)),
                  find_column(path, header, ("distance",)), i_w)  # fmt: skip
        names = fields[:2]
    else:
        raise DataError(
            f"{path}: unrecognised columns {','.join(header)!r}: expected name,latitude,longitude or "
            "source,target,distance[,weight]"
        )
    try:
        table = pq.read_table(path, columns=[schema.names[k] for k in fields if k >= 0])
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"{path}: the Parquet file cannot be read ({_first_line(e)})") from None
    columns = {k: _cells(path, schema.names[k], table.column(schema.names[k]), k in names) for k in fields if k >= 0}
    del table
    if len(fields) == 3:
        place_names, latlon = latlon_columns(path, fields, columns, decimal_comma=False)  # type: ignore[arg-type]
        return from_latlon(place_names, latlon, source=str(path))
    return pairs_table(path, *pair_columns(path, fields, columns, decimal_comma=False), symmetrize)  # type: ignore[arg-type]


def _cells(path: Path, column: str, values: Any, is_name: bool) -> list[str] | np.ndarray:
    """A column as the CSV readers take it: names as strings (null: empty), numbers as float64 (null: NaN).

    A column of strings where numbers are expected is left as strings: the CSV readers parse them,
    with their messages.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = values.type
    if is_name or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            try:
                values = pc.cast(values, pa.string())
            except (pa.ArrowException, ValueError):
                raise DataError(f"{path}: column {column!r} holds {kind}, not names") from None
        return ["" if v is None else v for v in values.to_pylist()]
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
        raise DataError(f"{path}: column {column!r} holds {kind}, not numbers")
    return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
