"""Base maps: Natural Earth's coastlines and borders under geographic maps, and carried through a time-space warp."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from conftest import QUIET, ROOT, run_dir

from citymap_lightning import align, basemap, comparison, interactive, render, spline
from citymap_lightning import geometry as geo
from citymap_lightning.result import FittedMap

LISBON = (38.7223, -9.1393)
STRASBOURG = (48.5734, 7.7521)  # on the Rhine, the border with Germany


def _kind_mask(world: basemap.World, kind: int) -> np.ndarray:
    mask = np.zeros(len(world.latlon), dtype=bool)
    for a, b, k in zip(world.starts[:-1], world.starts[1:], world.kind, strict=True):
        mask[a:b] |= k == kind
    return mask


# ---- the bundled file -------------------------------------------------------------------------------------------


def test_the_bundled_lines_are_natural_earths_coasts_and_borders():
    world = basemap.world()
    assert "Natural Earth" in world.source and "public domain" in world.source and "1:50m" in world.source
    assert basemap.PATH.stat().st_size < 1_000_000  # the wheel stays small
    assert 50_000 < len(world.latlon) < 200_000 and world.starts[-1] == len(world.latlon)
    assert np.all(np.abs(world.latlon[:, 0]) <= 90) and np.all(np.abs(world.latlon[:, 1]) <= 180)
    coast, border = _kind_mask(world, basemap.COAST), _kind_mask(world, basemap.BORDER)
    assert (world.kind == basemap.COAST).sum() > 1000 and (world.kind == basemap.BORDER).sum() > 300
    assert geo.haversine(world.latlon[coast], np.array(LISBON)).min() < 5.0  # Lisbon is on the coast
    assert geo.haversine(world.latlon[border], np.array(LISBON)).min() > 100.0  # and far from Spain
    assert geo.haversine(world.latlon[border], np.array(STRASBOURG)).min() < 5.0
    assert geo.haversine(world.latlon[coast], np.array(STRASBOURG)).min() > 300.0
    steps = np.abs(np.diff(world.latlon, axis=0))
    within = np.ones(len(steps), dtype=bool)
    within[world.starts[1:-1] - 1] = False
    assert steps[within].max() <= 0.51  # no line round the world along the 180th meridian, none longer than 0.5°


def test_the_script_decodes_topojson_arcs_into_coasts_and_borders(tmp_path):
    """Two countries sharing an arc, one of them cut by the 180th meridian: the shared arc is a border, the
    rest coast, the cut gone; the file is the same byte for byte when written twice."""
    spec = importlib.util.spec_from_file_location("make_basemap", ROOT / "scripts" / "make_basemap.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    topology = {
        "type": "Topology", "bbox": [-180, -90, 180, 90],
        "transform": {"scale": [360 / 99999, 180 / 99999], "translate": [-180, -90]},
        "arcs": [
            [[50000, 50000], [0, 1000]],  # 0: the shared edge (x 50000, y 50000 -> 51000)
            [[50000, 51000], [-1000, 0], [0, -1000], [1000, 0]],  # 1: the rest of country A's square
            [[50000, 50000], [1000, 0], [0, 1000], [-1000, 0]],  # 2: the rest of country B's square
            [[99999, 60000], [0, 500], [-49999, 0], [0, -500], [49999, 0]],  # 3: C, on the meridian at 180
        ],
        "objects": {"countries": {"type": "GeometryCollection", "geometries": [
            {"type": "Polygon", "arcs": [[0, 1]]},
            {"type": "Polygon", "arcs": [[~0, 2]]},
            {"type": "MultiPolygon", "arcs": [[[3]]]},
        ]}},
    }  # fmt: skip
    lines, kinds = script.lines(topology)
    assert kinds.count(script.BORDER) == 1 and kinds.count(script.COAST) == 3
    (shared,) = [line for line, kind in zip(lines, kinds, strict=True) if kind == script.BORDER]
    assert shared[[0, -1]].tolist() == [[50000, 50000], [50000, 51000]]
    (cut,) = [line for line in lines if (line[:, 0] == 99999).any()]
    assert not ((cut[1:, 0] == 99999) & (cut[:-1, 0] == 99999)).any()  # the edge along the meridian is gone
    step = [round(script.MAX_STEP / scale) for scale in topology["transform"]["scale"]]
    assert (np.abs(np.diff(cut, axis=0)) <= step).all()  # long segments densified
    source = tmp_path / "countries-50m.json"
    source.write_text(json.dumps(topology))
    for out in ("a.npz", "b.npz"):
        script.main([str(source), "--out", str(tmp_path / out)])
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as data:
        points = np.cumsum(data["deltas"].astype(np.int64), axis=0)
        first = lines[kinds.index(script.COAST)]
        assert points[: len(first)].tolist() == first.tolist()  # coastlines first, then borders


# ---- in a map's frame ------------------------------------------------------------------------------------------


def _europe_fit(unit: str = "km", scale: float = 1.0) -> FittedMap:
    """The 36 cities at their true positions, turned and in ``unit`` (``scale`` units per km), framed as a fit is."""
    from conftest import europe

    table = europe()
    truth, _ = align.true_plane(table.latlon)
    turn = np.array([[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]])
    orientation, latlon, frame = align.orient_geometry(truth @ turn, table.names, table.latlon, "plane")
    coords = orientation.apply(truth @ turn) * scale
    frame = align.GeoFrame(frame.centre, frame.shift, 1.0 / scale)
    n = table.n
    return FittedMap(
        names=list(table.names), coords=coords, stress1=0.0, place_share=np.full(n, 1 / n), geometry="plane",
        unit=unit, radius=None, latlon=latlon, orientation=None, located_by="input", frame=frame,
    )  # fmt: skip


def test_lines_land_where_the_frame_puts_their_latitude_longitude():
    """The lines in the map's frame go back to their own latitude/longitude through the map's frame (any unit)."""
    for scale in (1.0, 0.621):  # km, miles
        fit = _europe_fit(scale=scale)
        lines = basemap.for_map(fit)
        assert len(lines.coast) > 50 and len(lines.borders) > 30
        points = np.concatenate(lines.coast)
        from scipy.spatial import cKDTree

        back = geo.to_unit_vectors(fit.frame.latlon(points))
        gap, _ = cKDTree(geo.to_unit_vectors(basemap.world().latlon)).query(back)
        assert gap.max() * geo.EARTH_RADIUS_KM < 0.01  # each point one of the bundled points
        low, high = basemap.box(fit.coords)
        reach = 100.0 * scale  # a segment that touches the box keeps its far end: at most 0.5 degrees away
        assert (points >= low - reach).all() and (points <= high + reach).all()
        lisbon = fit.coords[fit.names.index("Lisbon")]
        assert np.min(np.linalg.norm(points - lisbon, axis=1)) < 5.0 * scale


def test_a_geographic_map_draws_coastlines_and_one_without_a_frame_none():
    fit = _europe_fit()
    figure = render.draw_map(fit.coords, fit.names, geographic=True)
    limits = figure.axes[0].get_xlim(), figure.axes[0].get_ylim()
    basemap.draw_under(figure.axes[0], basemap.for_map(fit))
    gids = {c.get_gid() for c in figure.axes[0].collections}
    assert {"coastlines", "borders"} <= gids
    assert (figure.axes[0].get_xlim(), figure.axes[0].get_ylim()) == limits  # the view stays the places'
    assert all(c.get_zorder() < 1 for c in figure.axes[0].collections if c.get_gid() in ("coastlines", "borders"))
    render.to_image(figure)
    plain = FittedMap(**{**fit.__dict__, "latlon": None, "frame": None, "located_by": None})
    assert basemap.for_map(plain) is None
    sphere = FittedMap(**{**fit.__dict__, "frame": align.GeoFrame()})
    assert basemap.for_map(sphere) is None


def test_map_html_holds_the_coastline_layer(tmp_path):
    pytest.importorskip("plotly")
    fit = _europe_fit()
    path = interactive.write_map(tmp_path / "map.html", fit, coastlines=basemap.for_map(fit))
    text = path.read_text(encoding="utf-8")
    assert text.count("coastlines and borders (Natural Earth)") == 2  # one legend entry for both traces
    bare = interactive.write_map(tmp_path / "bare.html", fit).read_text(encoding="utf-8")
    assert "coastlines and borders" not in bare


@pytest.mark.slow
def test_a_run_draws_coastlines_in_a_geographic_frame_and_none_for_unknown_names(tmp_path, monkeypatch):
    """map.png, city_error.png and map.html of the default 36 cities get the lines; a names-free matrix none."""
    from citymap_lightning import callbacks
    from citymap_lightning.cli import main

    drawn = []
    original = callbacks.draw_under

    def spy(ax, lines, strong=False):
        drawn.append(lines)
        original(ax, lines, strong)

    monkeypatch.setattr(callbacks, "draw_under", spy)
    main(["fit", "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(tmp_path / "geo"), *QUIET])
    assert len(drawn) == 2 and all(lines and len(lines.coast) > 50 for lines in drawn)  # map.png, city_error.png
    assert drawn[0] is drawn[1]  # made once
    if importlib.util.find_spec("plotly"):
        assert "coastlines and borders" in (run_dir(tmp_path / "geo") / "map.html").read_text(encoding="utf-8")
    drawn.clear()
    from conftest import europe_distances

    from citymap_lightning import output

    names = [f"P{k}" for k in range(36)]
    matrix = output.write_matrix(tmp_path / "plain.csv", names, names, europe_distances())
    main(["fit", "--data.path", str(matrix), "--trainer.max_epochs", "3", "--trainer.default_root_dir",
          str(tmp_path / "plain"), *QUIET])  # fmt: skip
    assert drawn and all(lines is None for lines in drawn)
    if importlib.util.find_spec("plotly"):
        assert "coastlines and borders" not in (run_dir(tmp_path / "plain") / "map.html").read_text(encoding="utf-8")


# ---- the time-space warp -----------------------------------------------------------------------------------------


def _lattice(region: spline.Region, cells: int = 120) -> np.ndarray:
    """A lattice twice as fine as the fit's check, inside the region."""
    return region.lattice(cells)


