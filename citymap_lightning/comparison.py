"""A map set against known positions, or against another map: time-space maps, asymmetry, two maps compared.

The comparison is the least-squares similarity (rotation, reflection, one uniform scale, shift) of
the map onto the positions over every common place, with no trimming: the scale is the positions'
unit (km) per unit of the input, for a table of hours the map's km per hour. Its coefficients are
R smacof's ``Procrustes``: Tucker's congruence of the two sets of inter-point distances and the
alienation ``sqrt(1 - congruence^2)``. Each place's displacement runs from its real position to its
place on the aligned map, with its bearing in degrees from north, clockwise.

An asymmetric table (``--data.symmetrize true``) is split into its symmetric part, which is fitted,
and its skew-symmetric part ``(A - A^T) / 2`` (Gower), which is reported: each place's drift (the
row mean) and, on the map, smacof's drift vectors.

The numbers are numpy; the figures are drawn with matplotlib on their own canvas, as in :mod:`render`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from citymap_lightning import align, output
from citymap_lightning import geometry as geo
from citymap_lightning.errors import DataError
from citymap_lightning.lists import listed

log = logging.getLogger("citymap_lightning")

MAX_PAIRS_PLACES = 3000
"""Congruence is computed over the pairs of at most this many places (an even sample beyond)."""
GRID_LINES = 15
"""Lines of the distortion grid in each direction."""


@dataclass
class Positions:
    """Known positions of some of a map's places, on the plane the comparison is made on.

    Attributes:
        index: ``(m,)`` the places' indices in the map.
        xy: ``(m, 2)`` their positions: km on the azimuthal equidistant projection about their
            spherical centre for latitude/longitude, else x/y as given.
        latlon: ``(m, 2)`` latitude/longitude when given so, else None.
        centre: the projection's centre, for latitude/longitude.
        source: where they came from (a file, ``gazetteer``).

    """

    index: np.ndarray
    xy: np.ndarray
    latlon: np.ndarray | None = None
    centre: tuple[float, float] | None = None
    source: str = "positions"


@dataclass
class Comparison:
    """A map fitted onto positions by a least-squares similarity, and how far each place lies from its position.

    Attributes:
        names: the common places.
        geo: ``(m, 2)`` their real positions.
        aligned: ``(m, 2)`` their places on the map, moved onto the positions by the similarity.
        scale: the similarity's scale (units of the positions per unit of the map).
        congruence: Tucker's congruence coefficient of the two sets of distances.
        alienation: ``sqrt(1 - congruence^2)``.
        displacement: ``(m,)`` from each real position to its place on the aligned map.
        bearing: ``(m,)`` that displacement's direction, degrees from north, clockwise (0 when under 1e-9 of
            the positions' extent).
        only_map: places of the map without a position.
        only_positions: positions of places not on the map.
        unit: the positions' unit, ``km`` for latitude/longitude (projected), "" when unknown (x/y
            positions, or another map's coordinates).
        centre: for latitude/longitude, the centre of the projection ``geo`` is on (for the coastlines).

    """

    names: list[str]
    geo: np.ndarray
    aligned: np.ndarray
    scale: float
    congruence: float
    alienation: float
    displacement: np.ndarray
    bearing: np.ndarray
    only_map: list[str] = field(default_factory=list)
    only_positions: list[str] = field(default_factory=list)
    unit: str = "km"
    centre: tuple[float, float] | None = None

    def summary(self) -> dict[str, float]:
        """The numbers of ``comparison.json``: displacements are ``*_km`` only when the positions are in km."""
        suffix = "_km" if self.unit == "km" else ""
        return {
            "scale": self.scale,
            "congruence": self.congruence,
            "alienation": self.alienation,
            f"median_displacement{suffix}": float(np.median(self.displacement)),
            f"max_displacement{suffix}": float(np.max(self.displacement)),
        }

    @property
    def unit_label(self) -> str:
        """The displacements' unit in words."""
        return self.unit or "the positions' unit"


