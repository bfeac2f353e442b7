"""Maps read at a glance: map.png's labels, scale bar and north arrow; map.html in a real browser; GeoParquet."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import QUIET, run_dir

from citymap_lightning import comparison, interactive, render
from citymap_lightning.result import FittedMap


def _fitted(n: int, seed: int = 0, latlon: bool = False, unit: str = "km") -> FittedMap:
    """A fitted map of ``n`` places at random (no fit needed to draw or write it)."""
    rng = np.random.default_rng(seed)
    coords = rng.normal(size=(n, 2)) * 300
    share = rng.random(n)
    return FittedMap(
        names=[f"Place {k}" for k in range(n)], coords=coords, stress1=0.01, place_share=share / share.sum(),
        geometry="plane", unit=unit, radius=None,
        latlon=np.column_stack([50 + coords[:, 1] / 111, 10 + coords[:, 0] / 70]) if latlon else None,
        orientation=None,
    )  # fmt: skip


def _history(coords: np.ndarray, snapshots: int = 8) -> np.ndarray:
    return np.stack([coords * (1.6 - 0.6 * t / (snapshots - 1)) for t in range(snapshots)])


# ---- map.png ------------------------------------------------------------------------------------------------------


def _label_boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    return ax, [t.get_window_extent(renderer) for t in ax.texts]


def test_150_places_label_a_readable_subset_without_overlaps_and_no_paths_beside_a_colour_bar():
    from matplotlib.collections import LineCollection

    fit = _fitted(150)
    fig = render.draw_map(fit.coords, fit.names, _history(fit.coords), values=100 * fit.place_share,
                          value_label="share", unit="km", geographic=True)  # fmt: skip
    ax, boxes = _label_boxes(fig)
    assert 15 <= len(boxes) <= render.ALL_LABELS  # the rest stay dots
    for i, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[i + 1 :]), ax.texts[i].get_text()
        assert ax.get_window_extent().contains(box.x0, box.y0) and ax.get_window_extent().contains(box.x1, box.y1)
    # above 40 places no path from the start: noise at that size (TensorBoard's map_paths and map.html keep them)
    assert not [c for c in ax.collections if isinstance(c, LineCollection)] and ax.get_legend() is None


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    """``n`` places in a few dense clusters and a sparse spread (a country's cities: Tokyo, Osaka, the rest)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[250.0, 0.0], [-150.0, -100.0], [-30.0, -40.0]])
    dense = centres[rng.integers(0, 3, n // 2)] + rng.normal(scale=25.0, size=(n // 2, 2))
    return np.vstack([dense, rng.uniform([-1000, -1000], [600, 1000], size=(n - n // 2, 2))])


@pytest.mark.parametrize("n", [400, 2000])
def test_crowded_maps_draw_no_paths_and_their_labels_hide_no_dot(n):
    """Above 40 places: no path from the start, and no label box over any place's dot (its drawn radius included);
    the most populous places keep their names, by a leader line where no spot beside the dot is free."""
    from matplotlib.collections import LineCollection

    coords = _clustered(n)
    population = np.full(n, np.nan)
    population[:5] = [9e6, 5e6, 3e6, 2e6, 1e6]  # in the dense clusters
    fig = render.draw_map(coords, [f"Place {k}" for k in range(n)], _history(coords), unit="km", geographic=True,
                          population=population)  # fmt: skip
    ax, boxes = _label_boxes(fig)
    assert not [c for c in ax.collections if isinstance(c, LineCollection)]
    texts = [t for t in ax.texts if t.get_text()]
    assert 15 <= len(texts) <= render.ALL_LABELS
    named = {f"Place {k}" for k in range(5)} & {t.get_text() for t in texts}
    assert "Place 0" in named and len(named) >= (5 if n <= 400 else 3)  # where a label fits within 60 points
    points = ax.transData.transform(coords)
    radius = render._dot_radius(ax)
    assert radius > 0
    renderer = fig.canvas.get_renderer()
    for text in texts:
        box = text.get_window_extent(renderer).padded(radius)
        own = int(text.get_text().split()[1])
        inside = (points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)
        inside[own] = False
        assert not inside.any(), (text.get_text(), "hides", np.flatnonzero(inside)[:5])


def test_labels_go_to_the_most_populous_places_first():
    fit = _fitted(150, seed=1)
    population = np.full(150, np.nan)
    population[[7, 70, 140]] = [1e6, 5e6, 2e5]
    order = render.label_priority(fit.coords, population, limit=5)
    assert order[:3].tolist() == [70, 7, 140]
    fig = render.draw_map(fit.coords, fit.names, population=population)
    labelled = [t.get_text() for t in fig.axes[0].texts]
    assert {"Place 70", "Place 7", "Place 140"} <= set(labelled)


def test_label_priority_without_population_spreads_from_the_centre():
    coords = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [-10.0, 0.5], [0.0, 9.0], [5.0, 5.0]])
    # the nearest to the centroid (0.85, 2.42) first, then each the farthest from those taken
    assert render.label_priority(coords).tolist()[:4] == [1, 3, 2, 4]
    assert sorted(render.label_priority(coords).tolist()) == list(range(6))
    assert len(render.label_priority(coords, limit=2)) == 2


def test_a_few_dozen_places_keep_every_label_and_their_own_path_colours():
    from matplotlib.collections import LineCollection

    fit = _fitted(30)
    fig = render.draw_map(fit.coords, fit.names, _history(fit.coords), geographic=True)
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == sorted(fit.names)
    (paths,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(np.unique(paths.get_colors(), axis=0)) > 10 and ax.get_legend() is None


@pytest.mark.parametrize(
    ("unit", "geographic", "labels", "bar"),
    [("km", True, ("east (km)", "north (km)"), "200 km"), ("h", False, ("x (h)", "y (h)"), "2 h"),
     ("", False, ("x (input units)", "y (input units)"), "2 input units")],
)  # fmt: skip
def test_scale_bar_north_arrow_and_axes_follow_the_frame(unit, geographic, labels, bar):
    fit = _fitted(20)
    coords = fit.coords if unit == "km" else fit.coords / 100
    fig = render.draw_map(coords, fit.names, unit=unit, geographic=geographic)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == labels
    artists = {a.get_gid(): a for a in ax.artists}
    assert ("north_arrow" in artists) == geographic
    assert artists["scale_bar"].txt_label.get_text() == bar
    length = float(bar.split()[0])
    assert np.ptp(ax.get_xlim()) / 10 <= length <= np.ptp(ax.get_xlim()) / 5
    assert [t.get_text() for t in ax.texts if t.get_text()] != [] and "N" not in [t.get_text() for t in ax.texts]


def test_nice_scale_lengths():
    assert [render.nice_length(s) for s in (1000, 2600, 99, 1e-5)] == [200, 500, 10, 2e-6]


# ---- map.html -----------------------------------------------------------------------------------------------------


def _write_html(tmp_path: Path, n: int = 36, **kwargs) -> tuple[Path, FittedMap]:
    pytest.importorskip("plotly")
    fit = _fitted(n, latlon=True)
    rng = np.random.default_rng(2)
    found = comparison.compare(fit.names, fit.coords, fit.coords * 0.5 + rng.normal(size=fit.coords.shape) * 10)
    path = interactive.write_map(tmp_path / "map.html", fit, _history(fit.coords), None, found, "km", **kwargs)
    return path, fit


def test_map_html_is_self_contained_with_hover_and_switchable_layers(tmp_path):
    path, fit = _write_html(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert len(text) > 1_000_000 and "<script src=" not in text  # plotly.js inlined: no CDN
    for layer in ('"name":"paths during the fit"', '"name":"displacement"', '"name":"places"', '"name":"names"'):
        assert layer in text.replace(": ", ":")
    assert text.count("share of the residual:") == 36 and text.count("displacement: ") == 36
    assert "Place 0" in text and '"title":{"text":"east (km)"}' in text.replace(": ", ":")


def test_map_html_decimates_above_its_limit_and_says_so(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        path, _ = _write_html(tmp_path, n=300, max_places=100)
    text = path.read_text(encoding="utf-8")
    assert text.count("share of the residual:") == 100 and "100 of 300 places" in text
    assert any("map.html shows 100 of the 300 places" in r.getMessage() for r in caplog.records)


def test_without_plotly_one_line_and_no_file(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly now raises ImportError
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        written = interactive.write_map(tmp_path / "map.html", _fitted(10))
    assert written is None and not (tmp_path / "map.html").exists()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["map.html skipped: Plotly is not installed (pip install 'citymap-lightning[html]')"]


def _chromium() -> str | None:
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.slow
def test_map_html_renders_in_headless_chromium(tmp_path):
    """A real browser draws the map: the screenshot is not blank and the names are drawn in the SVG."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (.ci/run installs Debian's chromium)")
    path, fit = _write_html(tmp_path)
    flags = [browser, "--headless", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000", "--window-size=1000,800", "--hide-scrollbars"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", path.as_uri()], capture_output=True, timeout=120, check=True)
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (800, 1000) and pixels.std() > 10  # not blank
    assert (pixels < 128).mean() > 0.002  # dark marks: points, text, axes
    dom = subprocess.run([*flags, "--dump-dom", path.as_uri()], capture_output=True, timeout=120, check=True,
                         text=True).stdout  # fmt: skip
    drawn = re.sub(r"<script.*?</script>", "", dom, flags=re.S)  # the data in the script would match anyway
    assert 'class="main-svg"' in drawn and 'class="scatterlayer' in drawn
    texts = re.findall(r'class="textpoint"[^>]*><text[^>]*>([^<]*)</text>', drawn)
    named = [fit.names[k] for k in render.label_priority(fit.coords, limit=render.ALL_LABELS)]
    assert sorted(texts) == sorted(named)


# ---- GeoParquet ---------------------------------------------------------------------------------------------------


def test_to_geopandas_lonlat_in_a_real_frame_and_plain_xy_otherwise(tmp_path):
    pytest.importorskip("geopandas")
    pytest.importorskip("pyarrow")
    import geopandas

    from citymap_lightning import geodata

    fit = _fitted(12, latlon=True)
    frame = fit.to_geopandas()
    assert frame.crs.to_epsg() == 4326 and list(frame["name"]) == fit.names
    assert np.allclose(frame.geometry.x, fit.latlon[:, 1]) and np.allclose(frame.geometry.y, fit.latlon[:, 0])
    assert np.allclose(frame["x"], fit.coords[:, 0]) and np.allclose(frame["stress_share"].sum(), 1)
    path = geodata.write_parquet(tmp_path / "coordinates.parquet", fit)
    back = geopandas.read_parquet(path)
    assert back.crs.to_epsg() == 4326 and list(back["name"]) == fit.names
    assert np.allclose(back.geometry.y, fit.latlon[:, 0])
    plain = _fitted(12, unit="").to_geopandas()
    assert plain.crs is None and np.allclose(plain.geometry.x, plain["x"]) and np.allclose(plain.geometry.y, plain["y"])


def test_without_geopandas_no_parquet(tmp_path, monkeypatch):
    from citymap_lightning import geodata

    monkeypatch.setitem(sys.modules, "geopandas", None)
    assert geodata.write_parquet(tmp_path / "coordinates.parquet", _fitted(5)) is None
    assert not (tmp_path / "coordinates.parquet").exists()
    with pytest.raises(ImportError, match=r"citymap-lightning\[geo\]"):
        _fitted(5).to_geopandas()


# ---- the run ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_writes_map_html_parquet_and_every_path_to_tensorboard_unless_turned_off(tmp_path):
    pytest.importorskip("plotly")
    from conftest import ROOT, event_tags, geojson_latlon

    from citymap_lightning.cli import main

    places = tmp_path / "places60.csv"
    places.write_text("".join((ROOT / "data" / "europe5000.csv").read_text(encoding="utf-8").splitlines(True)[:61]))
    main(["fit", "--data.path", str(places), "--trainer.max_epochs", "3", "--trainer.default_root_dir",
          str(tmp_path / "on"), *QUIET])  # fmt: skip
    log_dir = run_dir(tmp_path / "on")
    text = (log_dir / "map.html").read_text(encoding="utf-8")
    assert text.count("share of the residual:") == 60 and "London" in text
    assert {"map", "map_paths"} <= set(event_tags(log_dir).Tags()["images"])  # every path, in TensorBoard
    if importlib.util.find_spec("geopandas") and importlib.util.find_spec("pyarrow"):
        import geopandas

        frame = geopandas.read_parquet(log_dir / "coordinates.parquet")
        assert frame.crs.to_epsg() == 4326 and frame["name"].iloc[0] == "London"
        latlon, _ = geojson_latlon(log_dir / "coordinates.geojson")  # the same points as the GeoJSON
        expected = np.stack([latlon[name] for name in frame["name"]])
        assert np.allclose(frame.geometry.y, expected[:, 0], atol=1e-5)
        assert np.allclose(frame.geometry.x, expected[:, 1], atol=1e-5)
    main(["fit", "--trainer.max_epochs", "3", "--map.html", "false", "--trainer.default_root_dir",
          str(tmp_path / "off"), *QUIET])  # fmt: skip
    assert not (run_dir(tmp_path / "off") / "map.html").exists()
