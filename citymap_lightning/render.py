"""Figures of a fitted map: arrays in, matplotlib ``Figure`` out (no Lightning in here)."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MARGIN = 0.08
"""Fraction of the cities' extent added around them; trajectories beyond that are cut."""


def display_name(name: str) -> str:
    """A place name as text to draw or to write into a line-based format: control characters made visible.

    Drawn names are also never parsed as mathtext (``parse_math=False`` wherever a name is drawn),
    so ``$x$`` is drawn as it is written.
    """
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def new_figure(width: float, height: float) -> Figure:
    """A figure with its own Agg canvas: no pyplot state, safe in threads and without a display."""
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_image(fig: Figure) -> np.ndarray:
    """The figure rendered once, as an ``(height, width, 4)`` uint8 RGBA array (for a PNG file and TensorBoard)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def city_colours(n: int) -> np.ndarray:
    """One distinct colour per city (RGBA rows), as in the course's trajectory pictures."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"] if n <= 20 else colormaps["hsv"]
    return cmap(np.arange(n) % 20 / 20 if n <= 20 else np.linspace(0, 1, n, endpoint=False))


def _limits(coords: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits: the cities' bounding box plus a margin."""
    low, high = coords.min(axis=0), coords.max(axis=0)
    pad = MARGIN * max(float((high - low).max()), 1e-9)
    return (low[0] - pad, high[0] + pad), (low[1] - pad, high[1] + pad)


DENSITY_GRID = 8
"""A density picture labels at most one place per cell of this many x this many over the map (64 at most)."""


def readable_subset(coords: np.ndarray, limit: int, cells: int = DENSITY_GRID) -> np.ndarray:
    """Indices of at most ``limit`` places spread over the map: the first place (in input order) of each occupied cell.

    The cells are squares of a ``cells x cells`` grid over the places' extent, so the labels of the
    subset do not crowd; input order decides within a cell (a gazetteer sorted by population gives
    its largest place). Cells are taken in order of their first place, and O(n) in all.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if limit <= 0 or len(coords) == 0:
        return np.zeros(0, dtype=np.int64)
    low = coords.min(axis=0)
    size = max(float((coords.max(axis=0) - low).max()), 1e-300) / cells
    cell = np.clip(((coords - low) / size).astype(np.int64), 0, cells - 1)
    key = (cell * (cells ** np.arange(cell.shape[1]))).sum(axis=1)
    _, first = np.unique(key, return_index=True)
    return np.sort(first)[:limit]


ALL_LABELS = 40
"""Up to this many places a map labels every place and draws each one's path in its own colour; above it
only a readable subset of at most this many is labelled (see :func:`label_priority`), no path is drawn
(paths from the start criss-cross a map of hundreds of places and tell nothing), and the other places stay
dots. The full set of paths is in TensorBoard (``map_paths``, the GIF) and ``map.html``."""


def population_of(located: object, n: int) -> np.ndarray | None:
    """Each of ``n`` places' population where the gazetteer found it by name (NaN elsewhere), else None."""
    population = getattr(located, "population", None)
    if population is None:
        return None
    out = np.full(n, np.nan)
    out[np.asarray(located.places)] = population
    return out


def label_priority(coords: np.ndarray, population: np.ndarray | None = None, limit: int | None = None) -> np.ndarray:
    """Places in the order they deserve a label: the most populous first where known, then an even spread.

    Population (the gazetteer's, for places found by name) is what makes a place well known, so those
    places come first, largest first. For the others nothing in a table of distances says which place
    matters more, so they follow in farthest-point order: each next place is the one farthest from
    those already taken, starting with the one nearest the centre. Any prefix of that order spreads
    its labels evenly over the map (it keeps, greedily, the labelled places as far apart as it can),
    which is what a reader needs to find their way; the largest shares of the error would label the
    outliers, not the map (the error map colours those). ``limit``: only the first so many (O(n limit)).
    """
    coords = np.asarray(coords, dtype=np.float64)
    n = len(coords)
    limit = n if limit is None else min(limit, n)
    known = np.zeros(n, dtype=bool) if population is None else np.isfinite(population)
    first = np.flatnonzero(known)
    first = first[np.argsort(-population[first], kind="stable")][:limit] if len(first) else first
    order = list(first)
    rest = np.flatnonzero(~known)
    if len(order) < limit and len(rest):
        points = coords[rest]
        if len(first):
            gap = np.min(((points[:, None, :] - coords[first][None, :, :]) ** 2).sum(axis=2), axis=1)
            k = int(np.argmax(gap))
        else:
            gap = np.full(len(rest), np.inf)
            k = int(np.argmin(((points - coords.mean(axis=0)) ** 2).sum(axis=1)))  # the centre's place first
        free = np.ones(len(rest), dtype=bool)
        while True:
            order.append(int(rest[k]))
            free[k] = False
            if len(order) >= limit or not free.any():
                break
            gap = np.minimum(gap, ((points - points[k]) ** 2).sum(axis=1))
            k = int(np.argmax(np.where(free, gap, -1.0)))
    return np.asarray(order[:limit], dtype=np.int64)


def draw_map(
    coords: np.ndarray,
    names: list[str],
    history: np.ndarray | None = None,
    values: np.ndarray | None = None,
    value_label: str = "",
    title: str = "",
    unit: str = "km",
    max_labels: int = 200,
    max_trajectories: int = 2000,
    ellipses: np.ndarray | None = None,
    max_points: int | None = None,
    subset: np.ndarray | None = None,
    geographic: bool = False,
    population: np.ndarray | None = None,
) -> Figure:
    """The map: places as points, readable non-overlapping labels, each place's path during the fit, a scale bar.

    Up to :data:`ALL_LABELS` places every place is labelled (moved by adjustText) and its path drawn
    in its own colour. Above, at most :data:`ALL_LABELS` places are labelled, in the order of
    :func:`label_priority` and only where a label fits beside its point without touching another label
    or covering any place's dot (:func:`label_subset`); no path is drawn and the other places stay dots
    (:func:`draw_paths` draws every path, for TensorBoard; ``map.html`` keeps them too).
    Paths are grey whenever the points' colours mean something else (``values``, with a colour bar).
    Above ``max_points`` places it is a density picture instead (see :func:`draw_density`).

    Args:
        coords: ``(n, 2)`` final positions, x east and y north.
        names: city names, one per row of ``coords``.
        history: ``(snapshots, n, 2)`` positions over the fit, drawn as one line per city (up to
            :data:`ALL_LABELS` places only).
        values: one number per city; when given, points are coloured by it (with a colour bar)
            instead of one colour per city.
        value_label: the colour bar's label.
        title: the figure title.
        unit: the coordinates' unit, for the axis labels and the scale bar ("" when unknown).
        max_labels: at most this many places are labelled (0: none).
        max_trajectories: above this many cities no trajectories are drawn.
        ellipses: ``(n, 3)`` semi-major axis, semi-minor axis and direction (degrees from +x) of an
            ellipse about each city (bootstrap uncertainty), drawn in the city's colour.
        max_points: above this many cities the map is a density picture (:func:`draw_density`).
        subset: for a density picture, the cities labelled (and whose trajectories ``history`` holds).
        geographic: the frame is the real one (x east, y north): axes say so and a north arrow is drawn;
            otherwise the axes read ``x`` and ``y``.
        population: each place's population where known (NaN elsewhere): the largest are labelled first.

    """
    from matplotlib.collections import LineCollection

    n = len(names)
    if max_points is not None and n > max_points:
        return draw_density(coords, names, history, values, value_label, title, unit, max_labels, subset, geographic)
    fig = new_figure(10, 9)
    ax = fig.add_subplot()
    few = n <= ALL_LABELS
    colours = city_colours(n) if few else np.tile(np.array([[0.12, 0.47, 0.71, 1.0]]), (n, 1))
    xlim, ylim = _limits(coords)
    paths = history is not None and len(history) > 1 and n <= max_trajectories
    own_colours = few and values is None
    if paths and few:
        lines = LineCollection(list(np.swapaxes(history, 0, 1)), colors=colours if own_colours else PATH_GREY,
                               linewidths=0.9, alpha=0.55, zorder=1)  # fmt: skip
        ax.add_collection(lines)
    if ellipses is not None:
        from matplotlib.collections import EllipseCollection

        ax.add_collection(EllipseCollection(
            2 * ellipses[:, 0], 2 * ellipses[:, 1], ellipses[:, 2], units="xy", offsets=coords,
            offset_transform=ax.transData, facecolors="none", edgecolors=colours, linewidths=0.8, alpha=0.8, zorder=2,
        ))  # fmt: skip
    small = n > 500
    size = 30.0 if not small else float(np.clip(30.0 * np.sqrt(500.0 / n), 0.5, 6.0))
    edges = {"edgecolors": "none"} if small else {"edgecolors": "black", "linewidths": 0.6}
    if values is None:
        points = ax.scatter(coords[:, 0], coords[:, 1], s=size if few else min(size, 18.0), c=colours, zorder=3,
                            **edges)  # fmt: skip
    else:
        norm = None
        positive = values[values > 0]
        if small and len(positive) and positive.max() > 100 * np.median(positive):
            from matplotlib.colors import LogNorm  # a few places carry most of the error: show the rest too

            norm = LogNorm(vmin=float(np.percentile(positive, 1)), vmax=float(positive.max()), clip=True)
        points = ax.scatter(coords[:, 0], coords[:, 1], s=size, c=values, cmap="viridis", norm=norm, zorder=3, **edges)
        fig.colorbar(points, ax=ax, shrink=0.7, label=value_label)
    _map_axes(ax, xlim, ylim, unit, geographic)
    map_furniture(ax, unit, geographic)
    if paths and few and not own_colours:
        _path_legend(ax, "path of each place during the fit")
    if title:
        ax.set_title(title)
    if few and n <= max_labels:
        place_labels(ax, coords, names)
    elif max_labels > 0:
        limit = min(max_labels, ALL_LABELS)
        label_subset(ax, coords, names, label_priority(coords, population, limit=4 * limit), limit)
    return fig


def draw_paths(coords: np.ndarray, history: np.ndarray, unit: str = "", geographic: bool = False) -> Figure:
    """Every place's path during the fit, each in its own colour, without labels: the full set for TensorBoard.

    ``map.png`` above :data:`ALL_LABELS` places draws no path; this keeps them all.
    """
    from matplotlib.collections import LineCollection

    fig = new_figure(10, 9)
    ax = fig.add_subplot()
    colours = city_colours(len(coords))
    ax.add_collection(LineCollection(list(np.swapaxes(history, 0, 1)), colors=colours, linewidths=0.6, alpha=0.5))
    ax.scatter(coords[:, 0], coords[:, 1], s=8, c=colours, edgecolors="none", zorder=3)
    _map_axes(ax, *_limits(coords), unit, geographic)
    map_furniture(ax, unit, geographic)
    ax.set_title(f"Paths of all {len(coords)} places during the fit")
    return fig


PATH_GREY = "0.35"
"""The colour of paths drawn beside points whose colours mean something else."""


def _path_legend(ax, label: str, colour: str = PATH_GREY) -> None:  # noqa: ANN001
    """A legend entry for the paths (their colour is not the colour bar's)."""
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], color=colour, lw=1.0, label=label)], loc="lower right", fontsize=8,
              framealpha=0.8)  # fmt: skip