def similarity_fit(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """``source`` moved onto ``target`` by the least-squares similarity (reflection allowed), and its scale."""
    orientation, scale = align.similarity(source, target)
    return scale * (source - orientation.centre) @ orientation.rotation + orientation.offset, scale


def _even_sample(m: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``m`` items, evenly spread (deterministic)."""
    return np.arange(m) if m <= limit else np.unique(np.linspace(0, m - 1, limit).round().astype(np.int64))


def congruence(x: np.ndarray, y: np.ndarray) -> float:
    """Tucker's congruence coefficient of the inter-point distances of ``x`` and ``y`` (as smacof's ``Procrustes``)."""
    keep = _even_sample(len(x), MAX_PAIRS_PLACES)
    x, y = x[keep], y[keep]
    i, j = np.triu_indices(len(x), 1)
    dx = np.linalg.norm(x[i] - x[j], axis=1)
    dy = np.linalg.norm(y[i] - y[j], axis=1)
    denominator = float(np.sqrt((dx * dx).sum() * (dy * dy).sum()))
    return float((dx * dy).sum() / denominator) if denominator > 0 else float("nan")


def compare(
    names: Sequence[str], coords: np.ndarray, positions: np.ndarray, only_map: Sequence[str] = (),
    only_positions: Sequence[str] = (), unit: str = "km", centre: tuple[float, float] | None = None,
) -> Comparison:  # fmt: skip
    """Fit ``coords`` (the map, ``(m, 2)``) onto ``positions`` (``(m, 2)``, the same places) and measure both."""
    coords = np.asarray(coords, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    aligned, scale = similarity_fit(coords, positions)
    offset = aligned - positions
    displacement = np.linalg.norm(offset, axis=1)
    bearing = np.degrees(np.arctan2(offset[:, 0], offset[:, 1])) % 360.0
    still = displacement <= 1e-9 * max(float(np.ptp(positions, axis=0).max()), np.finfo(float).tiny)
    bearing = np.where(still, 0.0, bearing)  # a rounding error's direction means nothing
    c = congruence(positions, aligned)
    return Comparison(
        names=list(names), geo=positions, aligned=aligned, scale=scale, congruence=c,
        alienation=float(np.sqrt(max(0.0, 1.0 - c * c))), displacement=displacement, bearing=bearing,
        only_map=list(only_map), only_positions=list(only_positions), unit=unit, centre=centre,
    )  # fmt: skip


def match_positions(given: Any, names: Sequence[str]) -> Positions:
    """Positions (an :class:`~citymap_lightning.anchors.Anchors`) matched by name to a map's places.

    Names the map lacks are left aside (said in one line); fewer than 3 common places is an error.
    """
    position = {name: k for k, name in enumerate(names)}
    common = [k for k, name in enumerate(given.names) if name in position]
    missing = [name for name in given.names if name not in position]
    if len(common) < 3:
        raise DataError(f"{given.source}: {len(common)} of its places are on the map: a comparison needs at least 3")
    if missing:
        import difflib

        unmatched = [name for name in names if name not in set(given.names)]
        close = difflib.get_close_matches(missing[0], unmatched, n=1, cutoff=0.8)
        hint = f" ({missing[0]!r}: did you mean {close[0]!r}?)" if close else ""
        log.warning(f"{given.source}: {len(missing)} place(s) not in the data left aside: "
                    f"{listed(missing, 3)}{hint}")  # fmt: skip
    index = np.array([position[given.names[k]] for k in common], dtype=np.int64)
    values = np.asarray(given.positions, dtype=np.float64)[common]
    if not given.latlon:
        return Positions(index, values, source=given.source)
    centre = geo.spherical_centre(values)
    return Positions(index, geo.azimuthal_equidistant(values, centre), values, centre, given.source)


def from_latlon(index: np.ndarray, latlon: np.ndarray, source: str) -> Positions:
    """Positions of places known by latitude/longitude (the gazetteer's), projected about their centre."""
    centre = geo.spherical_centre(latlon)
    return Positions(np.asarray(index), geo.azimuthal_equidistant(latlon, centre), latlon, centre, source)


def frame(coords: np.ndarray, positions: Positions) -> align.Orientation:
    """The rotation/reflection about the map's centroid (no scaling) that best lays it on the positions."""
    fit = align.procrustes(coords[positions.index], positions.xy)
    return align.Orientation(fit.rotation, coords.mean(axis=0), np.zeros(coords.shape[1]))


def geo_frame(coords: np.ndarray, positions: Positions) -> align.GeoFrame | None:
    """How points of a map framed by :func:`frame` become latitude/longitude (None for x/y positions)."""
    if positions.centre is None:
        return None
    fit, scale = align.similarity(coords[positions.index], positions.xy)
    shift = fit.offset - scale * fit.centre @ fit.rotation
    return align.GeoFrame(positions.centre, shift, scale)


def of_map(names: Sequence[str], coords: np.ndarray, positions: Positions) -> Comparison:
    """Compare a map's places with their known positions."""
    known = set(positions.index.tolist())
    only_map = [name for k, name in enumerate(names) if k not in known]
    unit = "km" if positions.latlon is not None else ""
    return compare([names[k] for k in positions.index], coords[positions.index], positions.xy, only_map, unit=unit,
                   centre=positions.centre)  # fmt: skip


# asymmetric tables


def skew_part(matrix: np.ndarray) -> np.ndarray:
    """The skew-symmetric part ``(A - A^T) / 2`` of a square table, 0 where either direction is unknown."""
    a = np.asarray(matrix, dtype=np.float64)
    skew = (a - a.T) / 2
    return np.where(np.isfinite(skew), skew, 0.0)


def drift(skew: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """Each place's row mean of the skew part over the other places (with both directions known).

    Positive: trips from the place take longer (are longer) than trips to it.
    """
    n = len(skew)
    known = ~np.eye(n, dtype=bool) if known is None else known & ~np.eye(n, dtype=bool)
    counts = np.maximum(known.sum(axis=1), 1)
    return np.where(known, skew, 0.0).sum(axis=1) / counts


def asymmetry_share(matrix: np.ndarray, skew: np.ndarray) -> float:
    """The skew part's Frobenius norm over the table's (over the pairs known both ways)."""
    a = np.asarray(matrix, dtype=np.float64)
    known = np.isfinite(a) & np.isfinite(a.T)
    total = float(np.sqrt((a[known] ** 2).sum()))
    return float(np.sqrt((skew[known] ** 2).sum()) / total) if total > 0 else 0.0


def drift_vectors(coords: np.ndarray, skew: np.ndarray) -> np.ndarray:
    """Drift vectors, as smacof's ``driftVectors``.

    For each place, the sum over the others of ``skew[i, j]`` times the unit vector towards j.
    """
    towards = coords[None, :, :] - coords[:, None, :]
    length = np.linalg.norm(towards, axis=2, keepdims=True)
    unit = np.divide(towards, length, out=np.zeros_like(towards), where=length > 0)
    return (skew[:, :, None] * unit).sum(axis=1)


# files and figures


def write(comparison: Comparison, folder: Path, unit: str = "", extra: dict[str, float] | None = None) -> list[Path]:
    """``comparison.json`` (with ``extra`` numbers), ``comparison.csv``; returns the paths."""
    summary = comparison.summary() | (extra or {})
    numbers: dict[str, object] = {k: round(v, 10) for k, v in summary.items()}
    text = json.dumps(numbers | {"displacement_unit": comparison.unit_label}, indent=1)
    paths = [output.atomic_write(folder / "comparison.json", lambda f: f.write(text + "\n"))]
    rows = [
        [name, *(f"{v:.10g}" for v in (*g, *a)), f"{d:.6g}", f"{b:.2f}"]
        for name, g, a, d, b in zip(
            comparison.names, comparison.geo, comparison.aligned, comparison.displacement, comparison.bearing,
            strict=True,
        )
    ]  # fmt: skip
    header = ["name", "x_geo", "y_geo", "x", "y", "displacement", "bearing"]
    paths.append(output.write_table(folder / "comparison.csv", header, rows))
    return paths


def write_asymmetry(folder: Path, names: Sequence[str], drifts: np.ndarray, share: float | None) -> list[Path]:
    """``asymmetry.csv`` (``name,drift``) and, when ``share`` is given, ``asymmetry.json``."""
    rows = [[name, f"{d:.10g}"] for name, d in zip(names, drifts, strict=True)]
    paths = [output.write_table(folder / "asymmetry.csv", ["name", "drift"], rows)]
    if share is not None:
        text = json.dumps({"asymmetry_share": round(share, 10)}, indent=1)
        paths.append(output.atomic_write(folder / "asymmetry.json", lambda f: f.write(text + "\n")))
    return paths


def _labels(ax: Any, coords: np.ndarray, names: Sequence[str], order: np.ndarray | None = None) -> None:
    """Name the places: every one up to ``render.ALL_LABELS``, else a subset that fits, in ``order``.

    Up to the limit :func:`render.place_labels` moves the labels clear of each other and of the dots. Call it
    once the axes' limits are set: above the limit each label takes a free spot about its point
    (:func:`render.label_subset`), measured on the settled figure. ``order`` says which places matter most
    (the largest displacements for the comparison's figures), by default an even spread over the map.
    """
    from citymap_lightning import render

    if len(names) <= render.ALL_LABELS:
        render.place_labels(ax, np.asarray(coords, dtype=np.float64), list(names))
        return
    limit = render.ALL_LABELS
    order = render.label_priority(coords, limit=4 * limit) if order is None else np.asarray(order)[: 4 * limit]
    render.label_subset(ax, coords, list(names), order, limit)


def _axes(ax: Any, points: np.ndarray, unit: str, geographic: bool | None = None) -> None:
    """Map axes about ``points`` with the unit on both, a scale bar and, in a geographic frame, a north arrow.

    ``geographic`` None: geographic when the unit is known (km of projected latitude/longitude).
    """
    from citymap_lightning import render

    geographic = bool(unit) if geographic is None else geographic
    xlim, ylim = render._limits(points)
    render._map_axes(ax, xlim, ylim, unit, geographic)
    render.map_furniture(ax, unit, geographic)


SEEN = 0.03
"""Displacement arrows are drawn magnified when the larger ones (the 90th percentile) are under this share of the
map's extent: a 3 km shift on a 4,000 km map is 2 pixels long."""
LONGEST = 0.25
"""A magnification never draws the longest arrow over this share of the map's extent."""
KEY_SHARE = 0.08
"""An arrow scale is drawn at most this share of the map's extent long."""
ARROW_WIDTH = 0.004
"""Arrows' shaft width, as a share of the axes' width (quiver's ``width``); heads are 3.5 and 5 shafts."""


def magnification(lengths: np.ndarray, extent: float) -> int:
    """A round factor (1, 2 or 5 times a power of ten) to draw arrows by so that short ones are seen; 1 if they are.

    The larger arrows (the 90th percentile of ``lengths``) are drawn at least :data:`SEEN` of ``extent`` long
    where that keeps the longest under :data:`LONGEST`; ``arrows ×20`` in a title says that they were.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    typical = float(np.percentile(lengths, 90)) if len(lengths) else 0.0
    if typical <= 0 or extent <= 0 or typical >= SEEN * extent:
        return 1
    wanted = min(SEEN * extent / typical, LONGEST * extent / float(lengths.max()))
    if wanted < 2:
        return 1
    power = 10 ** int(np.floor(np.log10(wanted)))
    return int(next(m * power for m in (5, 2, 1) if m * power <= wanted))


def _number(value: float) -> str:
    """A measured length for a title: 3 significant digits, no exponent down to 0.001."""
    return f"{value:.3g}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.2e}"


def _arrow_handle(colour: str) -> Any:
    """A legend entry drawn as an arrow (not quiver's default rectangle)."""
    from matplotlib.lines import Line2D

    return Line2D([], [], color=colour, marker=r"$\rightarrow$", markersize=16, linestyle="none")


def _arrow_scale(ax: Any, shown: float, label: str, colour: str) -> None:
    """A reference arrow (lower right), ``shown`` data units long as drawn, above ``label`` (its length and unit).

    It is drawn as the quiver's arrows are (:data:`ARROW_WIDTH`), in the data's scale, and is an anchored
    artist (gid ``arrow_scale``) that :func:`render.label_subset` keeps labels clear of.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.offsetbox import AnchoredOffsetbox, AuxTransformBox, TextArea, VPacker
    from matplotlib.patches import FancyArrow

    shaft = ARROW_WIDTH * abs(ax.get_xlim()[1] - ax.get_xlim()[0])  # equal aspect: the axes' width is the x span
    box = AuxTransformBox(ax.transData)
    box.add_artist(FancyArrow(0, 0, shown, 0, width=shaft, head_width=3.5 * shaft, head_length=min(5 * shaft, shown),
                              length_includes_head=True, color=colour, linewidth=0))  # fmt: skip
    text = TextArea(label, textprops={"fontproperties": FontProperties(size=8)})
    packed = VPacker(children=[box, text], align="center", pad=0, sep=3)
    key = AnchoredOffsetbox(loc="lower right", child=packed, pad=0.4, borderpad=0.8, frameon=True)
    key.patch.set(alpha=0.75, edgecolor="none")
    key.set_gid("arrow_scale")
    key.set_zorder(5)
    ax.add_artist(key)


def draw_displacement(
    comparison: Comparison, unit: str = "km", title: str = "", geographic: bool | None = None,
    reference: str = "real position", moved: str = "its place on the map", per: str = "",
    against: str = "their real positions",
) -> Any:  # fmt: skip
    """Arrows from each real position to its place on the aligned map, magnified by a round factor when short.

    Args:
        comparison: the map against the positions.
        unit: the positions' unit ("" when unknown: ``input units``).
        title: the title; by default a sentence with the median and largest displacement in ``unit``, the
            scale, the congruence and the magnification (``arrows ×20``).
        geographic: the positions' frame is north-up (a north arrow); None: when ``unit`` is known.
        reference: what the dots are, for the legend (``map A`` for two maps compared).
        moved: where each arrow goes to, for the legend.
        per: the map's unit, for the scale (``scale 80 km per hour``; "" when unknown: ``per input unit``).
        against: what the places are measured from, for the title.

    """
    from citymap_lightning import basemap, render

    fig = render.new_figure(8, 7.5)
    ax = fig.add_subplot()
    g, a = comparison.geo, comparison.aligned
    shift = a - g
    extent = float(np.ptp(np.vstack([g, a]), axis=0).max()) or 1.0
    times = magnification(comparison.displacement, extent)
    drawn = "" if times == 1 else f" (drawn ×{times})"
    ax.scatter(g[:, 0], g[:, 1], s=10, c="0.45", zorder=2)
    ax.quiver(g[:, 0], g[:, 1], shift[:, 0], shift[:, 1], angles="xy", scale_units="xy", scale=1 / times,
              color="tab:red", width=ARROW_WIDTH, headwidth=3.5, headlength=5, headaxislength=4.5,
              zorder=3)  # fmt: skip
    _axes(ax, np.vstack([g, g + times * shift]), unit, geographic)
    basemap.on_comparison(ax, comparison)
    label = render.unit_text(unit)
    median, largest = float(np.median(comparison.displacement)), float(np.max(comparison.displacement))
    if largest > 0:  # a round length drawn at most KEY_SHARE of the map long, and at most the largest arrow
        length = render.nice_length(5 * min(KEY_SHARE * extent / times, largest))
        _arrow_scale(ax, length * times, f"{length:g} {label}{drawn}", "tab:red")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.45", marker="o", markersize=4, linestyle="none", label=reference),
               _arrow_handle("tab:red")]  # fmt: skip
    ax.legend(handles, [reference, f"to {moved}{drawn}"], loc="upper right", fontsize=8, framealpha=0.85)
    times_text = "" if times == 1 else f"; arrows drawn ×{times}"
    ax.set_title(
        title
        or (
            f"Places lie a median {_number(median)} {label} from {against} (at most {_number(largest)} {label}).\n"
            f"Scale {comparison.scale:.4g} ({label} per {per or render.per_unit('')}), congruence "
            f"{comparison.congruence:.4f}{times_text}."
        ),
        fontsize=10,
    )
    _labels(ax, g, comparison.names, np.argsort(-comparison.displacement, kind="stable"))
    return fig


def warp(geo_xy: np.ndarray, map_xy: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` of the real plane carried onto the map by the places' warp (:func:`citymap_lightning.spline.fit`)."""
    from citymap_lightning import spline

    return spline.fit(geo_xy, map_xy)(points)


def draw_distortion(comparison: Comparison, unit: str = "km", title: str = "", geographic: bool | None = None) -> Any:
    """A regular grid over the real positions (their hull and a margin), warped onto the map, with the places.

    The warp is :func:`citymap_lightning.spline.fit`'s: a thin-plate spline smoothed as little as keeps it from
    folding; the coastlines go through it too where the positions are latitude/longitude. The title says how
    much it was smoothed. ``geographic``: the positions' frame is north-up (a north arrow); None: when ``unit``
    is known.
    """
    from matplotlib.collections import LineCollection

    from citymap_lightning import basemap, render, spline

    fig = render.new_figure(8, 7)
    ax = fig.add_subplot()
    g, a = comparison.geo, comparison.aligned
    carried = spline.fit(g, a)
    grid = [carried(line) for line in spline.grid_lines(carried.region, GRID_LINES)]
    ax.add_collection(LineCollection(grid, linewidths=0.6, colors="tab:blue", alpha=0.5, zorder=1))
    ax.scatter(a[:, 0], a[:, 1], s=10, c="black", zorder=3)
    _axes(ax, np.vstack([a, *grid]), unit, geographic)
    basemap.on_comparison(ax, comparison, carried)
    what = "a regular grid over the real positions" + (" and the coastlines" if comparison.centre is not None else "")
    how = ("a thin-plate spline through every place" if carried.smoothing == 0 else
           f"a thin-plate spline smoothed (λ = {carried.smoothing:.2g}) so that the grid does not fold")  # fmt: skip
    ax.set_title(title or f"Distortion: {what}, carried onto the map\nby {how}, within the places' hull",
                 fontsize=10)  # fmt: skip
    _labels(ax, a, comparison.names, np.argsort(-comparison.displacement, kind="stable"))
    return fig


DRIFT_SHARE = 0.12
"""The longest drift arrow is drawn this share of the map's extent long."""


def draw_drift(
    coords: np.ndarray, names: Sequence[str], vectors: np.ndarray, unit: str = "", geographic: bool | None = None
) -> Any:
    """Drift vectors on the map: the longest :data:`DRIFT_SHARE` of the map's extent, with a legend and an arrow scale.

    Each place's arrow is ``sum_j (d_ij - d_ji) / 2`` times the unit vector towards ``j`` (smacof's drift
    vectors): it points towards the places that take longer to reach from it than to come back from, and
    its length is in the table's ``unit``; the reference arrow (lower right) is a round length in that unit,
    drawn at the same scale. ``geographic``: the map is north-up (a north arrow); None: when ``unit`` is known.
    """
    from matplotlib.lines import Line2D

    from citymap_lightning import render

    fig = render.new_figure(8, 7.5)
    ax = fig.add_subplot()
    extent = float(np.ptp(coords, axis=0).max()) or 1.0
    lengths = np.linalg.norm(vectors, axis=1)
    longest = float(lengths.max()) if len(lengths) else 0.0
    per = DRIFT_SHARE * extent / longest if longest > 0 else 1.0  # map units drawn per unit of drift
    shown = vectors * per
    ax.scatter(coords[:, 0], coords[:, 1], s=12, c="black", zorder=3)
    ax.quiver(coords[:, 0], coords[:, 1], shown[:, 0], shown[:, 1], angles="xy", scale_units="xy", scale=1,
              color="tab:purple", width=ARROW_WIDTH, headwidth=3.5, headlength=5, headaxislength=4.5,
              zorder=2)  # fmt: skip
    _axes(ax, np.vstack([coords, coords + shown]), unit, geographic)
    label = render.unit_text(unit)
    if longest > 0:
        length = render.nice_length(5 * longest)
        _arrow_scale(ax, length * per, f"drift of {length:g} {label}", "tab:purple")
    handles = [Line2D([], [], color="black", marker="o", markersize=4, linestyle="none"), _arrow_handle("tab:purple")]
    ax.legend(handles, ["place", "drift: towards places slower to reach\nfrom it than to come back from"],
              loc="upper right", fontsize=8, framealpha=0.85)  # fmt: skip
    ax.set_title(f"Drift vectors of the table's asymmetry (its skew-symmetric part).\n"
                 f"The longest, {_number(longest)} {label}, is drawn {DRIFT_SHARE:.0%} of the map's extent long.",
                 fontsize=10)  # fmt: skip
    _labels(ax, coords, names, np.argsort(-lengths, kind="stable"))
    return fig


# python -m citymap_lightning compare A B


def read_map(path: str | Path) -> tuple[list[str], np.ndarray]:
    """A run folder's ``coordinates.csv`` (or the file itself): names and ``(n, 2)`` coordinates."""
    from citymap_lightning import anchors

    path = Path(path)
    if path.is_dir():
        path = path / "coordinates.csv"
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected a run folder or a coordinates.csv)")
    read = anchors.read(path)
    if read.latlon:
        raise DataError(f"{path}: expected name,x,y coordinates, not latitude/longitude")
    return read.names, read.positions


def compare_maps(a: str | Path, b: str | Path, out: Path) -> tuple[Comparison, list[Path]]:
    """Align map ``b`` onto map ``a`` over their common places, and write the comparison into ``out``."""
    names_a, coords_a = read_map(a)
    names_b, coords_b = read_map(b)
    index_a = {name: k for k, name in enumerate(names_a)}
    common = [name for name in names_b if name in index_a]
    if len(common) < 3:
        raise DataError(f"{a} and {b}: {len(common)} places in common: a comparison needs at least 3")
    index_b = {name: k for k, name in enumerate(names_b)}
    found = compare(
        common, coords_b[[index_b[name] for name in common]], coords_a[[index_a[name] for name in common]],
        only_map=[name for name in names_b if name not in index_a],
        only_positions=[name for name in names_a if name not in index_b], unit="",
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    paths = write(found, out)
    from citymap_lightning import render

    for tag, figure in compare_figures(found, a, b).items():
        paths.append(output.save_image(out / f"{tag}.png", render.to_image(figure)))
    return found, paths


def compare_figures(found: Comparison, a: str | Path, b: str | Path) -> dict[str, Any]:
    """``displacement`` and ``distortion`` of map B aligned onto map A, both maps named in the legend and title."""
    shown = {"unit": "units of A", "geographic": False}
    displacement = draw_displacement(found, **shown, reference=f"map A ({_short(a, b)})", per="unit of B",
                                      moved=f"its place on map B ({_short(b, a)}), aligned onto A",
                                      against="their places on map A")  # fmt: skip
    distortion = draw_distortion(found, **shown, title="Distortion: a regular grid over map A, carried onto map B "
                                                       "(aligned onto A)")  # fmt: skip
    return {"displacement": displacement, "distortion": distortion}


def _short(path: str | Path, other: str | Path) -> str:
    """A map's run folder (or file) for a legend: from where its path parts from ``other``'s, its middle cut."""
    a, b = (Path(p).resolve() for p in (path, other))
    a, b = (p.parent if p.name == "coordinates.csv" else p for p in (a, b))
    shared = 0
    while shared < min(len(a.parts), len(b.parts)) - 1 and a.parts[shared] == b.parts[shared]:
        shared += 1
    rest = a.parts[shared:]
    return "/".join(rest if len(rest) <= 3 else (rest[0], "…", *rest[-2:]))


def _next_folder(root: Path) -> Path:
    """``root/compare_N``, N the first number not taken."""
    k = 0
    while (root / f"compare_{k}").exists():
        k += 1
    return root / f"compare_{k}"


def compare_main(argv: Sequence[str]) -> int:
    """``compare A B [--out DIR]``: align map B onto map A; errors are one ``error:`` line and status 2."""
    parser = argparse.ArgumentParser(
        prog="python -m citymap_lightning compare",
        description="Align map B onto map A (a similarity over their common places) and write the comparison.",
    )
    parser.add_argument("a", help="the reference map: a run folder or its coordinates.csv")
    parser.add_argument("b", help="the map aligned onto it: a run folder or its coordinates.csv")
    parser.add_argument("--out", default=None, help="folder to write into (default: lightning_logs/compare_N)")
    options = parser.parse_args(list(argv))
    out = Path(options.out) if options.out else _next_folder(Path("lightning_logs"))
    try:
        found, paths = compare_maps(options.a, options.b, out)
    except (DataError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    if found.only_map or found.only_positions:
        print(f"only in {options.a}: {listed(found.only_positions) or 'none'}; "
              f"only in {options.b}: {listed(found.only_map) or 'none'}")  # fmt: skip
    print(f"{len(found.names)} common places: scale {found.scale:.6g} (A per unit of B), congruence "
          f"{found.congruence:.6f}, median displacement {np.median(found.displacement):.4g} (A's unit)")  # fmt: skip
    for path in paths:
        print(f"wrote {Path(path).resolve()}")
    return 0
