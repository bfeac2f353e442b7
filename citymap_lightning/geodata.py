"""The fitted map as a GeoDataFrame and as GeoParquet (geopandas and pyarrow, in the optional ``geo`` extra).

Where the map's real frame is known (latitude/longitude in the input, anchors at latitude/longitude,
positions or places found by name) each place is a point in longitude/latitude, EPSG:4326; otherwise
a point at its map position (x, y and, for 3-D maps, z in the input's unit) with no CRS, since
those coordinates are on no map of the Earth. Every row also has the map coordinates in the input's
unit and the place's share of the residual.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from citymap_lightning import output

if TYPE_CHECKING:
    from citymap_lightning.result import FittedMap

INSTALL = "pip install 'citymap-lightning[geo]'"


def geopandas_available() -> bool:
    """Whether geopandas and pyarrow (to write Parquet) can be imported."""
    try:
        import geopandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def to_geodataframe(fit: FittedMap) -> Any:
    """A ``geopandas.GeoDataFrame``, one row per place in input order: ``name``, ``x``, ``y`` (...), ``stress_share``.

    For places found by name, also ``geonameid``, ``region`` and ``country`` of each match (missing where a
    name was not found).

    Raises:
        ImportError: geopandas is not installed (with what to install).

    """
    try:
        import geopandas
    except ImportError as error:
        raise ImportError(f"FittedMap.to_geopandas needs geopandas: {INSTALL}") from error
    coords = np.asarray(fit.coords, dtype=np.float64)
    axes = ["x", "y", "z"] + [f"x{k}" for k in range(4, coords.shape[1] + 1)]
    columns: dict[str, Any] = {"name": list(fit.names)}
    columns |= {axis: coords[:, k] for k, axis in enumerate(axes[: coords.shape[1]])}
    columns["stress_share"] = np.asarray(fit.place_share, dtype=np.float64)
    if fit.geonames is not None:  # what each name matched in GeoNames (missing where not found)
        import pandas

        columns["geonameid"] = pandas.array([int(v) if v else None for v in fit.geonames["geonameid"]], dtype="Int64")
        columns["region"] = [v or None for v in fit.geonames["region"]]
        columns["country"] = [v or None for v in fit.geonames["country"]]
    if fit.latlon is not None:
        latlon = np.asarray(fit.latlon, dtype=np.float64)
        columns["latitude"], columns["longitude"] = latlon[:, 0], latlon[:, 1]
        points = geopandas.points_from_xy(latlon[:, 1], latlon[:, 0], crs="EPSG:4326")
        return geopandas.GeoDataFrame(columns, geometry=points, crs="EPSG:4326")
    y = coords[:, 1] if coords.shape[1] > 1 else np.zeros(len(coords))
    z = coords[:, 2] if coords.shape[1] == 3 else None
    return geopandas.GeoDataFrame(columns, geometry=geopandas.points_from_xy(coords[:, 0], y, z))


def write_parquet(path: str | Path, fit: FittedMap) -> Path | None:
    """``coordinates.parquet`` (GeoParquet) of :func:`to_geodataframe`, atomically; None without geopandas/pyarrow."""
    if not geopandas_available():
        return None
    frame = to_geodataframe(fit)
    return output.atomic_write(path, lambda f: frame.to_parquet(f, index=False), binary=True)
