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


def write_coordinates(path: str | Path, names: Sequence[str], coords: np.ndarray) -> Path:
    """``coordinates.csv``: ``name,x,y`` (``name,x`` in 1-D, ``,z`` and more in higher dimensions), one row per place.

    Numbers have 10 significant digits, so that any unit, from 1e-30 to 1e30, keeps its precision.
    """
    axes = ["x", "y", "z"] + [f"x{k}" for k in range(4, coords.shape[1] + 1)]
    rows = [[name, *(f"{v:.10g}" for v in row)] for name, row in zip(names, coords, strict=False)]
    return write_table(path, ["name", *axes[: coords.shape[1]]], rows)


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
    """``coordinates.geojson``: an RFC 7946 FeatureCollection of Points (longitude first, WGS84).

    ``properties``: one dict per place, added to its ``name``.
    """
    import json

    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(float(lon), 6), round(float(lat), 6)]},
            "properties": {"name": name, **(properties[k] if properties else {})},
        }
        for k, (name, (lat, lon)) in enumerate(zip(names, latlon, strict=True))
    ]
    text = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1)
    return atomic_write(path, lambda f: f.write(text + "\n"))