UNKNOWN_UNIT = "input units"
"""What an axis or a scale bar says when the input's unit is not known (a table without ``--data.unit``)."""


def unit_text(unit: str) -> str:
    """``unit`` as an axis or a scale bar writes it: :data:`UNKNOWN_UNIT` when it is not known ("")."""
    return unit or UNKNOWN_UNIT


def per_unit(unit: str) -> str:
    """``unit`` after "per": singular (``hours``: ``hour``), ``input unit`` when it is not known."""
    if not unit:
        return "input unit"
    return unit[:-1] if len(unit) > 3 and unit.endswith("s") and not unit.endswith("ss") else unit


def nice_length(span: float) -> float:
    """A round length (1, 2 or 5 times a power of ten) of at most a fifth of ``span``, for a scale bar."""
    target = max(float(span), np.finfo(float).tiny) / 5
    power = 10.0 ** np.floor(np.log10(target))
    return float(next(m * power for m in (5, 2, 1) if m * power <= target * (1 + 1e-9)))


def map_furniture(ax, unit: str, geographic: bool) -> None:  # noqa: ANN001
    """A scale bar in ``unit`` (lower left) and, in a geographic frame, a north arrow (upper left).

    ``unit`` "" reads ``input units`` (:func:`unit_text`). Both are anchored artists (``ax.artists``, gids
    ``scale_bar`` and ``north_arrow``), not texts: the axes' texts stay the place labels.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.offsetbox import AnchoredOffsetbox, DrawingArea, TextArea, VPacker
    from matplotlib.patches import FancyArrow
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = nice_length(abs(ax.get_xlim()[1] - ax.get_xlim()[0]))
    label = f"{length:g} {unit_text(unit)}"
    bar = AnchoredSizeBar(ax.transData, length, label, loc="lower left", pad=0.4, borderpad=0.8, sep=3,
                          size_vertical=0, frameon=True, fontproperties=FontProperties(size=8))  # fmt: skip
    bar.patch.set(alpha=0.75, edgecolor="none")
    bar.set_gid("scale_bar")
    bar.set_zorder(5)
    ax.add_artist(bar)
    if geographic:
        area = DrawingArea(14, 22)
        area.add_artist(FancyArrow(7, 0, 0, 22, width=2.5, head_width=11, head_length=9, length_includes_head=True,
                                   color="black"))  # fmt: skip
        box = VPacker(children=[TextArea("N", textprops={"fontsize": 9, "fontweight": "bold"}), area], align="center",
                      pad=0, sep=1)  # fmt: skip
        arrow = AnchoredOffsetbox(loc="upper left", child=box, frameon=False, pad=0.3, borderpad=0.8)
        arrow.set_gid("north_arrow")
        arrow.set_zorder(5)
        ax.add_artist(arrow)


LABEL_OFFSETS = ((4, 3, "left", "bottom"), (-4, 3, "right", "bottom"), (4, -3, "left", "top"),
                 (-4, -3, "right", "top"), (6, 0, "left", "center"), (-6, 0, "right", "center"),
                 (0, 6, "center", "bottom"), (0, -6, "center", "top"))  # fmt: skip
"""Where a label may sit about its point (points of offset, alignment), in order of preference."""


def _leader_offsets(radii: tuple[float, ...] = (16.0, 28.0, 42.0, 60.0)) -> tuple[tuple[float, float, str, str], ...]:
    """Offsets farther out, in 8 directions at each of ``radii`` points, for labels tied to their dot by a line."""
    out = []
    for r in radii:
        for angle in np.radians([45, 135, -45, -135, 0, 180, 90, -90]):
            dx, dy = r * np.cos(angle), r * np.sin(angle)
            ha = "left" if dx > 1e-6 else "right" if dx < -1e-6 else "center"
            va = "bottom" if dy > 1e-6 else "top" if dy < -1e-6 else "center"
            out.append((round(float(dx), 2), round(float(dy), 2), ha, va))
    return tuple(out)


LEADER_OFFSETS = _leader_offsets()
"""Where a label may sit when no spot of :data:`LABEL_OFFSETS` is free: farther out, with a leader line to its dot."""


def label_subset(ax, coords: np.ndarray, names: list[str], order: np.ndarray, limit: int) -> np.ndarray:  # noqa: ANN001
    """Label places in ``order`` where a label fits, up to ``limit``; give back the labelled places' indices.

    Greedy cartographic placement: each label takes the first of :data:`LABEL_OFFSETS` about its point
    that stays inside the axes, touches no label already placed nor the scale bar, north arrow or legend,
    and covers no place's dot (the dot's drawn radius included), so a label never hides a place; where
    none is free, the first free spot of :data:`LEADER_OFFSETS` farther out, with a thin leader line to
    its dot (so the large places of a crowded region keep their names); a place where none fits stays a
    dot. The figure's layout is settled first and then kept, so the labels' boxes are the drawn ones.
    """
    fig = ax.figure
    fig.draw_without_rendering()
    fig.set_layout_engine("none")  # keep the settled layout: the boxes below are measured on it
    renderer = fig.canvas.get_renderer()
    points = ax.transData.transform(np.asarray(coords, dtype=np.float64))
    frame = ax.get_window_extent(renderer)
    taken = [artist.get_window_extent(renderer) for artist in [*ax.artists, ax.get_legend()] if artist is not None]
    leaders: list[tuple[np.ndarray, np.ndarray]] = []  # the leader lines drawn, in pixels
    labelled = []
    gap = 2.0  # pixels between labels
    radius = _dot_radius(ax) + 1.0  # a label keeps clear of every dot's edge, not only of its centre
    for k in np.asarray(order, dtype=np.int64):
        if len(labelled) >= limit:
            break
        text = ax.annotate(
            display_name(names[k]), coords[k], xytext=(0, 0), textcoords="offset points", fontsize=9, zorder=4,
            parse_math=False, bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6},
        )  # fmt: skip
        best = None
        for dx, dy, ha, va in LABEL_OFFSETS + LEADER_OFFSETS:
            text.set_position((dx, dy))
            text.set_horizontalalignment(ha)
            text.set_verticalalignment(va)
            box = text.get_window_extent(renderer).padded(gap)
            if box.x0 < frame.x0 or box.y0 < frame.y0 or box.x1 > frame.x1 or box.y1 > frame.y1:
                continue
            if any(box.overlaps(other) for other in taken):
                continue
            near = box.padded(radius - gap)
            inside = (points[:, 0] >= near.x0) & (points[:, 0] <= near.x1) & (points[:, 1] >= near.y0)
            inside &= points[:, 1] <= near.y1
            inside[k] = False  # its own dot sits beside the label, at the offset
            if inside.any():
                continue
            if abs(dx) + abs(dy) > 12:  # a leader line: it crosses no label and no other leader line
                end = np.array([min(max(points[k, 0], box.x0), box.x1), min(max(points[k, 1], box.y0), box.y1)])
                if any(_crosses_box(points[k], end, other) for other in taken) or any(
                    _segments_cross(points[k], end, a, b) for a, b in leaders
                ):
                    continue
                if any(_crosses_box(a, b, box) for a, b in leaders):
                    continue
                leaders.append((points[k].copy(), end))
            elif any(_crosses_box(a, b, box) for a, b in leaders):
                continue
            best = (dx, dy, ha, va, box)
            break
        if best is None:
            text.remove()
            continue
        dx, dy, ha, va, box = best
        text.set_position((dx, dy))
        text.set_horizontalalignment(ha)
        text.set_verticalalignment(va)
        if abs(dx) + abs(dy) > 12:  # a leader line from the dot's edge to the label, its own artist (the text's
            end = leaders[-1][1]  # box stays the text's), in data units: the layout is settled
            start = points[k] + (end - points[k]) * min(1.0, 0.6 * radius / max(float(np.hypot(*(end - points[k]))), 1))
            line = ax.transData.inverted().transform(np.stack([start, end]))
            ax.plot(line[:, 0], line[:, 1], color="0.3", lw=0.6, zorder=3.5, gid="leader")
        taken.append(box)
        labelled.append(int(k))
    return np.asarray(labelled, dtype=np.int64)


def _crosses_box(a: np.ndarray, b: np.ndarray, box) -> bool:  # noqa: ANN001
    """Whether the segment from ``a`` to ``b`` (pixels) passes through ``box`` (a matplotlib ``Bbox``)."""
    t = np.linspace(0.0, 1.0, 24)[:, None]
    xy = a + t * (b - a)
    return bool(((xy[:, 0] > box.x0) & (xy[:, 0] < box.x1) & (xy[:, 1] > box.y0) & (xy[:, 1] < box.y1)).any())


def _segments_cross(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    """Whether the segments ``ab`` and ``cd`` cross (touching at an end does not count)."""

    def side(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> float:
        return float((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0


def _dot_radius(ax) -> float:  # noqa: ANN001
    """The largest drawn radius (pixels) of the axes' scatter dots, edge line included; 0 without any."""
    from matplotlib.collections import PathCollection

    dpi = ax.figure.dpi
    radius = 0.0
    for dots in ax.collections:
        if isinstance(dots, PathCollection) and len(dots.get_sizes()):
            width = float(np.max(dots.get_linewidths())) if len(dots.get_linewidths()) else 0.0
            radius = max(radius, (np.sqrt(float(np.max(dots.get_sizes()))) + width) / 2 * dpi / 72)
    return radius


