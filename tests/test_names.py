"""Maps from names alone: City, ST and City, Country recognised, ambiguous names resolved, wrong matches left out.

The places are 48 US cities from the bundled gazetteer (not Europe, where the package was first tried),
among them names that exist elsewhere too: Birmingham, Vancouver, St. Petersburg, Santa Ana,
Montgomery, Portland, Springfield and Columbus.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import QUIET, ROOT, geojson_latlon, map_tolerance
from scipy.spatial import cKDTree

from citymap_lightning import align, gazetteer, geodata, output
from citymap_lightning import geometry as geo
from citymap_lightning.cli import main
from citymap_lightning.datamodule import locate
from citymap_lightning.tables import MatrixTable, PairTable

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
    match = re.fullmatch(
        r"Lyon: matched Lyon \(Auvergne-Rhône-Alpes, FR\) at 45\.7°N 4\.8°E, ([\d,]+) km from where its distances "
        r"put it; left out", line,
    )  # fmt: skip
    assert match is not None, line
    lyon = gazetteer.load().latlon[gazetteer.load().index["lyon"][0]]
    assert int(match.group(1).replace(",", "")) == pytest.approx(geo.haversine(lyon, latlon[0]), abs=20)
    assert_true_map(run_latlon(tmp_path / "r"), names, latlon)  # Lyon too: placed where its distances put it
    assert len(messages(caplog, "map put north up on 47 places found by name (1 left out)")) == 1
    (path,) = (tmp_path / "r").rglob("coordinates.geojson")
    features = {f["properties"]["name"]: f["properties"] for f in json.loads(path.read_text())["features"]}
    assert features["Lyon"]["left_out"] is True and "left_out" not in features["Vancouver"]
    assert (features["Lyon"]["region"], features["Lyon"]["country"]) == ("Auvergne-Rhône-Alpes", "FR")
    assert (features["Vancouver"]["region"], features["Vancouver"]["country"]) == ("Washington", "US")


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


# Names anywhere: regions of every country, and same-named places told apart on a pair list (issue 29)


def region_places(country: str, n: int = 400, seed: int = 0) -> tuple[list[int], list[str], np.ndarray]:
    """``n`` places of a country drawn from the gazetteer (its GeoNames cities of 15,000 people or more).

    A name two drawn places share carries its region (``Sendai (Kagoshima)``), as people write them; the others are
    plain, even where the gazetteer has the name elsewhere too (Miyoshi, Izumi). In Japan every Sendai, Sakai, Koga,
    Kariya, Yokkaichi, Miyoshi, Izumi and Ōta is drawn (a new user's 400-place list matched those wrongly). Two
    places of one name in one region are not both drawn: no name could tell them apart.
    """
    g = gazetteer.load()
    rows = np.flatnonzero(np.array(g.country) == country)
    first = ("sendai", "sakai", "koga", "kariya", "yokkaichi", "miyoshi", "izumi", "ota") if country == "JP" else ()
    forced = [int(r) for r in rows if gazetteer.fold(g.names[r]) in first]
    pool = forced + [int(r) for r in np.random.default_rng(seed).permutation(rows) if int(r) not in forced]
    drawn: list[int] = []
    seen: set[tuple[str, str]] = set()
    for r in pool:
        key = (gazetteer.fold(g.names[r]), g.admin1[r])
        if key not in seen and len(drawn) < n:
            seen.add(key)
            drawn.append(r)
    shared = Counter(gazetteer.fold(g.names[r]) for r in drawn)
    names = [f"{g.names[r]} ({g.region(r)})" if shared[gazetteer.fold(g.names[r])] > 1 else g.names[r] for r in drawn]
    return drawn, names, g.latlon[drawn]


def road_pairs(latlon: np.ndarray, near: int = 4, far: int = 2, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Each place's ``near`` nearest places and ``far`` random partners, as pairs ``i < j``."""
    xyz = geo.to_unit_vectors(latlon)
    _, nearest = cKDTree(xyz).query(xyz, k=near + 1)
    rng = np.random.default_rng(seed)
    pairs = set()
    for a in range(len(latlon)):
        partners = [int(b) for b in nearest[a, 1:] if b != a][:near]
        partners += [int(b) + (b >= a) for b in rng.choice(len(latlon) - 1, size=far, replace=False)]
        pairs |= {(min(a, b), max(a, b)) for b in partners}
    i, j = (np.array(v) for v in zip(*sorted(pairs), strict=True))
    return i, j


def wrong_matches(found: gazetteer.Match, rows: list[int], names: list[str]) -> list[str]:
    """Names not found, or found as another GeoNames entry than the one they were drawn from."""
    ids = dict(zip(found.places.tolist(), found.geonameid.tolist(), strict=True))
    g = gazetteer.load()
    return [name for p, (name, r) in enumerate(zip(names, rows, strict=True)) if ids.get(p) != g.geonameid[r]]


def turn(estimated: np.ndarray, true: np.ndarray) -> tuple[float, bool]:
    """How far (degrees) a map of latitude/longitude is turned from the true positions, and whether it is mirrored.

    Both are projected about the true positions' centre; the angle is the orthogonal Procrustes rotation's.
    """
    centre = geo.spherical_centre(true)
    a, b = geo.azimuthal_equidistant(estimated, centre), geo.azimuthal_equidistant(true, centre)
    u, _, vt = np.linalg.svd((a - a.mean(axis=0)).T @ (b - b.mean(axis=0)))
    rotation = u @ vt
    return float(np.degrees(np.arctan2(rotation[0, 1], rotation[0, 0]))), bool(np.linalg.det(rotation) < 0)


def as_pairs(names: list[str], latlon: np.ndarray) -> PairTable:
    """A names-only pair list in memory: each place's 4 nearest and 2 far partners, great-circle km."""
    i, j = road_pairs(latlon)
    d = geo.haversine(latlon[i], latlon[j])
    return PairTable(names=names, i=i, j=j, d=d, w=np.ones_like(d), source="pairs.csv")


@pytest.mark.parametrize(
    ("name", "described"),
    [
        ("Sendai (Miyagi)", "Sendai (Miyagi, JP)"),
        ("Sendai (Kagoshima)", "Sendai (Kagoshima, JP)"),
        ("Sendai, Kagoshima Prefecture", "Sendai (Kagoshima, JP)"),
        ("Sendai (Kagoshima-ken)", "Sendai (Kagoshima, JP)"),
        ("Sendai (kagoshima, Japan)", "Sendai (Kagoshima, JP)"),
        ("Sakai, Osaka", "Sakai (Osaka, JP)"),
        ("Sakai (Ōsaka-fu)", "Sakai (Osaka, JP)"),
        ("Ōta (Gunma)", "Ōta (Gunma, JP)"),
        ("Bendigo, VIC", "Bendigo (Victoria, AU)"),
        ("Ikeja, Lagos State", "Ikeja (Lagos, NG)"),
        ("Guadalajara (Estado de Jalisco)", "Guadalajara (Jalisco, MX)"),
        ("Guadalajara, Castille-La Mancha", "Guadalajara (Castille-La Mancha, ES)"),
        ("Frankfurt (Oder)", "Frankfurt (Oder) (Brandenburg, DE)"),
        ("Washington, D.C.", "Washington (District of Columbia, US)"),
    ],
)
def test_a_region_of_any_country_after_the_name_picks_the_place(name, described):
    g = gazetteer.load()
    reading = gazetteer.read_name(name, g)
    assert [g.describe(r) for r in reading.rows] == [described] and reading.unknown == []


def test_a_geonames_id_after_the_name_picks_that_entry():
    g = gazetteer.load()
    kagoshima = next(r for r in g.index["sendai"] if g.region(r) == "Kagoshima")
    assert gazetteer.candidates(f"Sendai (JP {g.geonameid[kagoshima]})", g) == [kagoshima]


def test_an_unknown_qualifier_is_said_in_one_line_with_the_closest_region_and_not_used(caplog):
    g = gazetteer.load()
    reading = gazetteer.read_name("Sendai (Kagoshma)", g)
    assert sorted(g.region(r) for r in reading.rows) == ["Kagoshima", "Miyagi"]
    assert reading.unknown == [("Kagoshma", "did you mean Kagoshima?")]
    rows, names, latlon = region_places("JP", 60)
    names = ["Sendai (Kagoshma)" if name == "Sendai (Kagoshima)" else name for name in names]
    names = ["Sakai (Osako)" if name == "Sakai (Osaka)" else name for name in names]
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        found = locate(matrix(names, geo.distance_matrix(latlon)), "jp.csv")
    (line,) = messages(caplog, "no region or country")
    assert line == (
        "jp.csv: 2 names carry a qualifier that is no region or country GeoNames knows, so it was not used: "
        "Sakai (Osako) (did you mean Osaka?); Sendai (Kagoshma) (did you mean Kagoshima?)"
    )
    assert wrong_matches(found, rows, names) == []  # the distances chose the right Sendai and Sakai all the same


@pytest.mark.parametrize("country", ["JP", "MX"])
def test_same_named_places_are_told_apart_on_a_pair_list_as_on_the_matrix(country):
    """400 places of a country, as a pair list (4 nearest and 2 far partners each) and as a full matrix.

    Before: on this Japanese pair list 29 names (Sendai, Sakai, Koga, Kariya, Yokkaichi, Miyoshi, Izumi, Ōta...)
    matched another town of their name, on the Mexican one 10 (El Salto, Cuauhtémoc, Nogales...); on either matrix
    none.
    """
    rows, names, latlon = region_places(country)
    km = geo.distance_matrix(latlon)
    for table in (as_pairs(names, latlon), matrix(names, km), matrix(names, np.sqrt(km) + 5.0)):
        found = gazetteer.match(table)
        assert wrong_matches(found, rows, names) == [], table.kind
    xy = geo.azimuthal_equidistant(latlon, geo.spherical_centre(latlon)) * [-1.0, 1.0]  # mirrored ...
    angle = np.radians(37.0)
    xy = xy @ np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])  # ... and turned
    found = gazetteer.match(as_pairs(names, latlon))
    frame = align.frame_from_names(xy, found.places, found.latlon)
    assert frame.kept.all()
    degrees, mirrored = turn(frame.frame.latlon(frame.orientation.apply(xy)), latlon)
    assert abs(degrees) < 0.1 and not mirrored


