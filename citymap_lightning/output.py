"""Result files, written atomically: a crash never leaves a truncated file behind."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

import numpy as np


def atomic_write(path: str | Path, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": "", "encoding": "utf-8"})) as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.resolve()


def _umask() -> int:
    """The process umask (mkstemp creates files readable by the owner only)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_table(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a CSV atomically."""

    def write(f: IO) -> None:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)

    return atomic_write(path, write)


def csv_cell(text: str) -> str:
    """A text cell as the csv module writes it (quoted only when it holds a comma, a quote or a line break)."""
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\r\n') else text


def write_coordinates(
    path: str | Path, names: Sequence[str], coords: np.ndarray, extra: dict[str, Sequence[str]] | None = None
) -> Path:
    """``coordinates.csv``: ``name,x,y`` (``name,x`` in 1-D, ``,z`` and more in higher dimensions), one row per place.

    Numbers have 10 significant digits, so that any unit, from 1e-30 to 1e30, keeps its precision.
    ``extra``: text columns after the coordinates, one value per place (``geonameid,region,country`` of
    places found by name). Written as one string (the same bytes as the csv module's, a third of its
    time at a million places).
    """
    coords = np.asarray(coords, dtype=np.float64)
    extra = extra or {}
    axes = ["x", "y", "z"] + [f"x{k}" for k in range(4, coords.shape[1] + 1)]
    row = ",".join(["{}"] + ["{:.10g}"] * coords.shape[1] + ["{}"] * len(extra)) + "\r\n"
    cells = [map(csv_cell, names), *coords.T.tolist(), *(map(csv_cell, values) for values in extra.values())]
    header = ["name", *axes[: coords.shape[1]], *extra]
    text = ",".join(header) + "\r\n" + "".join(map(row.format, *cells))
    return atomic_write(path, lambda f: f.write(text))


def write_matrix(path: str | Path, rows: Sequence[str], columns: Sequence[str], values: np.ndarray) -> Path:
    """A distance matrix CSV as the readers take it: an empty corner, column names, then a named row each.

    ``rows`` and ``columns`` may differ (new places against fitted ones, for ``predict``); NaN is an
    empty cell (an unknown distance).
    """
    body = [[name, *("" if np.isnan(v) else f"{v:.10g}" for v in row)] for name, row in zip(rows, values, strict=True)]
    return write_table(path, ["", *columns], body)


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Save an RGBA array (from :func:`citymap_lightning.render.to_image`) as a PNG, atomically."""
    from matplotlib.image import imsave

    return atomic_write(path, lambda f: imsave(f, image, format="png"), binary=True)


def write_pairs(path: str | Path, names: Sequence[str], given: np.ndarray, fitted: np.ndarray) -> Path:
    """``pairs_fitted.csv``: every pair once, its given distance (empty when unknown) and the fitted one."""
    i, j = np.triu_indices(len(names), 1)
    rows = (
        [names[a], names[b], "" if np.isnan(g) else f"{g:.10g}", f"{f:.10g}"]
        for a, b, g, f in zip(i, j, given[i, j], fitted[i, j], strict=True)
    )
    return write_table(path, ["source", "target", "distance", "fitted"], rows)


def write_geojson(
    path: str | Path, names: Sequence[str], latlon: np.ndarray, properties: Sequence[dict] | None = None
) -> Path:
    """``coordinates.geojson``: an RFC 7946 FeatureCollection of Points (longitude first, WGS84), one per line.

    ``properties``: one dict per place, added to its ``name``. Features are formatted as strings
    (coordinates to 6 decimals, about 0.1 m), not built as a tree of dicts: a million places
    take seconds, not a minute and gigabytes.
    """
    import json
    from json.encoder import encode_basestring

    latlon = np.asarray(latlon, dtype=np.float64)
    if len(names) != len(latlon) or (properties is not None and len(properties) != len(names)):
        raise ValueError(f"{len(names)} names for {len(latlon)} positions")
    head = '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [%.6f, %.6f]}, "properties": '
    if properties is None:
        tails = [f'{{"name": {encode_basestring(name)}}}}}' for name in names]
    else:
        tails = [
            json.dumps({"name": name, **extra}, ensure_ascii=False) + "}"
            for name, extra in zip(names, properties, strict=True)
        ]
    lines = [head % (lon, lat) + tail for (lat, lon), tail in zip(latlon.tolist(), tails, strict=True)]
    text = '{"type": "FeatureCollection", "features": [\n' + ",\n".join(lines) + "\n]}\n"
    return atomic_write(path, lambda f: f.write(text))