def draw_density(
    coords: np.ndarray,
    names: list[str],
    history: np.ndarray | None = None,
    values: np.ndarray | None = None,
    value_label: str = "",
    title: str = "",
    unit: str = "km",
    max_labels: int = 200,
    subset: np.ndarray | None = None,
    geographic: bool = False,
) -> Figure:
    """The map of many places as a density picture: what a person can read at a hundred thousand places or more.

    Hexagons coloured by how many places they hold (log scale), or by the mean of ``values`` over
    their places; on top, a readable subset of places (``subset``, else :func:`readable_subset`, at
    most ``max_labels``) as points with non-overlapping labels. ``history`` (the subset's recorded
    positions) is not drawn: paths are noise above :data:`ALL_LABELS` places, and TensorBoard and
    ``map.html`` keep them. Drawing costs O(n) and about the same at a million places as at ten thousand.
    """
    from matplotlib.colors import LogNorm

    n = len(names)
    fig = new_figure(10, 9)
    ax = fig.add_subplot()
    xlim, ylim = _limits(coords)
    gridsize = int(np.clip(np.sqrt(n) / 2, 60, 250))
    extent = (*xlim, *ylim)
    if values is None:
        cells = ax.hexbin(coords[:, 0], coords[:, 1], gridsize=gridsize, extent=extent, mincnt=1, bins="log",
                          cmap="viridis", linewidths=0, zorder=1)  # fmt: skip
        fig.colorbar(cells, ax=ax, shrink=0.7, label="places per hexagon")
    else:
        positive = values[values > 0]
        norm = None
        if len(positive) and positive.max() > 100 * np.median(positive):
            norm = LogNorm(vmin=float(np.percentile(positive, 1)), vmax=float(positive.max()), clip=True)
        cells = ax.hexbin(coords[:, 0], coords[:, 1], C=values, reduce_C_function=np.mean, gridsize=gridsize,
                          extent=extent, norm=norm, cmap="viridis", linewidths=0, zorder=1)  # fmt: skip
        fig.colorbar(cells, ax=ax, shrink=0.7, label=f"{value_label}, mean per hexagon" if value_label else "mean")
    if subset is None:
        subset = readable_subset(coords, max_labels)
    subset = np.asarray(subset, dtype=np.int64)[: max(max_labels, 0)]
    shown = coords[subset]
    ax.scatter(shown[:, 0], shown[:, 1], s=14, c="white", edgecolors="black", linewidths=0.7, zorder=3)
    _map_axes(ax, xlim, ylim, unit, geographic)
    map_furniture(ax, unit, geographic)
    ax.set_title(title or f"{n} places")
    if len(subset):
        place_labels(ax, shown, [names[k] for k in subset])
    return fig


