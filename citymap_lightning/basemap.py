"""Base maps: coastlines and country borders under a map whose frame is geographic.

The lines are Natural Earth's (https://www.naturalearthdata.com, public domain; made with Natural
Earth), 1:50m Admin 0 countries version 4.1.0, bundled as ``basemap.npz`` (about 0.2 MB, built once by
``scripts/make_basemap.py`` from the npm package ``world-atlas`` 2.0.2; the file's ``source`` says so).
Nothing is downloaded. A coastline is an edge of one country, a border an edge two countries share.

A map's frame is geographic when its places' latitude/longitude are known (given, anchors, real
positions, or names found in the gazetteer): :class:`~citymap_lightning.align.GeoFrame` says how a
point of the map becomes latitude/longitude, the inverse of an azimuthal equidistant projection about
a centre, scaled (``km_per_unit``) and shifted. The lines go the other way: projected about the same
centre, shifted back and divided by the scale (:func:`in_frame`). On a time-space map (a map of travel
times set against the places' real positions) they go through the warp of the distortion grid
instead (:func:`warped`, :mod:`citymap_lightning.spline`), so that the country shrinks where travel is
fast and stretches where it is slow, as in Spiekermann and Wegener's time-space maps; there they are
drawn within the places' hull and a margin only.

Lines are drawn thin and grey, under everything else (:func:`draw_under`; :func:`plotly_traces` for
``map.html``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from citymap_lightning import geometry as geo

if TYPE_CHECKING:
    from citymap_lightning.align import GeoFrame
    from citymap_lightning.comparison import Positions
    from citymap_lightning.result import FittedMap
    from citymap_lightning.spline import Warp

PATH = Path(__file__).resolve().parent / "basemap.npz"
COAST, BORDER = 0, 1
"""The file's ``kind`` of each line."""
CREDIT = "Natural Earth"
"""Whose lines they are (public domain), for a legend or a layer's name."""
COAST_STYLE = {"colors": "0.55", "linewidths": 0.6}
BORDER_STYLE = {"colors": "0.7", "linewidths": 0.45, "linestyles": (0, (3, 1.5))}
STRONG = {"colors": "0.25", "linewidths": 0.9}
"""The coastlines where they are the figure's subject (a time-space map's distortion)."""
ZORDER = 0.6
"""Under the paths (1), the points and the labels, and the grid lines (``axes.axisbelow``: 1.5)."""
FARTHEST = 170.0
"""Degrees from the projection's centre beyond which no line is drawn (about the antipode the azimuthal
equidistant projection tears the Earth into a ring)."""
AROUND = 0.5
"""Lines are kept within the places' extent grown by this share of it on each side (``map.html`` pans)."""


@dataclass(frozen=True)
class World:
    """Every line of the file: its points' latitude/longitude, where each line starts, what it is."""

    latlon: np.ndarray
    starts: np.ndarray
    kind: np.ndarray
    source: str


@functools.cache
def world() -> World:
    """The bundled lines, read once."""
    with np.load(PATH, allow_pickle=False) as data:
        quantized = np.cumsum(data["deltas"].astype(np.int64), axis=0)
        lonlat = quantized * data["scale"] + data["translate"]
        return World(
            latlon=np.ascontiguousarray(lonlat[:, ::-1]), starts=data["starts"].astype(np.int64),
            kind=data["kind"].astype(np.int8), source=str(data["source"]),
        )  # fmt: skip


@dataclass
class Lines:
    """Coastlines and borders in a figure's frame: polylines ``(k, 2)``.

    Attributes:
        coast: the coastlines.
        borders: the land borders.
        smoothing: for lines carried through a time-space map's warp, the spline's smoothing (else None).

    """

    coast: list[np.ndarray] = field(default_factory=list)
    borders: list[np.ndarray] = field(default_factory=list)
    smoothing: float | None = None

    def __len__(self) -> int:
        return len(self.coast) + len(self.borders)


