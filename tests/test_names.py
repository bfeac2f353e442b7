"""Maps from names alone: City, ST and City, Country recognised, ambiguous names resolved, wrong matches left out.

The places are 48 US cities from the bundled gazetteer (not Europe, where the package was first tried),
among them names that exist elsewhere too: Birmingham, Vancouver, St. Petersburg, Santa Ana,
Montgomery, Portland, Springfield and Columbus.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import QUIET, ROOT, geojson_latlon, map_tolerance

from citymap_lightning import align, gazetteer, output
from citymap_lightning import geometry as geo
from citymap_lightning.cli import main
from citymap_lightning.datamodule import locate
from citymap_lightning.tables import MatrixTable

AMBIGUOUS = [("Birmingham", "AL"), ("Vancouver", "WA"), ("St. Petersburg", "FL"), ("Santa Ana", "CA"),
             ("Montgomery", "AL"), ("Portland", "OR"), ("Springfield", "IL"), ("Columbus", "OH")]  # fmt: skip


def us_places(n: int = 48) -> tuple[list[str], list[str], np.ndarray]:
    """``City, ST`` names, plain names and latitude/longitude of the ambiguous cities and the most populous others.

    The others are the most populous cities of the 48 contiguous states with a name found once in the gazetteer.
    """
    g = gazetteer.load()
    rows = [next(r for r in g.index[gazetteer.fold(name)] if (g.country[r], g.admin1[r]) == ("US", st))
            for name, st in AMBIGUOUS]  # fmt: skip
    for r in np.argsort(-g.population, kind="stable"):
        if len(rows) == n:
            break
        if g.country[r] == "US" and g.admin1[r] not in ("AK", "HI") and len(g.index[gazetteer.fold(g.names[r])]) == 1:
            rows.append(int(r))
    qualified = [f"{g.names[r]}, {g.admin1[r]}" for r in rows]
    return qualified, [g.names[r] for r in rows], g.latlon[rows]


def write_names_only(path: Path, names: list[str], latlon: np.ndarray) -> Path:
    """A names-only matrix CSV of great-circle km."""
    return output.write_matrix(path, names, names, geo.distance_matrix(latlon))


def run_latlon(root: Path) -> dict[str, np.ndarray]:
    """The run's coordinates.geojson as {name: (latitude, longitude)}."""
    (path,) = root.rglob("coordinates.geojson")
    return geojson_latlon(path)[0]


def assert_true_map(found: dict[str, np.ndarray], names: list[str], latlon: np.ndarray) -> None:
    """North up and not mirrored, within 10 km (median) of the true positions."""
    estimate = np.stack([found[name] for name in names])
    assert np.median(geo.haversine(estimate, latlon)) < 10
    assert np.corrcoef(estimate[:, 1], latlon[:, 1])[0, 1] > 0.999  # east right (mirrored: about -1)
    assert np.corrcoef(estimate[:, 0], latlon[:, 0])[0, 1] > 0.999  # north up


def matrix(names: list[str], distances: np.ndarray) -> MatrixTable:
    """A names-only table in memory."""
    return MatrixTable(names=names, distances=distances, weights=np.ones_like(distances), source="t.csv")


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Springfield, IL", "Springfield (US-IL)"),
        ("Springfield, Illinois", "Springfield (US-IL)"),
        ("Springfield IL", "Springfield (US-IL)"),
        ("Columbus, GA", "Columbus (US-GA)"),
        ("Vancouver, BC", "Vancouver (CA-BC)"),
        ("Vancouver (Canada)", "Vancouver (CA-BC)"),
        ("Perth, WA", "Perth (AU-WA)"),
        ("Sydney, New South Wales", "Sydney (AU-NSW)"),
        ("Paris, TX", "Paris (US-TX)"),
        ("Paris, France", "Paris (FR)"),
        ("Paris (FR)", "Paris (FR)"),
        ("Santa Ana, CA, USA", "Santa Ana (US-CA)"),
        ("Birmingham, UK", "Birmingham (GB)"),
    ],
)
def test_a_state_or_country_after_the_name_picks_the_place(name, label):
    g = gazetteer.load()
    assert [g.label(r) for r in gazetteer.candidates(name, g)] == [label]


def test_a_recognised_state_without_the_place_matches_nothing_elsewhere():
    assert gazetteer.candidates("Birmingham, TX", gazetteer.load()) == []


def test_ambiguous_names_are_resolved_by_distances_in_any_order_keeping_unit_and_by_country_without():
    _, names, latlon = us_places()
    km = geo.distance_matrix(latlon)
    ranks = np.argsort(np.argsort(km, axis=None)).reshape(km.shape).astype(float)  # an ordinal table
    for distances in (km, np.sqrt(km) + 5.0, ranks):
        found = gazetteer.match(matrix(names, distances))
        assert len(found.places) == len(names)
        assert np.max(geo.haversine(found.latlon, latlon[found.places])) < 1  # every one the right place
    found = gazetteer.match(matrix(names, km), by_distance=False)
    labels = dict(zip([names[p] for p in found.places], found.labels, strict=True))
    assert labels["Birmingham"] == "Birmingham (US-AL)"  # the country the others share, not England's
    assert labels["Vancouver"] == "Vancouver (US-WA)" and labels["St. Petersburg"] == "St. Petersburg (US-FL)"