def _folding_places() -> tuple[np.ndarray, np.ndarray]:
    """Places on a jittered grid (km), two neighbours swapped on the map: the exact spline must fold."""
    rng = np.random.default_rng(7)
    x, y = np.meshgrid(np.arange(6) * 100.0, np.arange(6) * 100.0)
    real = np.stack([x.ravel(), y.ravel()], axis=1) + rng.normal(scale=5, size=(36, 2))
    mapped = real * 0.02  # hours at 50 km/h
    mapped[[14, 15]] = mapped[[15, 14]]
    return real, mapped


def test_the_warp_is_smoothed_until_it_does_not_fold():
    real, mapped = _folding_places()
    from scipy.interpolate import RBFInterpolator

    region = spline.hull_region(real)
    exact = spline.Warp(RBFInterpolator((real - real.mean(0)) / np.ptp(real), mapped, kernel="thin_plate_spline"),
                        real.mean(0), float(np.ptp(real)), 0.0, region, len(real), 0.02**2)  # fmt: skip
    assert exact.area_scale(_lattice(region)).min() < 0  # the spline through every place folds
    warp = spline.fit(real, mapped)
    assert warp.smoothing > 0
    assert warp.area_scale(_lattice(region)).min() > 0
    figure = comparison.draw_distortion(comparison.compare([str(k) for k in range(36)], mapped, real))
    title = figure.axes[0].get_title()
    assert "smoothed (λ = " in title and "does not fold" in title and "hull" in title