def test_matches_left_out_are_said_ten_at_most_then_counted_in_one_line(caplog):
    """A new user's table of "Name (CC id)" names across countries got 115 to 487 warnings, one per match left out."""
    from types import SimpleNamespace

    from citymap_lightning.callbacks import _report_matches

    g = gazetteer.load()
    rows = [r for r in np.argsort(-g.population, kind="stable")[:40].tolist()]
    located = gazetteer.Match(
        np.arange(40), g.latlon[rows], [g.label(r) for r in rows], [], population=g.population[rows],
        geonameid=g.geonameid[rows], regions=[g.region(r) for r in rows], countries=[g.country[r] for r in rows],
    )  # fmt: skip
    kept = np.arange(40) >= 25  # 25 left out
    matches = SimpleNamespace(kept=kept, km=np.full(40, 1234.0), enough=True)
    table = SimpleNamespace(names=[f"Place {k}" for k in range(40)], located=located, source="t.csv")
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        _report_matches(table, SimpleNamespace(matches=matches, km_per_unit=1.0))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 11
    assert warnings[0].startswith(f"Place 0: matched {g.describe(rows[0])} at ") and "1,234 km" in warnings[0]
    assert warnings[-1].startswith("… and 15 more matches left out, each far from where its distances put it: Place 10")
    assert warnings[-1].endswith("Place 24")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pairs", "matrix"])