def _map_axes(ax, xlim: tuple, ylim: tuple, unit: str, geographic: bool | None = None) -> None:  # noqa: ANN001
    """Equal-aspect map axes with the limits, the unit on both axes and a light grid.

    A geographic frame's axes read ``east`` and ``north``, any other's ``x`` and ``y``, always with a unit
    (:func:`unit_text`); ``geographic`` None: geographic when a unit is given.
    """
    geographic = bool(unit) if geographic is None else geographic
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    suffix = f" ({unit_text(unit)})"
    ax.set_xlabel(f"east{suffix}" if geographic else f"x{suffix}")
    ax.set_ylabel(f"north{suffix}" if geographic else f"y{suffix}")
    ax.grid(True, lw=0.3, alpha=0.5)


def draw_scree(dims: list[int], stress1: list[float], random_stress1: list[float], elbow: int | None = None) -> Figure:
    """Stress-1 against the number of dimensions, beside random data's (smacof's scree plot)."""
    fig = new_figure(7, 5)
    ax = fig.add_subplot()
    ax.plot(dims, stress1, "o-", color="tab:blue", label="the data")
    ax.plot(dims, random_stress1, "s--", color="0.5", label="random distances, same pairs")
    if elbow is not None:
        ax.axvline(elbow, color="tab:red", lw=0.8, ls=":", label=f"elbow: {elbow} dimensions")
    ax.set_xticks(dims)
    ax.set_xlabel("dimensions")
    ax.set_ylabel("stress-1")
    ax.set_ylim(bottom=0)
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend()
    ax.set_title("How many dimensions the distances have")
    return fig


