"""Beyond the flat map: the sphere, 3-D space, and GeoJSON export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, event_tags, fit_cli

from citymap_lightning import geometry as geo
from citymap_lightning.readers import load_table


def read_geojson(path: Path, names: list[str]) -> np.ndarray:
    """Parse coordinates.geojson, check it is an RFC 7946 FeatureCollection, return latitude/longitude."""
    collection = json.loads(path.read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection"
    assert [f["properties"]["name"] for f in collection["features"]] == names
    latlon = []
    for feature in collection["features"]:
        assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
        lon, lat = feature["geometry"]["coordinates"]  # longitude first
        assert -180 <= lon <= 180 and -90 <= lat <= 90
        latlon.append((lat, lon))
    return np.array(latlon)


def test_sphere_from_a_random_start_recovers_europe(tmp_path):
    table = load_table(ROOT / "data" / "europe36.csv")
    log_dir = fit_cli(tmp_path, "--model.geometry", "sphere", "--model.radius", "6371.0088", "--model.loss", "stress")
    acc = event_tags(log_dir)
    assert acc.Scalars("hp/stress1")[-1].value < 1e-4
    errors = geo.haversine(read_geojson(log_dir / "coordinates.geojson", table.names), table.latlon)
    assert errors.max() < 5.0
    header = (log_dir / "coordinates.csv").read_text().splitlines()[0]
    assert header == "name,x,y,z"
    xyz = np.loadtxt(log_dir / "coordinates.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3))
    assert np.allclose(np.linalg.norm(xyz, axis=1), 6371.0088, rtol=1e-5)
    assert (log_dir / "map.png").stat().st_size > 20_000
    assert acc.Scalars("diagnostics/position_error_max_km")[-1].value < 5.0


def test_sphere_learns_the_radius_of_the_world(tmp_path):
    table = load_table(ROOT / "data" / "world200.csv")
    log_dir = fit_cli(
        tmp_path, "--config", str(ROOT / "configs" / "sphere.yaml"), "--model.radius", "learn",
        "--data.path", str(ROOT / "data" / "world200.csv"),
    )  # fmt: skip
    acc = event_tags(log_dir)
    assert acc.Scalars("hp/stress1")[-1].value < 1e-4
    assert acc.Scalars("train/radius")[-1].value == pytest.approx(geo.EARTH_RADIUS_KM, rel=1e-3)
    errors = geo.haversine(read_geojson(log_dir / "coordinates.geojson", table.names), table.latlon)
    assert errors.max() < 5.0


def test_plane_geojson_through_the_inverse_projection(tmp_path):
    table = load_table(ROOT / "data" / "europe36.csv")
    log_dir = fit_cli(tmp_path)
    errors = geo.haversine(read_geojson(log_dir / "coordinates.geojson", table.names), table.latlon)
    assert np.median(errors) < 60 and errors.max() < 200  # a flat map of Europe, read back on the globe


def test_no_geojson_without_latitude_longitude_or_names(tmp_path):
    npy = tmp_path / "d.npy"
    np.save(npy, load_table(ROOT / "data" / "europe36.csv").matrix())
    log_dir = fit_cli(tmp_path / "run", "--data.path", str(npy), "--trainer.max_epochs", "10")
    assert (log_dir / "coordinates.csv").exists() and not (log_dir / "coordinates.geojson").exists()


def test_space_gives_three_coordinates_and_a_3d_projector(tmp_path):
    log_dir = fit_cli(tmp_path, "--model.geometry", "space", "--model.loss", "stress", "--model.start", "classical",
                      "--trainer.max_epochs", "30")  # fmt: skip
    header = (log_dir / "coordinates.csv").read_text().splitlines()[0]
    assert header == "name,x,y,z"
    acc = event_tags(log_dir)
    # a little room in the third dimension fits great-circle distances better than a plane
    assert acc.Scalars("hp/stress1")[-1].value < 0.0020
    (tensors,) = log_dir.rglob("tensors.tsv")
    assert all(len(line.split("\t")) == 3 for line in tensors.read_text().splitlines())
    assert (log_dir / "map.png").exists()


def test_large_config_on_a_few_hundred_places(tmp_path):
    """configs/large.yaml parses (early stopping included) and fits a subset of the 5,000-place set."""
    lines = (ROOT / "data" / "europe5000.csv").read_text(encoding="utf-8").splitlines()[:401]
    subset = tmp_path / "europe400.csv"
    subset.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log_dir = fit_cli(tmp_path / "run", "--config", str(ROOT / "configs" / "large.yaml"), "--data.path", str(subset))
    acc = event_tags(log_dir)
    assert acc.Scalars("hp/stress1")[-1].value < 0.0015
    assert (log_dir / "map.png").exists() and (log_dir / "coordinates.geojson").exists()


def test_plane_of_three_dimensions_with_latitude_longitude(tmp_path):
    """A plane fitted in 3-D has no projection to align on: principal axes, x,y,z, no GeoJSON, no crash."""
    log_dir = fit_cli(tmp_path, "--model.dim", "3", "--trainer.max_epochs", "10")
    assert (log_dir / "coordinates.csv").read_text().splitlines()[0] == "name,x,y,z"
    assert (log_dir / "map.png").exists() and not (log_dir / "coordinates.geojson").exists()