def test_japanese_names_only_map_matches_every_name_and_comes_out_north_up(tmp_path, caplog, kind):
    """The target of issue 29: 400 Japanese places, a pair list (4 nearest and 2 far partners) or the full matrix.

    Every name matches the GeoNames entry it was drawn from (``coordinates.csv``'s geonameid, region and country
    columns say which), none is left out, and the map is north-up within 0.1 degrees, not mirrored.
    """
    rows, names, latlon = region_places("JP")
    if kind == "pairs":
        table = as_pairs(names, latlon)
        body = [[names[a], names[b], f"{v:.10g}"] for a, b, v in zip(table.i, table.j, table.d, strict=True)]
        path = output.write_table(tmp_path / "jp.csv", ["source", "target", "distance"], body)
    else:
        path = write_names_only(tmp_path / "jp.csv", names, latlon)
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        main(["fit", "--data.path", str(path), "--trainer.default_root_dir", str(tmp_path / "r"), *QUIET])
    assert len(messages(caplog, "400 of 400 names found")) == 1
    assert not messages(caplog, "left out") and not messages(caplog, "no region or country")
    (csv_path,) = (tmp_path / "r").rglob("coordinates.csv")
    with open(csv_path, encoding="utf-8") as f:
        written = {row["name"]: row for row in csv.DictReader(f)}
    g = gazetteer.load()
    assert [written[name]["geonameid"] for name in names] == [str(g.geonameid[r]) for r in rows]
    assert [written[name]["region"] for name in names] == [g.region(r) for r in rows]
    assert {written[name]["country"] for name in names} == {"JP"}
    found = run_latlon(tmp_path / "r")
    degrees, mirrored = turn(np.stack([found[name] for name in names]), latlon)
    assert abs(degrees) < 0.1 and not mirrored
    if geodata.geopandas_available():
        (parquet,) = (tmp_path / "r").rglob("coordinates.parquet")
        frame = pytest.importorskip("geopandas").read_parquet(parquet).set_index("name")
        assert frame.loc[names, "geonameid"].tolist() == [int(g.geonameid[r]) for r in rows]
        assert frame.loc[names, "region"].tolist() == [g.region(r) for r in rows]
        assert set(frame["country"]) == {"JP"}
