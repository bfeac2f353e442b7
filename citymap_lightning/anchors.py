"""Anchored places: places whose position is known are held fixed, and the others are fitted to their distances.

An anchors file is ``name,latitude,longitude`` or ``name,x,y``. Latitude/longitude anchors are put
on the plane by the azimuthal equidistant projection about their spherical centre (km, x east,
y north), the projection :mod:`citymap_lightning.align` aligns with; on a sphere they are
directions. The map's frame is then the anchors' frame: nothing is aligned after the fit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from citymap_lightning import geometry as geo
from citymap_lightning.errors import ConfigError, DataError
from citymap_lightning.lists import listed
from citymap_lightning.readers import text as reading
from citymap_lightning.readers.text import LATITUDE as _LAT
from citymap_lightning.readers.text import LONGITUDE as _LON
from citymap_lightning.tables import DistanceTable

log = logging.getLogger("citymap_lightning")

CONTRADICTION = 0.10
"""A pair of anchors whose given distance differs from their anchored distance by more than this is named."""


@dataclass
class Anchors:
    """Known positions of some places, as given.

    Attributes:
        names: the anchored places' names.
        positions: ``(k, 2)`` latitude/longitude in degrees, or x/y in the input's unit.
        latlon: whether ``positions`` are latitude/longitude.
        source: where they came from (a file, or ``anchors``).

    """

    names: list[str]
    positions: np.ndarray
    latlon: bool
    source: str = "anchors"


@dataclass
class Placed:
    """Anchors matched to a table's places and put in the map's frame.

    Attributes:
        index: ``(k,)`` the anchored places' indices in the table.
        coords: ``(k, 2)`` positions on the plane, in the input's unit (km for latitude/longitude).
        latlon: ``(k, 2)`` latitude/longitude when the anchors were given so, else None.
        centre: the projection's centre (latitude, longitude) for latitude/longitude anchors, else None.
        source: where the anchors came from.

    """

    index: np.ndarray
    coords: np.ndarray
    latlon: np.ndarray | None
    centre: tuple[float, float] | None
    source: str

    def directions(self) -> np.ndarray:
        """``(k, 3)`` unit vectors of latitude/longitude anchors (for a sphere)."""
        return geo.to_unit_vectors(self.latlon)


def read(path: str | Path, what: str = "anchors file") -> Anchors:
    """Read an anchors CSV: ``name,latitude,longitude`` or ``name,x,y`` (one line names the file and the problem).

    ``what`` names the file in messages (the same format holds ``--data.positions``).
    """
    path = Path(path)
    listed = "anchored" if what == "anchors file" else "listed"
    header, rows, decimal_comma = reading.read_rows(path, what)
    lower = [h.lower() for h in header]
    if "name" not in lower:
        raise DataError(f"{path}: no 'name' column in the header {','.join(header)!r}: expected name,latitude,"
                        "longitude or name,x,y")  # fmt: skip
    latlon = bool(set(lower) & set(_LAT)) and bool(set(lower) & set(_LON))
    axes = (_LAT, _LON) if latlon else (("x",), ("y",))
    if not latlon and not {"x", "y"} <= set(lower):
        raise DataError(f"{path}: header {','.join(header)!r}: expected name,latitude,longitude or name,x,y")
    columns = [reading.find_column(path, header, ("name",))] + [reading.find_column(path, header, a) for a in axes]
    reading.check_row_lengths(path, rows, max(columns) + 1, len(header))
    names = [row[columns[0]].strip() for row in rows]
    if not names:
        raise DataError(f"{path}: no places in the {what}")
    values = []
    for index, what in zip(columns[1:], ("latitude", "longitude") if latlon else ("x", "y"), strict=True):
        where = lambda r, what=what: f"row {r + 2} ({names[r]}) {what}"  # noqa: E731
        values.append(
            reading.parse_numbers(path, [row[index] for row in rows], where, decimal_comma, allow_empty=False)
        )
    return checked(Anchors(names, np.stack(values, axis=1), latlon, str(path)), listed)


def from_object(anchors: Any, latlon: bool | None = None) -> Anchors:
    """Anchors from a file path, an :class:`Anchors`, a mapping ``{name: (a, b)}`` or a pandas DataFrame.

    A DataFrame is indexed by name; columns named latitude/longitude (or lat/lon) make
    latitude/longitude anchors, any other two columns x/y. For a mapping, ``latlon`` says which.
    """
    if isinstance(anchors, Anchors):
        return checked(anchors)
    if isinstance(anchors, (str, Path)):
        return read(anchors)
    if hasattr(anchors, "index") and hasattr(anchors, "columns"):  # a pandas DataFrame
        lower = [str(c).lower() for c in anchors.columns]
        lat = next((k for k, c in enumerate(lower) if c in _LAT), None)
        lon = next((k for k, c in enumerate(lower) if c in _LON), None)
        if lat is not None and lon is not None:
            values, is_latlon = anchors.iloc[:, [lat, lon]].to_numpy(dtype=float), True
        elif anchors.shape[1] == 2:
            values, is_latlon = anchors.to_numpy(dtype=float), bool(latlon)
        else:
            raise ConfigError("anchors: a DataFrame needs latitude/longitude columns, or exactly two columns x, y")
        return checked(Anchors([str(k) for k in anchors.index], values, is_latlon))
    if isinstance(anchors, Mapping):
        names = [str(k) for k in anchors]
        try:
            values = np.array([np.asarray(v, dtype=float).reshape(2) for v in anchors.values()]).reshape(-1, 2)
        except (TypeError, ValueError):
            raise ConfigError("anchors: each anchor must be two numbers (x, y or latitude, longitude)") from None
        return checked(Anchors(names, values, bool(latlon)))
    raise ConfigError(f"anchors: expected a file, a mapping or a DataFrame, not {type(anchors).__name__}")


def checked(anchors: Anchors, listed: str = "anchored") -> Anchors:
    """Refuse duplicate names, non-finite positions and latitudes/longitudes out of range, in one line.

    ``listed`` says what a name given twice is (``anchored``; ``listed`` for positions compared with).
    """
    where = anchors.source
    seen: set[str] = set()
    for name in anchors.names:
        if name in seen:
            raise DataError(f"{where}: {name!r} is {listed} twice")
        seen.add(name)
    p = np.asarray(anchors.positions, dtype=float)
    bad = np.flatnonzero(~np.isfinite(p).all(axis=1))
    if bad.size:
        raise DataError(f"{where}: the position of {anchors.names[bad[0]]!r} is not a finite number")
    if anchors.latlon:
        for k, (what, limit) in enumerate((("latitude", 90), ("longitude", 180))):
            bad = np.flatnonzero(np.abs(p[:, k]) > limit)
            if bad.size:
                raise DataError(f"{where}: {anchors.names[bad[0]]}: {what} {p[bad[0], k]:g} is outside "
                                f"[-{limit}, {limit}]")  # fmt: skip
    anchors.positions = p
    return anchors


def place(anchors: Anchors, table: DistanceTable) -> Placed:
    """Match anchors to the table's places by name and put them in the map's frame; warn of contradictions."""
    position = {name: k for k, name in enumerate(table.names)}
    unknown = [name for name in anchors.names if name not in position]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise DataError(f"{anchors.source}: anchor {unknown[0]!r}{more} is not a place of {table.source or 'the data'}")
    index = np.array([position[name] for name in anchors.names], dtype=np.int64)
    if anchors.latlon:
        centre = _map_centre(anchors.positions, index, table)
        coords = geo.azimuthal_equidistant(anchors.positions, centre)
        placed = Placed(index, coords, anchors.positions.copy(), centre, anchors.source)
    else:
        placed = Placed(index, anchors.positions.copy(), None, None, anchors.source)
    if len(index) < 3 or not _spread(placed.coords):
        what = "the map's position" if len(index) == 1 else "the map's position and turn, not its reflection"
        log.warning(f"{anchors.source}: {len(index)} anchor(s) fix {what}: anchor 3 or more places not on one line")
    warn_contradictions(placed, table)
    return placed


def _map_centre(latlon: np.ndarray, index: np.ndarray, table: DistanceTable) -> tuple[float, float]:
    """The centre of the projection latitude/longitude anchors are put on: the spherical centre of every place.

    That is the projection the package aligns a map with (:func:`citymap_lightning.align.true_plane`):
    about the centre of the whole map, its distortion (a stretch across the directions from the
    centre) is smallest where the places are. Places without latitude/longitude are located by the
    classical-MDS map (the fit's own start) fitted onto the anchors by a similarity; with fewer than
    3 anchors, or anchors on a line, the anchors' own centre is used.
    """
    if table.latlon is not None:
        return geo.spherical_centre(table.latlon)
    own = geo.spherical_centre(latlon)
    plane = geo.azimuthal_equidistant(latlon, own)
    if len(index) < 3 or not _spread(plane):
        return own
    from citymap_lightning import align, starts

    rough = starts.initial_coords("classical", table, 2, np.random.default_rng(0))
    fit, scale = align.similarity(rough[index], plane)
    every = geo.inverse_azimuthal_equidistant(scale * (rough - fit.centre) @ fit.rotation + fit.offset, own)
    return geo.spherical_centre(every)


def _spread(coords: np.ndarray) -> bool:
    """Whether 2-D points span both dimensions (not all on one line)."""
    centred = coords - coords.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    return len(singular) >= 2 and singular[1] > 1e-6 * max(singular[0], 1e-300)


def check_model(placed: Placed, geometry: str, dim: int) -> None:
    """Anchors give 2-D positions: a 2-D plane, or (latitude/longitude anchors) a sphere."""
    if geometry == "sphere" and placed.latlon is None:
        raise ConfigError(f"{placed.source}: x/y anchors cannot be put on a sphere: give latitude/longitude")
    if geometry != "sphere" and (geometry != "plane" or dim != 2):
        raise ConfigError(f"{placed.source}: anchors give 2-D positions: fit a 2-D plane (or a sphere), not "
                          f"geometry {geometry!r} with dim={dim}")  # fmt: skip


def anchored_distances(placed: Placed, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances between anchors ``a[k]`` and ``b[k]`` (positions in ``placed``): great-circle km, or Euclidean."""
    if placed.latlon is not None:
        return geo.haversine(placed.latlon[a], placed.latlon[b])
    return np.linalg.norm(placed.coords[a] - placed.coords[b], axis=1)


def warn_contradictions(placed: Placed, table: DistanceTable) -> list[str]:
    """Warn, naming them, of anchor pairs whose given distance differs from the anchored one by over 10%."""
    k = len(placed.index)
    if k < 2:
        return []
    a, b = np.triu_indices(k, 1)
    given = table.pair_distances(placed.index[a], placed.index[b])
    known = np.isfinite(given)
    a, b, given = a[known], b[known], given[known]
    anchored = anchored_distances(placed, a, b)
    off = np.abs(given - anchored) > CONTRADICTION * np.maximum(given, anchored)
    found = [f"{table.names[placed.index[p]]} - {table.names[placed.index[q]]} (given {g:.4g}, anchored {d:.4g})"
             for p, q, g, d in zip(a[off], b[off], given[off], anchored[off], strict=True)]  # fmt: skip
    if found:
        shown = listed(found, 5, sep="; ")
        counts = np.bincount(np.concatenate([a[off], b[off]]), minlength=k)
        worst = int(np.argmax(counts))
        suspect = ""
        if counts[worst] > 1 and counts[worst] == len(found):
            suspect = f" ({table.names[placed.index[worst]]} is in every one: is its position right?)"
        # one anchor in every contradiction points at that anchor, not at the unit
        unit = " (are the distances in km?)" if placed.latlon is not None and off.mean() > 0.5 and not suspect else ""
        log.warning(
            f"{placed.source}: {len(found)} pair(s) of anchors contradict the distances by more than "
            f"{CONTRADICTION:.0%}{unit}{suspect}: {shown}"
        )
    return found


def align_start(init: np.ndarray, placed: Placed, anchor_coords: np.ndarray, sphere: bool) -> np.ndarray:
    """Move a start onto the anchors (similarity on a plane, rotation on a sphere), then pin the anchors exactly.

    ``anchor_coords`` are the anchors in the fit's units (plane) or unit directions (sphere).
    """
    from citymap_lightning import align

    init = np.array(init, dtype=np.float64)
    source = init[placed.index]
    if sphere:
        if len(source) >= 2:
            init = align.rotation_only(source, anchor_coords).apply(init)
    elif len(source) >= 2:
        fit, scale = align.similarity(source, anchor_coords)
        init = scale * ((init - fit.centre) @ fit.rotation) + fit.offset
    else:
        init = init - source.mean(axis=0) + anchor_coords.mean(axis=0)
    init[placed.index] = anchor_coords
    return init
