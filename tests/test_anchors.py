"""Anchored places (``--data.anchors``) and new places put on a fitted map (``predict`` with a file of new places)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    EUROPE,
    QUIET,
    fit_cli,
    geojson_latlon,
    map_tolerance,
    read_coordinates,
    refusal,
    refused,
    run_dir,
    write,
    write_matrix,
)

from citymap_lightning import geometry as geo
from citymap_lightning.cli import main
from citymap_lightning.datamodule import DistanceDataModule
from citymap_lightning.readers import load_new_places, load_table

TABLE = load_table(EUROPE)
NAMES, LATLON = TABLE.names, TABLE.latlon
D = geo.distance_matrix(LATLON)
ANCHORED = ["Lisbon", "Moscow", "Kiruna", "Athens", "London"]


def write_anchors(path: Path, names: list[str], latlon: bool = True, positions: dict | None = None) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "latitude", "longitude"] if latlon else ["name", "x", "y"])
        for name in names:
            writer.writerow([name, *(positions[name] if positions else LATLON[NAMES.index(name)])])
    return path


def fit(root: Path, *extra: str) -> Path:
    return fit_cli(root, "--model.loss", "stress", *extra)


def errors_km(found: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.array([float(geo.haversine(found[n], LATLON[NAMES.index(n)])) for n in names])


# ---- anchors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["stress", "weighted_stress"])
def test_latlon_anchors_hold_a_names_only_matrix_in_the_real_frame(tmp_path, loss):
    every = list(range(len(NAMES)))
    matrix = write_matrix(tmp_path / "d.csv", every, every)
    anchors = write_anchors(tmp_path / "anchors.csv", ANCHORED)
    log_dir = fit(tmp_path / "run", "--data.path", str(matrix), "--data.anchors", str(anchors),
                  "--data.gazetteer", "false", "--model.loss", loss)  # fmt: skip
    found, properties = geojson_latlon(log_dir / "coordinates.geojson")
    assert errors_km(found, ANCHORED).max() < 1.0  # held where they were put
    others = [n for n in NAMES if n not in ANCHORED]
    assert np.median(errors_km(found, others)) < 5  # 1.1 km (stress), 1.4 km (weighted): the true places
    assert all(properties[n]["anchored"] for n in ANCHORED) and not properties["Paris"]["anchored"]
    coords = read_coordinates(log_dir / "coordinates.csv")
    assert coords["Lisbon"][0] < coords["Moscow"][0] and coords["Kiruna"][1] > coords["Athens"][1]  # no mirror


def test_xy_anchors_stay_exactly_where_given_with_pair_batches(tmp_path):
    """A pair list fitted by pair batches: the x/y anchors do not move, and the map is in their frame."""
    centre = geo.spherical_centre(LATLON)
    plane = geo.azimuthal_equidistant(LATLON, centre)
    positions = {n: plane[NAMES.index(n)] for n in ANCHORED}
    anchors = write_anchors(tmp_path / "xy.csv", ANCHORED, latlon=False, positions=positions)
    i, j = np.triu_indices(len(NAMES), 1)
    keep = np.random.default_rng(0).random(len(i)) < 0.6
    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "target", "distance"])
        writer.writerows([NAMES[a], NAMES[b], f"{D[a, b]:.4f}"] for a, b in zip(i[keep], j[keep], strict=True))
    log_dir = fit(tmp_path / "run", "--data.path", str(pairs), "--data.anchors", str(anchors),
                  "--data.full_batch_limit", "0", "--trainer.max_epochs", "40")  # fmt: skip
    coords = read_coordinates(log_dir / "coordinates.csv")
    held = map_tolerance(list(coords.values()), dtype=np.float32)  # the fit's float32 coordinates: 1.0e-4 km seen
    for name in ANCHORED:
        assert np.abs(coords[name] - positions[name]).max() < held, name
    error = [np.linalg.norm(coords[n] - plane[NAMES.index(n)]) for n in NAMES if n not in ANCHORED]
    assert np.median(error) < 60
    assert not (log_dir / "coordinates.geojson").exists()  # x/y anchors: no latitude/longitude


def test_anchors_on_the_sphere(tmp_path):
    anchors = write_anchors(tmp_path / "anchors.csv", ANCHORED)
    log_dir = fit(tmp_path / "run", "--data.path", str(EUROPE), "--data.anchors", str(anchors),
                  "--model.geometry", "sphere", "--trainer.max_epochs", "30")  # fmt: skip
    found, _ = geojson_latlon(log_dir / "coordinates.geojson")
    assert errors_km(found, ANCHORED).max() < 1.0
    assert errors_km(found, NAMES).max() < 5.0  # great-circle distances fit exactly on the Earth


def test_contradicting_anchors_are_named(tmp_path, caplog):
    wrong = {n: LATLON[NAMES.index(n)] for n in ANCHORED}
    wrong["Athens"] = LATLON[NAMES.index("Madrid")]  # Athens anchored where Madrid is
    anchors = write_anchors(tmp_path / "anchors.csv", ANCHORED, positions=wrong)
    with caplog.at_level(logging.WARNING, logger="citymap_lightning"):
        fit(tmp_path / "run", "--data.path", str(EUROPE), "--data.anchors", str(anchors), "--trainer.max_epochs", "5")
    warned = [r.getMessage() for r in caplog.records if "contradict" in r.getMessage()]
    assert warned and "Athens is in every one" in warned[0] and "Lisbon - Moscow" not in warned[0]
    assert "in km" not in warned[0]  # one wrong anchor, not a wrong unit


def test_one_anchor_on_a_places_file_keeps_the_input_frame(tmp_path, caplog):
    """One anchor fixes no rotation: the input's own latitude/longitude start the fit in the anchors' frame."""
    anchors = write_anchors(tmp_path / "one.csv", ["Lisbon"])
    with caplog.at_level(logging.WARNING, logger="citymap_lightning"):
        log_dir = fit(tmp_path / "run", "--data.path", str(EUROPE), "--data.anchors", str(anchors))
    found, _ = geojson_latlon(log_dir / "coordinates.geojson")
    assert errors_km(found, ["Lisbon"]).max() < 1.0 and np.median(errors_km(found, NAMES)) < 60
    assert any("1 anchor(s) fix the map's position" in r.getMessage() for r in caplog.records)


def test_predict_draws_an_anchored_fit_in_its_anchors_frame(tmp_path):
    every = list(range(len(NAMES)))
    matrix = write_matrix(tmp_path / "d.csv", every, every)
    anchors = write_anchors(tmp_path / "anchors.csv", ANCHORED)
    fitted = fit(tmp_path / "run", "--data.path", str(matrix), "--data.anchors", str(anchors))
    log_dir = predict(tmp_path / "pred", fitted / "checkpoints" / "last.ckpt", matrix)
    found, _ = geojson_latlon(log_dir / "coordinates.geojson")
    assert errors_km(found, ANCHORED).max() < 1.0


def test_estimator_anchors_hold(tmp_path):
    pytest.importorskip("sklearn")
    from citymap_lightning import MDS

    anchors = {n: LATLON[NAMES.index(n)] for n in ANCHORED}
    import pandas as pd

    X = pd.DataFrame(LATLON[:, ::-1], index=NAMES, columns=["longitude", "latitude"])  # columns read by name
    mds = MDS(metric="haversine").fit(X, anchors=anchors)
    latlon = dict(zip(mds.fitted_map_.names, mds.fitted_map_.latlon, strict=True))
    assert errors_km(latlon, ANCHORED).max() < 1.0
    assert mds.fitted_map_.located_by == "anchors"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,latitude,longitude\nParis,95,0\n", "latitude 95 is outside"),
        ("name,east,north\nParis,1,2\n", "expected name,latitude,longitude or name,x,y"),
        ("name,x,y\nParis,1,2\nParis,3,4\n", "'Paris' is anchored twice"),
    ],
)
def test_bad_anchors_files_are_refused_in_one_line(tmp_path, content, message):
    path = write(tmp_path / "anchors.csv", content)
    line = refusal(lambda: DistanceDataModule(path=str(EUROPE), anchors=str(path)), message)
    assert line.startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("name,latitude,longitude\nAtlantis,0,0\n", [], "anchor 'Atlantis' is not a place of"),
        ("name,x,y\nParis,1,2\n", ["--model.geometry", "sphere"], "x/y anchors cannot be put on a sphere"),
        ("name,latitude,longitude\nParis,48.8,2.3\n", ["--model.geometry", "space"], "anchors give 2-D positions"),
    ],
)
def test_anchors_that_do_not_fit_the_data_or_the_model(tmp_path, capsys, content, extra, message):
    """Through the CLI: an anchor the data lacks, and anchors the chosen geometry cannot hold."""
    anchors = write(tmp_path / "anchors.csv", content)
    line = refused(tmp_path, capsys, ["--data.anchors", str(anchors), *extra], message)
    assert "anchors.csv" in line


# ---- new places on a fitted map --------------------------------------------------------------------------------

NEW = ["Paris", "Warsaw", "Istanbul", "Dublin", "Kyiv", "Toulouse"]
FITTED = [k for k, n in enumerate(NAMES) if n not in NEW]
NEW_ROWS = [NAMES.index(n) for n in NEW]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path]:
    """A map of the 30 other cities from a names-only matrix, and its checkpoint."""
    root = tmp_path_factory.mktemp("fitted")
    matrix = write_matrix(root / "d30.csv", FITTED, FITTED)
    log_dir = fit(root / "run", "--data.path", str(matrix), "--trainer.max_epochs", "40")
    return log_dir, log_dir / "checkpoints" / "last.ckpt"


def predict(root: Path, ckpt: Path, path: Path) -> Path:
    main(
        ["predict", "--ckpt_path", str(ckpt), "--data.path", str(path), "--trainer.default_root_dir", str(root), *QUIET]
    )
    return run_dir(root)


def check_new_places(log_dir: Path, fitted_dir: Path, limit_km: float) -> None:
    coords = read_coordinates(log_dir / "coordinates.csv")
    assert list(coords) == NEW
    found, properties = geojson_latlon(log_dir / "coordinates.geojson")
    assert np.median(errors_km(found, NEW)) < limit_km
    assert all(properties[n]["stress1"] < 0.05 for n in NEW)
    assert (log_dir / "map.png").stat().st_size > 10000
    before = read_coordinates(fitted_dir / "coordinates.csv")
    # the new places are in the fitted map's frame: Paris is west of Warsaw and near the fitted Brussels
    assert coords["Paris"][0] < coords["Warsaw"][0]
    assert np.linalg.norm(coords["Paris"] - before["Brussels"]) < 400


def test_predict_new_places_from_a_matrix(tmp_path, fitted):
    log_dir = predict(tmp_path, fitted[1], write_matrix(tmp_path / "new.csv", NEW_ROWS, FITTED))
    check_new_places(log_dir, fitted[0], 60)


def test_predict_new_places_from_a_pair_list(tmp_path, fitted):
    rng = np.random.default_rng(1)
    path = tmp_path / "new_pairs.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "target", "distance"])
        for r in NEW_ROWS:
            for c in rng.choice(FITTED, 8, replace=False):
                writer.writerow([NAMES[r], NAMES[c], f"{D[r, c]:.4f}"])
        writer.writerow([NAMES[FITTED[0]], NAMES[FITTED[1]], "1"])  # a pair of fitted places is left out
    check_new_places(predict(tmp_path, fitted[1], path), fitted[0], 80)


def test_predict_new_places_from_latitude_longitude(tmp_path):
    places = tmp_path / "fit.csv"
    places.write_text("name,latitude,longitude\n" + "".join(f"{NAMES[k]},{LATLON[k, 0]},{LATLON[k, 1]}\n"
                                                            for k in FITTED), encoding="utf-8")  # fmt: skip
    fitted_dir = fit(tmp_path / "run", "--data.path", str(places), "--trainer.max_epochs", "40")
    new = tmp_path / "new.csv"
    new.write_text("name,latitude,longitude\n" + "".join(f"{NAMES[k]},{LATLON[k, 0]},{LATLON[k, 1]}\n"
                                                         for k in NEW_ROWS), encoding="utf-8")  # fmt: skip
    log_dir = predict(tmp_path / "pred", fitted_dir / "checkpoints" / "last.ckpt", new)
    check_new_places(log_dir, fitted_dir, 60)


def test_predict_of_the_fitted_places_still_draws_their_map(tmp_path, fitted):
    log_dir = predict(tmp_path, fitted[1], write_matrix(tmp_path / "same.csv", FITTED, FITTED))
    assert len(read_coordinates(log_dir / "coordinates.csv")) == len(FITTED)


def test_bad_new_places_are_refused_in_one_line(tmp_path):
    few = np.full_like(D, np.nan)
    few[:, FITTED[:2]] = D[:, FITTED[:2]]
    cases = [
        (write_matrix(tmp_path / "few.csv", NEW_ROWS, FITTED, few), "new place 'Paris' has 2 known distance(s)"),
        (write_matrix(tmp_path / "col.csv", NEW_ROWS, [*FITTED, NEW_ROWS[0]]), "column 'Paris' is not a place"),
        (write(tmp_path / "both.csv", "source,target,distance\nParis,Atlantis,3\n"),
         "neither 'Paris' nor 'Atlantis' is a place of the fitted map"),
    ]  # fmt: skip
    fitted_names = [NAMES[k] for k in FITTED]
    for path, message in cases:
        line = refusal(lambda path=path: load_new_places(path, fitted_names), message)
        assert line.startswith(f"{path}: ")


def test_new_places_by_position_on_a_map_fitted_without_positions(tmp_path, capsys, fitted):
    """Through the CLI (predict): refused in one line, status 2, no results."""
    path = write(tmp_path / "places.csv", "name,latitude,longitude\nParis,48.8,2.3\n")
    line = refused(tmp_path, capsys, ["--ckpt_path", str(fitted[1]), "--data.path", str(path)],
                   "the map was not fitted from latitude/longitude", subcommand="predict")  # fmt: skip
    assert path.name in line