def test_the_robust_fit_leaves_out_wrong_matches_and_recovers_the_similarity():
    rng = np.random.default_rng(0)
    target = rng.uniform(-1000, 1000, size=(60, 2))
    angle, scale = 0.8, 1.7
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) @ np.diag([-1.0, 1.0])
    source = (target @ rotation.T) / scale + 3.0
    wrong = np.arange(0, 60, 4)  # a quarter of the matches elsewhere
    target_seen = target.copy()
    target_seen[wrong] += rng.uniform(2000, 6000, size=(len(wrong), 2))
    fit = align.robust_similarity(source, target_seen)
    assert np.array_equal(np.flatnonzero(~fit.inliers), wrong)
    assert fit.scale == pytest.approx(scale)
    moved = fit.scale * (source - fit.orientation.centre) @ fit.orientation.rotation + fit.orientation.offset
    assert np.abs(moved - target).max() < map_tolerance(target, relative=1e-10)


def test_a_frame_most_matches_disagree_with_is_refused():
    _, _, latlon = us_places()
    xy = geo.azimuthal_equidistant(latlon, geo.spherical_centre(latlon))
    shuffled = latlon[np.r_[np.random.default_rng(1).permutation(30), 30 : len(latlon)]]  # 30 of 48 swapped
    assert align.frame_from_names(xy, np.arange(len(xy)), latlon).enough
    assert not align.frame_from_names(xy, np.arange(len(xy)), shuffled).enough


def test_too_few_names_found_warn_that_the_map_may_be_mirrored(caplog):
    table = matrix(["Springfield, IL", "Nowhere Town", "Elsewhere Village", "Zzyzx Flats"], 1 - np.eye(4))
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        assert locate(table, "t.csv") is None
    (line,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert line.getMessage().startswith("t.csv: 1 of 4 names found in the GeoNames gazetteer (not found: Nowhere Town")
    assert "may be turned or mirrored" in line.getMessage() and "--data.anchors" in line.getMessage()


def test_city_st_names_only_default_options(tmp_path, caplog):
    qualified, _, latlon = us_places()
    path = write_names_only(tmp_path / "us.csv", qualified, latlon)
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        main(["fit", "--data.path", str(path), "--trainer.default_root_dir", str(tmp_path / "r"), *QUIET])
    assert_true_map(run_latlon(tmp_path / "r"), qualified, latlon)
    assert len(messages(caplog, "48 of 48 names found")) == 1
    assert not messages(caplog, "left out")


@pytest.mark.slow
@pytest.mark.parametrize("transform", ["interval", "ordinal"])
def test_plain_ambiguous_names_under_every_transform(tmp_path, caplog, transform):
    _, names, latlon = us_places()
    path = write_names_only(tmp_path / "us.csv", names, latlon)
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        main(["fit", "--data.path", str(path), "--model.transform", transform, "--model.loss", "stress",
              "--trainer.default_root_dir", str(tmp_path / "r"), *QUIET])  # fmt: skip
    assert_true_map(run_latlon(tmp_path / "r"), names, latlon)
    assert len(messages(caplog, "names found in the GeoNames gazetteer")) == 1  # printed once, not once per stage
    assert not messages(caplog, "left out")


@pytest.mark.slow
def test_a_wrong_match_is_named_and_never_moves_the_map(tmp_path, caplog):
    """Birmingham, Alabama's distances under the name Lyon: the only Lyon is in France, 7,000 km away."""
    _, names, latlon = us_places()
    names = ["Lyon" if name == "Birmingham" else name for name in names]
    path = write_names_only(tmp_path / "us.csv", names, latlon)
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        main(["fit", "--data.path", str(path), "--trainer.default_root_dir", str(tmp_path / "r"), *QUIET])
    (line,) = messages(caplog, "; left out")
    match = re.fullmatch(r"Lyon: matched Lyon, FR, ([\d,]+) km from where the map puts it; left out", line)
    assert match is not None, line
    lyon = gazetteer.load().latlon[gazetteer.load().index["lyon"][0]]
    assert int(match.group(1).replace(",", "")) == pytest.approx(geo.haversine(lyon, latlon[0]), abs=20)
    assert_true_map(run_latlon(tmp_path / "r"), names, latlon)  # Lyon too: placed where its distances put it
    assert len(messages(caplog, "map put north up on 47 places found by name (1 left out)")) == 1
    (path,) = (tmp_path / "r").rglob("coordinates.geojson")
    features = {f["properties"]["name"]: f["properties"] for f in json.loads(path.read_text())["features"]}
    assert features["Lyon"]["left_out"] is True and "left_out" not in features["Vancouver"]


def test_places_given_by_position_get_their_population_for_labels():
    """Labels go to the largest places also when the input gives positions: the name is looked up near its position."""
    from citymap_lightning import gazetteer
    from citymap_lightning.readers import load_table

    table = load_table(ROOT / "data" / "europe36.csv")
    population = gazetteer.population_near(table.names, table.latlon)
    assert np.isfinite(population).sum() >= 30
    by_name = dict(zip(table.names, population, strict=True))
    assert by_name["Paris"] > 2_000_000 and by_name["Moscow"] > by_name["Kiruna"]
    far = np.array(table.latlon, dtype=float)
    far[table.names.index("Paris")] += (5.0, 0.0)  # 550 km north of Paris: not Paris
    assert np.isnan(gazetteer.population_near(table.names, far)[table.names.index("Paris")])