def _segments_ok(world_: World) -> np.ndarray:
    """``(points - 1,)`` bool: segment ``k`` (points ``k``, ``k + 1``) lies within one line."""
    ok = np.ones(max(len(world_.latlon) - 1, 0), dtype=bool)
    ok[world_.starts[1:-1] - 1] = False
    return ok


def _pieces(xy: np.ndarray, keep_segment: np.ndarray, world_: World) -> Lines:
    """The runs of consecutive kept segments, as coastlines and borders."""
    keep = keep_segment & _segments_ok(world_)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(np.int8), [0]])))
    first, last = edges[::2], edges[1::2]  # segments first..last-1: points first..last
    kind = world_.kind[np.searchsorted(world_.starts, first, side="right") - 1]
    out = Lines()
    for a, b, k in zip(first.tolist(), last.tolist(), kind.tolist(), strict=True):
        (out.coast if k == COAST else out.borders).append(xy[a : b + 1])
    return out


def _near(centre: tuple[float, float], world_: World) -> np.ndarray:
    """``(points,)`` bool: within :data:`FARTHEST` degrees of ``centre``."""
    u = geo.to_unit_vectors(world_.latlon)
    return u @ geo.to_unit_vectors(np.array([centre], dtype=np.float64))[0] > np.cos(np.radians(FARTHEST))


def in_frame(frame: GeoFrame, low: np.ndarray, high: np.ndarray) -> Lines | None:
    """The lines in a flat map's frame, cut to the box ``low``-``high`` (the map's units).

    ``frame`` says how the map's points become latitude/longitude; None when it is no azimuthal projection
    about a centre (a sphere's).
    """
    if frame is None or frame.centre is None:
        return None
    shift = np.zeros(2) if frame.shift is None else np.asarray(frame.shift, dtype=np.float64)[:2]
    return _boxed(frame.centre, shift, float(frame.km_per_unit), low, high)


def real_plane(centre: tuple[float, float], low: np.ndarray, high: np.ndarray) -> Lines:
    """The lines on the real plane (km, azimuthal equidistant about ``centre``), cut to the box ``low``-``high``."""
    return _boxed(centre, np.zeros(2), 1.0, low, high)


def _boxed(centre: tuple[float, float], shift: np.ndarray, km_per_unit: float, low: np.ndarray,
           high: np.ndarray) -> Lines:  # fmt: skip
    """Lines at ``(AE(latlon, centre) - shift) / km_per_unit``, the segments that touch the box kept."""
    world_ = world()
    near = _near(centre, world_)
    xy = (geo.azimuthal_equidistant(world_.latlon, centre) - shift) / km_per_unit
    x0, x1, y0, y1 = xy[:-1, 0], xy[1:, 0], xy[:-1, 1], xy[1:, 1]
    touches = ((np.minimum(x0, x1) <= high[0]) & (np.maximum(x0, x1) >= low[0])
               & (np.minimum(y0, y1) <= high[1]) & (np.maximum(y0, y1) >= low[1]))  # fmt: skip
    return _pieces(xy, touches & near[:-1] & near[1:], world_)


def warped(centre: tuple[float, float], real: np.ndarray, mapped: np.ndarray, warp: Warp | None = None) -> Lines:
    """The lines carried from the real plane (km about ``centre``) onto a map, within the warp's region only.

    The warp is :func:`citymap_lightning.spline.fit`'s of the places ``real`` onto ``mapped``, or ``warp``.
    """
    from citymap_lightning import spline

    warp = spline.fit(real, mapped) if warp is None else warp
    world_ = world()
    region = warp.region
    near = _near(centre, world_)
    xy = geo.azimuthal_equidistant(world_.latlon, centre)
    inside = near & (xy >= region.low).all(axis=1) & (xy <= region.high).all(axis=1)
    inside[inside] = region.contains(xy[inside])
    lines = _pieces(xy, inside[:-1] & inside[1:], world_)
    out = Lines(smoothing=warp.smoothing)
    for source, target in ((lines.coast, out.coast), (lines.borders, out.borders)):
        if source:
            moved = warp(np.concatenate(source))
            target.extend(np.split(moved, np.cumsum([len(line) for line in source])[:-1]))
    return out


