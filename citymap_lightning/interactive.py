"""``map.html``: the fitted map to pan, zoom and hover over, self-contained (Plotly, in the optional ``html`` extra).

The file works with no network: Plotly's script is inlined (about 4.8 MB), there are no tiles and no
CDN. A hover shows a place's name, its share of the residual and, where real positions are known,
its displacement from them. Layers switched on and off from the legend: the places (coloured by
their share of the error), their names (the :data:`~citymap_lightning.render.ALL_LABELS` first in
:func:`~citymap_lightning.render.label_priority`'s order), each place's path during the fit and the
displacements, and the coastlines and borders where the frame is geographic
(:mod:`~citymap_lightning.basemap`). Above :data:`MAX_PLACES` places the file holds a random sample of
them (the labelled ones always), so that it stays quick to open; its title says how many.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from citymap_lightning import basemap, output, render

if TYPE_CHECKING:
    from citymap_lightning.comparison import Comparison
    from citymap_lightning.result import FittedMap

log = logging.getLogger("citymap_lightning")

MAX_PLACES = 5000
"""Most places drawn in ``map.html`` (an SVG scatter stays quick to pan and hover up to about this many)."""
MAX_SNAPSHOTS = 30
"""Most recorded positions per path in ``map.html`` (evenly spread over the fit, the last included)."""
INSTALL = "pip install 'citymap-lightning[html]'"


def plotly_available() -> bool:
    """Whether Plotly can be imported (the ``html`` extra)."""
    try:
        import plotly.graph_objects  # noqa: F401
    except ImportError:
        return False
    return True


def write_map(
    path: str | Path,
    fit: FittedMap,
    history: np.ndarray | None = None,
    history_places: np.ndarray | None = None,
    compared: Comparison | None = None,
    displacement_unit: str = "km",
    population: np.ndarray | None = None,
    title: str = "",
    max_places: int = MAX_PLACES,
    coastlines: basemap.Lines | None = None,
) -> Path | None:
    """Write ``map.html`` for a flat map (a 1-D ordering along x); None, said in one line, without Plotly.

    Args:
        path: the file to write.
        fit: the fitted map (its names, coordinates, shares of the residual, unit and frame).
        history: ``(snapshots, m, 2)`` recorded positions in the map's frame, for the paths.
        history_places: the places ``history`` holds (None: every place).
        compared: the map against real positions, for the displacement layer and hover.
        displacement_unit: the unit of the positions compared with (km for latitude/longitude).
        population: each place's population where known (NaN elsewhere), for which names are shown.
        title: the figure's title.
        max_places: above this many places, a random sample of them (seeded, the labelled ones included).
        coastlines: coastlines and borders in the map's frame (:func:`citymap_lightning.basemap.for_map`), a
            layer under the places.

    """
    try:
        import plotly.graph_objects as go
    except ImportError:
        log.info(f"map.html skipped: Plotly is not installed ({INSTALL})")
        return None
    coords = np.asarray(fit.coords, dtype=np.float64)
    if coords.shape[1] == 1:
        coords = np.concatenate([coords, np.zeros_like(coords)], axis=1)
    names, n = fit.names, len(fit.names)
    named = render.label_priority(coords, population, limit=render.ALL_LABELS)
    keep = _sample(n, max_places, named)
    unit = fit.unit
    geographic = fit.latlon is not None
    share = 100 * np.asarray(fit.place_share, dtype=np.float64)
    hover = {k: f"<b>{_escape(names[k])}</b><br>share of the residual: {share[k]:.3g} %" for k in keep.tolist()}
    traces = basemap.plotly_traces(go, coastlines)
    if history is not None and len(history) > 1:
        traces.append(_paths(go, history, history_places, keep))
    if compared is not None:
        traces.extend(_displacement(go, compared, displacement_unit, coords, names, hover, keep))
    traces.append(go.Scatter(
        x=coords[keep, 0], y=coords[keep, 1], mode="markers", name="places", hovertext=[hover[k] for k in keep],
        hoverinfo="text", marker={"size": 8 if len(keep) <= 500 else 5, "color": share[keep], "colorscale": "Viridis",
                                  "line": {"width": 0.5, "color": "black"},
                                  "colorbar": {"title": {"text": "share of the<br>residual (%)"}}},
    ))  # fmt: skip
    traces.append(go.Scatter(
        x=coords[named, 0], y=coords[named, 1], mode="text", name="names", text=[_escape(names[k]) for k in named],
        textposition="top right", hoverinfo="skip", textfont={"size": 11},
    ))  # fmt: skip
    shown = f"{len(keep):,} of {n:,} places (a random sample above {max_places:,})" if len(keep) < n else ""
    suffix = f" ({unit})" if unit else ""
    xlim, ylim = (list(limits) for limits in render._limits(coords))  # the places' extent: paths may leave it
    figure = go.Figure(traces)
    figure.update_layout(
        title={"text": " ".join(t for t in (_escape(title), shown) if t) or f"{n} places"},
        xaxis={"title": {"text": ("east" if geographic else "x") + suffix}, "range": xlim, "showgrid": True,
               "gridcolor": "#e5e5e5", "zeroline": False},
        yaxis={"title": {"text": ("north" if geographic else "y") + suffix}, "range": ylim, "scaleanchor": "x",
               "scaleratio": 1, "showgrid": True, "gridcolor": "#e5e5e5", "zeroline": False},
        plot_bgcolor="white", dragmode="pan", hovermode="closest",
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom", "itemclick": "toggle"},
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
    )  # fmt: skip
    text = figure.to_html(include_plotlyjs=True, full_html=True, config={"scrollZoom": True, "displaylogo": False})
    written = output.atomic_write(path, lambda f: f.write(text))
    if len(keep) < n:
        log.info(f"map.html shows {len(keep):,} of the {n:,} places (a random sample above {max_places:,})")
    return written


def _escape(text: str) -> str:
    """A name as Plotly text: markup characters as entities, control characters made visible."""
    return html.escape(render.display_name(text), quote=False)


def _sample(n: int, limit: int, always: np.ndarray) -> np.ndarray:
    """Sorted indices of ``n`` places: all, or ``limit`` of them at random (seeded), ``always`` among them."""
    if n <= limit:
        return np.arange(n)
    chosen = np.zeros(n, dtype=bool)
    chosen[always[:limit]] = True
    rest = np.flatnonzero(~chosen)
    more = max(limit - int(chosen.sum()), 0)
    chosen[np.random.default_rng(0).choice(rest, size=more, replace=False)] = True
    return np.flatnonzero(chosen)


def _paths(go: Any, history: np.ndarray, places: np.ndarray | None, keep: np.ndarray) -> Any:
    """One line per place through its recorded positions (at most :data:`MAX_SNAPSHOTS`), gaps between them.

    ``history`` holds every place (``places`` None: the kept ones are drawn) or only ``places`` (all drawn).
    """
    steps = np.unique(np.linspace(0, len(history) - 1, min(MAX_SNAPSHOTS, len(history))).round().astype(np.int64))
    columns = np.asarray(keep) if places is None else np.arange(history.shape[1])
    lines = np.asarray(history, dtype=np.float64)[steps][:, columns, :2]  # (steps, places, 2)
    lines = np.concatenate([lines, np.full((1, *lines.shape[1:]), np.nan)])  # a gap after each place's line
    lines = np.swapaxes(lines, 0, 1).reshape(-1, 2).astype(np.float32)
    return go.Scatter(
        x=lines[:, 0], y=lines[:, 1], mode="lines", name="paths during the fit", hoverinfo="skip",
        line={"color": "rgba(90,90,90,0.55)", "width": 1}, connectgaps=False,
        visible=True if len(columns) <= render.ALL_LABELS else "legendonly",
    )  # fmt: skip


def _displacement(
    go: Any, compared: Comparison, unit: str, coords: np.ndarray, names: list[str], hover: dict[int, str],
    keep: np.ndarray,
) -> list[Any]:  # fmt: skip
    """Lines from each real position (carried into the map's frame) to its place; the displacement in the hover."""
    from citymap_lightning.comparison import similarity_fit

    index = {name: k for k, name in enumerate(names)}
    places = np.array([index[name] for name in compared.names], dtype=np.int64)
    shown = np.isin(places, keep)
    for k, d, b in zip(places[shown], compared.displacement[shown], compared.bearing[shown], strict=True):
        hover[int(k)] += f"<br>displacement: {d:.4g}{' ' + unit if unit else ''}, bearing {b:.0f}°"
    real, _ = similarity_fit(compared.geo, coords[places])  # the real positions in the map's frame and unit
    segments = np.stack([real, coords[places], np.full_like(real, np.nan)], axis=1)[shown].reshape(-1, 2)
    return [
        go.Scatter(
            x=segments[:, 0], y=segments[:, 1], mode="lines", name="displacement", legendgroup="displacement",
            line={"color": "crimson", "width": 1.2}, hoverinfo="skip", connectgaps=False,
        ),
        go.Scatter(
            x=real[shown, 0], y=real[shown, 1], mode="markers", name="real positions", legendgroup="displacement",
            marker={"size": 5, "color": "rgba(120,120,120,0.9)", "symbol": "circle-open"},
            hovertext=[f"{_escape(names[k])}: real position" for k in places[shown]], hoverinfo="text",
        ),
    ]  # fmt: skip