def draw_placement(
    fitted: np.ndarray,
    new: np.ndarray,
    names: list[str],
    title: str = "",
    unit: str = "",
    max_labels: int = 200,
    geographic: bool = True,
) -> Figure:
    """New places (red, labelled) on a fitted map (its places in grey), with a scale bar (and north arrow)."""
    fig = new_figure(10, 9)
    ax = fig.add_subplot()
    xlim, ylim = _limits(np.vstack([fitted, new]))
    size = float(np.clip(30.0 * np.sqrt(200.0 / max(len(fitted), 1)), 2.0, 20.0))
    ax.scatter(fitted[:, 0], fitted[:, 1], s=size, c="0.6", edgecolors="none", zorder=2, label="fitted places")
    ax.scatter(new[:, 0], new[:, 1], s=36, c="tab:red", edgecolors="black", linewidths=0.6, zorder=3,
               label="new places")  # fmt: skip
    _map_axes(ax, xlim, ylim, unit, geographic)
    map_furniture(ax, unit, geographic)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    if len(names) <= max_labels:
        place_labels(ax, new, names)
    return fig


def place_labels(ax, coords: np.ndarray, names: list[str]) -> list:  # noqa: ANN001
    """City labels moved by adjustText so that none overlaps another label or covers another city's point."""
    from adjustText import adjust_text

    texts = [
        ax.text(
            x,
            y,
            display_name(name),
            parse_math=False,
            fontsize=9,
            zorder=4,
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6},
        )
        for (x, y), name in zip(coords, names, strict=False)
    ]
    adjust_text(
        texts,
        x=coords[:, 0],
        y=coords[:, 1],
        ax=ax,
        expand=(1.15, 1.35),
        ensure_inside_axes=True,
        arrowprops={"arrowstyle": "-", "color": "0.4", "lw": 0.5},
    )
    return texts