def box(coords: np.ndarray, around: float = AROUND) -> tuple[np.ndarray, np.ndarray]:
    """The places' bounding box grown by ``around`` times their extent on each side."""
    coords = np.asarray(coords, dtype=np.float64)[:, :2]
    low, high = coords.min(axis=0), coords.max(axis=0)
    grow = around * max(float((high - low).max()), np.finfo(float).tiny)
    return low - grow, high + grow


def for_map(fit: FittedMap, positions: Positions | None = None) -> Lines | None:
    """The lines under a flat map in a geographic frame (None otherwise, or with no line near it).

    A time-space map (its frame from real positions given as latitude/longitude, ``positions``) gets them
    through the warp of the positions onto the map (none without ``positions``); any other geographic map
    through its frame.
    """
    coords = np.asarray(fit.coords)
    if coords.ndim != 2 or coords.shape[1] != 2 or fit.geometry != "plane" or fit.frame is None:
        return None
    if fit.frame.centre is None:
        return None
    if fit.located_by == "positions":  # a time-space map: through the warp, or not at all
        if positions is None or positions.centre is None:
            return None
        lines = warped(positions.centre, positions.xy, coords[positions.index])
    else:
        lines = in_frame(fit.frame, *box(coords))
    return lines if lines else None


def draw_under(ax: Any, lines: Lines | None, strong: bool = False) -> None:
    """Draw the lines on matplotlib axes, thin and grey, under everything (gids ``coastlines`` and ``borders``).

    The axes' limits stay as they are. ``strong``: darker coastlines, for a figure about them.
    """
    from matplotlib.collections import LineCollection

    if not lines:
        return
    coast = COAST_STYLE | (STRONG if strong else {})
    for gid, polylines, style in (("coastlines", lines.coast, coast), ("borders", lines.borders, BORDER_STYLE)):
        if polylines:
            collection = LineCollection(polylines, zorder=ZORDER, capstyle="round", joinstyle="round", **style)
            collection.set_gid(gid)
            ax.add_collection(collection, autolim=False)


def on_comparison(ax: Any, comparison: Any, warp: Warp | None = None) -> None:
    """Draw the coastlines under a comparison's figure: on the real plane, or carried onto the map by ``warp``.

    Nothing when the positions have no latitude/longitude (no ``centre``).
    """
    centre = getattr(comparison, "centre", None)
    if centre is None:
        return
    if warp is None:
        draw_under(ax, real_plane(centre, *box(comparison.geo)))
    else:
        draw_under(ax, warped(centre, comparison.geo, comparison.aligned, warp), strong=True)


def plotly_traces(go: Any, lines: Lines | None) -> list[Any]:
    """``map.html``'s layer: the coastlines and the borders, one legend entry for both, under the places."""
    if not lines:
        return []
    label = f"coastlines and borders ({CREDIT})" + (", warped onto the map" if lines.smoothing is not None else "")
    traces = []
    for name, polylines, colour, dash in (("coast", lines.coast, "#8c8c8c", "solid"),
                                          ("borders", lines.borders, "#b3b3b3", "dot")):  # fmt: skip
        if not polylines:
            continue
        gaps = [np.vstack([line, [[np.nan, np.nan]]]) for line in polylines]
        xy = np.concatenate(gaps).astype(np.float32)
        traces.append(go.Scatter(
            x=xy[:, 0], y=xy[:, 1], mode="lines", name=label, legendgroup="basemap",
            showlegend=not traces, hoverinfo="skip", connectgaps=False, meta=name,
            line={"color": colour, "width": 0.8, "dash": dash},
        ))  # fmt: skip
    return traces