def test_a_smooth_warp_keeps_the_spline_through_every_place_and_the_grid_in_the_hull():
    """The hub-pulled map of the tests' time-space maps folds nowhere: exact, and the grid stays near the places."""
    from test_timespace import time_space

    names, _, true, hours = time_space(120)
    found = comparison.compare(names, hours, true)
    warp = spline.fit(found.geo, found.aligned)
    assert warp.smoothing == 0
    assert np.abs(warp(found.geo) - found.aligned).max() < 1e-6 * np.ptp(found.aligned)
    grid = spline.grid_lines(warp.region)
    assert all(warp.region.contains(line).all() for line in grid)
    extent = np.ptp(true, axis=0).max()
    hull = spline.hull_region(true, 0.0)
    for line in grid:  # within the hull and its margin: no line far past the places
        assert (line @ hull.normals.T + hull.offsets <= spline.HULL_MARGIN * extent * (1 + 1e-9)).all()


def test_places_that_span_no_plane_are_carried_by_their_similarity():
    from citymap_lightning import render

    for real in (np.array([[0.0, 0.0], [100.0, 0.0]]), np.array([[0.0, 0.0], [100.0, 0.0], [250.0, 0.0]])):
        mapped = real @ np.array([[0.0, 1.0], [-1.0, 0.0]]) * 0.02 + 3.0  # turned a quarter, in hours
        warp = spline.fit(real, mapped)
        assert warp.smoothing == 0 and np.allclose(warp(real), mapped, atol=1e-9)
        assert (warp.area_scale(real) == 1).all()
        names = [str(k) for k in range(len(real))]
        if len(real) >= 3:
            render.to_image(comparison.draw_distortion(comparison.compare(names, mapped, real)))


def _classical_map(d: np.ndarray) -> np.ndarray:
    """Classical (Torgerson) scaling of a distance matrix into 2-D: a quick map of a table, no fit needed."""
    n = len(d)
    j = np.eye(n) - 1.0 / n
    values, vectors = np.linalg.eigh(-0.5 * j @ (d**2) @ j)
    top = np.argsort(values)[::-1][:2]
    return vectors[:, top] * np.sqrt(values[top])


def test_the_shipped_time_space_map_of_france_warps_without_folding():
    """data/france_hours.csv set against its positions: the grid and the coastlines carried without a fold."""
    from citymap_lightning import anchors
    from citymap_lightning.readers import load_table

    table = load_table(ROOT / "data" / "france_hours.csv")
    given = anchors.read(ROOT / "data" / "france_positions.csv")
    places = comparison.match_positions(given, table.names)
    d = table.matrix()
    d = np.where(np.isfinite(d), d, 0.0)
    found = comparison.of_map(table.names, _classical_map(np.maximum(d, d.T)), places)
    warp = spline.fit(found.geo, found.aligned)
    assert warp.smoothing > 0  # fast trains pull far towns past near ones: the exact spline folds
    assert warp.area_scale(_lattice(warp.region)).min() > 0
    lines = basemap.warped(found.centre, found.geo, found.aligned, warp)
    assert len(lines.coast) >= 3 and lines.smoothing == warp.smoothing
    assert sum(len(line) for line in lines.coast) > 300  # the Channel, the Atlantic and the Mediterranean coasts