def shepard_diagram(
    given: np.ndarray, fitted: np.ndarray, unit: str = "km", title: str = "", curve: tuple | None = None
) -> Figure:
    """Fitted against given distance for every known pair, with the identity line, or the fitted transform."""
    fig = new_figure(6.5, 6)
    ax = fig.add_subplot()
    if len(given) > 20000:
        pick = np.random.default_rng(0).choice(len(given), 20000, replace=False)
        given, fitted = given[pick], fitted[pick]
    ax.scatter(given, fitted, s=6, alpha=0.5, edgecolors="none")
    top = float(max(given.max(), fitted.max())) * 1.03
    if curve is None:
        ax.plot([0, top], [0, top], color="crimson", lw=1, label="fitted = given")
    else:
        ax.plot(curve[0], curve[1], color="crimson", lw=1.2, label="fitted transform")
        top = max(top, float(np.max(curve[1])) * 1.03)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    suffix = f" ({unit_text(unit)})"
    ax.set_xlabel(f"given distance{suffix}")
    ax.set_ylabel(f"fitted distance{suffix}")
    ax.legend(loc="upper left")
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.set_title(title or "Shepard diagram")
    return fig


def city_error_map(
    coords: np.ndarray,
    names: list[str],
    share: np.ndarray,
    unit: str = "km",
    max_labels: int = 60,
    max_points: int | None = None,
    subset: np.ndarray | None = None,
    geographic: bool = False,
    population: np.ndarray | None = None,
) -> Figure:
    """The map with each city coloured by its share of the residual (per-city stress, in percent)."""
    return draw_map(
        coords,
        names,
        values=100 * share,
        value_label="share of the residual (%)",
        title="Per-city error: each city's share of the squared residuals",
        unit=unit,
        max_labels=max_labels,
        max_points=max_points,
        subset=subset,
        geographic=geographic,
        population=population,
    )


def animate(history: np.ndarray, names: list[str], path, frames: int = 80, unit: str = "km") -> None:  # noqa: ANN001
    """Write a GIF of the map over the fit: positions and fading trails, at most ``frames`` frames."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    picks = np.unique(np.linspace(0, len(history) - 1, min(frames, len(history))).round().astype(int))
    fig = new_figure(6.4, 6)
    fig.set_dpi(80)
    ax = fig.add_subplot()
    xlim, ylim = _limits(history[-1])
    colours = city_colours(len(names))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xlabel(f"east ({unit})" if unit == "km" else f"x ({unit_text(unit)})")
    ax.set_ylabel(f"north ({unit})" if unit == "km" else f"y ({unit_text(unit)})")
    points = ax.scatter(history[0, :, 0], history[0, :, 1], s=18, c=colours, edgecolors="black", linewidths=0.4)
    trails = [ax.plot([], [], color=c, lw=0.8, alpha=0.6)[0] for c in colours]
    title = ax.set_title("")
    labels = [
        ax.text(x, y, display_name(n), fontsize=7, alpha=0.0, parse_math=False)
        for (x, y), n in zip(history[-1], names, strict=True)
    ]

    def frame(k: int) -> list:
        step = picks[k]
        points.set_offsets(history[step])
        for i, trail in enumerate(trails):
            trail.set_data(history[: step + 1, i, 0], history[: step + 1, i, 1])
        last = k == len(picks) - 1
        for label in labels:
            label.set_alpha(1.0 if last and len(names) <= 60 else 0.0)
        title.set_text(f"snapshot {step + 1} of {len(history)}")
        return [points, *trails, title, *labels]

    animation = FuncAnimation(fig, frame, frames=len(picks), blit=False)
    animation.save(path, writer=PillowWriter(fps=12))


def draw_globe(latlon: np.ndarray, names: list[str], title: str = "", max_labels: int = 200) -> Figure:
    """Places on a sphere: an orthographic view about their centre, or Mollweide when they span the globe."""
    from citymap_lightning import geometry as geo

    n = len(names)
    colours = city_colours(n)
    centre = geo.spherical_centre(latlon)
    lat0, lon0 = np.radians(centre)
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    cos_c = np.sin(lat0) * np.sin(lat) + np.cos(lat0) * np.cos(lat) * np.cos(lon - lon0)
    if cos_c.min() < np.cos(np.radians(80)):
        fig = new_figure(12, 6.5)
        ax = fig.add_subplot(projection="mollweide")
        ax.scatter(lon, lat, s=14, c=colours, edgecolors="black", linewidths=0.4, zorder=3)
        ax.grid(True, lw=0.4, alpha=0.6)
        if n <= max_labels:
            for x, y, name in zip(lon, lat, names, strict=True):
                ax.annotate(
                    display_name(name), (x, y), xytext=(2, 2), textcoords="offset points", fontsize=5.5,
                    parse_math=False,
                )  # fmt: skip
        ax.set_title(title or "Fitted sphere (Mollweide equal-area view)")
        return fig

    def project(la: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.cos(la) * np.sin(lo - lon0)
        y = np.cos(lat0) * np.sin(la) - np.sin(lat0) * np.cos(la) * np.cos(lo - lon0)
        visible = np.sin(lat0) * np.sin(la) + np.cos(lat0) * np.cos(la) * np.cos(lo - lon0) >= 0
        return x * geo.EARTH_RADIUS_KM, y * geo.EARTH_RADIUS_KM, visible

    fig = new_figure(10, 9)
    ax = fig.add_subplot()
    x, y, _ = project(lat, lon)
    xy = np.stack([x, y], axis=1)
    for meridian in np.radians(np.arange(-180, 180, 10)):
        la = np.radians(np.linspace(-90, 90, 181))
        gx, gy, vis = project(la, np.full_like(la, meridian))
        ax.plot(np.where(vis, gx, np.nan), np.where(vis, gy, np.nan), color="0.8", lw=0.5, zorder=0)
    for parallel in np.radians(np.arange(-80, 90, 10)):
        lo = np.radians(np.linspace(-180, 180, 361))
        gx, gy, vis = project(np.full_like(lo, parallel), lo)
        ax.plot(np.where(vis, gx, np.nan), np.where(vis, gy, np.nan), color="0.8", lw=0.5, zorder=0)
    ax.scatter(x, y, s=30, c=colours, edgecolors="black", linewidths=0.6, zorder=3)
    xlim, ylim = _limits(xy)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("east (km; orthographic view, grey lines every 10 degrees)")
    ax.set_ylabel("north (km)")
    ax.set_title(title or "Fitted sphere (orthographic view)")
    if n <= max_labels:
        place_labels(ax, xy, names)
    return fig


def draw_space(coords: np.ndarray, names: list[str], title: str = "", unit: str = "km", max_labels: int = 60) -> Figure:
    """Places in 3-D: a scatter with a view from above the places' mean direction."""
    fig = new_figure(9, 8)
    ax = fig.add_subplot(projection="3d")
    ax.scatter(coords[:, 0], coords[:, 1], coords[:, 2], s=16, c=city_colours(len(names)), depthshade=True)
    if len(names) <= max_labels:
        for (x, y, z), name in zip(coords[:, :3], names, strict=True):
            ax.text(x, y, z, display_name(name), fontsize=7, parse_math=False)
    ax.set_xlabel(f"x ({unit_text(unit)})")
    ax.set_ylabel(f"y ({unit_text(unit)})")
    ax.set_zlabel(f"z ({unit_text(unit)})")
    ax.set_box_aspect(np.ptp(coords[:, :3], axis=0) + 1e-9)
    ax.set_title(title or "Fitted positions in 3-D")
    return fig
