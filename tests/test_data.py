"""Every input format fits; every bad input is refused in one plain line naming the file.

The readers are called directly for each bad input; one case goes through the CLI, for its promise of a
single ``error:`` line, status 2 and no results.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    COURSE_DISTANCES,
    COURSE_NAMES,
    EUROPE,
    assert_course_orientation,
    fit_cli,
    map_stress1,
    read_coordinates,
    refusal,
    refused,
    write,
)

from citymap_lightning import geometry as geo
from citymap_lightning.readers import load_table

EUROPE_TABLE = load_table(EUROPE)


def fit_file(root: Path, path: Path, *extra: str) -> Path:
    """Fit ``path`` through the CLI; return the run's log directory."""
    return fit_cli(root, "--data.path", str(path), *extra)


def europe_matrix_csv(path: Path, sep: str = ",") -> Path:
    names, d = EUROPE_TABLE.names, EUROPE_TABLE.matrix()
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, delimiter=sep)
        out.writerow(["", *names])
        for name, row in zip(names, d, strict=True):
            out.writerow([name, *(f"{v:.3f}" for v in row)])
    return path


# ---------------------------------------------------------------- formats


def test_places_csv_from_a_spreadsheet(tmp_path):
    """BOM, `;` separator, decimal commas, columns in another order, an extra column."""
    rows = [
        f"{lon:.5f};{name};x;{lat:.5f}".replace(".", ",")
        for name, (lat, lon) in zip(EUROPE_TABLE.names, EUROPE_TABLE.latlon, strict=True)
    ]
    path = write(tmp_path / "spreadsheet.csv", "\ufefflongitude;name;note;latitude\n" + "\n".join(rows) + "\n")
    table = load_table(path)
    assert table.names == EUROPE_TABLE.names
    assert np.allclose(table.matrix(), EUROPE_TABLE.matrix(), atol=0.01)
    log_dir = fit_file(tmp_path / "run", path)
    assert map_stress1(log_dir / "coordinates.csv", EUROPE_TABLE) <= 0.0023


def test_matrix_csv(tmp_path):
    log_dir = fit_file(tmp_path / "run", europe_matrix_csv(tmp_path / "matrix.csv"))
    coords = read_coordinates(log_dir / "coordinates.csv")
    assert_course_orientation(coords)  # no latitude/longitude: the course's anchor rule orients the map
    assert map_stress1(log_dir / "coordinates.csv", EUROPE_TABLE) <= 0.0023
    assert not (log_dir / "pairs_fitted.csv").exists()


def test_course_reference_matrix_npy_with_names(tmp_path):
    npy, names = COURSE_DISTANCES, COURSE_NAMES
    log_dir = fit_file(tmp_path / "run", npy, "--data.names", str(names))
    table = load_table(npy, names=names)
    assert table.names[2] == "Barcelone"
    assert map_stress1(log_dir / "coordinates.csv", table) <= 0.0023
    assert_course_orientation_course_names(read_coordinates(log_dir / "coordinates.csv"))


def assert_course_orientation_course_names(coords):
    assert coords["Copenhagen"][1] > coords["Rome"][1]
    assert coords["Reykjavik"][0] < coords["Moscow"][0]


def test_npy_without_names_numbers_the_places(tmp_path):
    npy = tmp_path / "d.npy"
    np.save(npy, EUROPE_TABLE.matrix())
    log_dir = fit_file(tmp_path / "run", npy)
    names = list(read_coordinates(log_dir / "coordinates.csv"))
    assert names == [str(i) for i in range(36)]


def test_pair_list_with_missing_pairs_and_weights(tmp_path, caplog):
    rng = np.random.default_rng(0)
    names, d = EUROPE_TABLE.names, EUROPE_TABLE.matrix()
    i, j = np.triu_indices(36, 1)
    keep = rng.random(len(i)) < 0.6
    lines = ["source,target,distance,weight"]
    for a, b, k in zip(i, j, keep, strict=True):
        if k:
            lines.append(f"{names[a]},{names[b]},{d[a, b]:.3f},{1.0 + (a % 3)}")
        elif a == 0:
            lines.append(f"{names[a]},{names[b]},,")  # listed but unknown
    path = write(tmp_path / "pairs.csv", "\n".join(lines) + "\n")
    table = load_table(path)
    assert table.n_known_pairs == int(keep.sum())
    assert np.isnan(table.matrix()[0][~np.r_[True, keep[:35]]]).all()
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        log_dir = fit_file(tmp_path / "run", path, "--model.start", "classical", "--model.loss", "stress")
    assert f"{int(keep.sum())} of 630 pairs known" in caplog.text
    # the map is still right on the full table, including the pairs it never saw
    assert map_stress1(log_dir / "coordinates.csv", EUROPE_TABLE) <= 0.01
    with open(log_dir / "pairs_fitted.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 630
    missing = [r for r in rows if r["distance"] == ""]
    assert len(missing) == 630 - int(keep.sum())
    # the fitted distances of the missing pairs are what users come for: close to the truth
    index = {n: k for k, n in enumerate(names)}
    errors = [abs(float(r["fitted"]) - d[index[r["source"]], index[r["target"]]]) for r in missing]
    assert np.median(errors) < 30


def test_weights_multiply_each_term(tmp_path):
    text = "source,target,distance,weight\nA,B,1,1\nB,C,1,1\nA,C,1,0\nA,D,1,1\nB,D,1,1\nC,D,1,1\n"
    table = load_table(write(tmp_path / "w.csv", text))
    assert table.weight_matrix()[0, 2] == 0 and np.isnan(table.matrix()[0, 2])
    assert table.n_known_pairs == 5


def test_accented_names_survive_the_round_trip(tmp_path):
    text = (
        "name,latitude,longitude\nZürich,47.36667,8.55\nReykjavík,64.13548,-21.89541\n"
        "Kraków,50.06143,19.93658\nParis,48.85341,2.3488\n"
    )
    log_dir = fit_file(tmp_path / "run", write(tmp_path / "accents.csv", text))
    assert list(read_coordinates(log_dir / "coordinates.csv")) == ["Zürich", "Reykjavík", "Kraków", "Paris"]
    assert (log_dir / "map.png").exists()


def test_symmetrize_averages_with_a_warning(tmp_path, caplog):
    d = np.array([[0, 10, 20], [12, 0, 15], [20, 15, 0]], dtype=float)
    np.save(tmp_path / "t.npy", d)
    with caplog.at_level(logging.WARNING, logger="citymap_lightning"):
        table = load_table(tmp_path / "t.npy", symmetrize=True)
    assert table.distances[0, 1] == table.distances[1, 0] == 11
    assert "asymmetric pair(s) averaged" in caplog.text


def test_warnings_for_zero_distance_and_few_known_pairs(tmp_path, caplog):
    latlon = "name,latitude,longitude\nA,10,10\nB,10,10\nC,12,10\nD,10,13\n"
    with caplog.at_level(logging.WARNING, logger="citymap_lightning"):
        load_table(write(tmp_path / "z.csv", latlon))
    assert "A and B are at distance 0" in caplog.text
    pairs = "source,target,distance\nA,B,1\nB,C,1\nA,C,1\nC,D,1\n"
    with caplog.at_level(logging.WARNING, logger="citymap_lightning"):
        load_table(write(tmp_path / "few.csv", pairs))
    assert "D has only 1 known distance(s): it may lie anywhere on a circle about its one partner" in caplog.text


# ---------------------------------------------------------------- bad inputs


def matrix_text(d: list[list[str]], names: list[str] | None = None) -> str:
    names = names or [f"P{i}" for i in range(len(d))]
    lines = ["," + ",".join(names)] + [",".join([n, *row]) for n, row in zip(names, d, strict=False)]
    return "\n".join(lines) + "\n"


GOOD = [["0", "3", "4", "5"], ["3", "0", "5", "4"], ["4", "5", "0", "3"], ["5", "4", "3", "0"]]


def with_cell(i: int, j: int, value: str, both: bool = True) -> list[list[str]]:
    d = [row[:] for row in GOOD]
    d[i][j] = value
    if both:
        d[j][i] = value
    return d


BAD_CSV = {
    "empty": ("", "the data file is empty"),
    "header": ("city,lat_deg,lon_deg\nA,1,2\n", "unrecognised header"),
    "not_square": (matrix_text([r[:3] for r in GOOD]), "not square"),
    "asymmetric": (matrix_text(with_cell(0, 1, "3.5", both=False)), "asymmetric: P0 -> P1 is 3.5 but P1 -> P0 is 3"),
    "negative": (matrix_text(with_cell(0, 2, "-4")), "negative distance -4 between P0 and P2"),
    "diagonal": (matrix_text(with_cell(1, 1, "2", both=False)), "distance from P1 to itself is 2, expected 0"),
    "nan_diagonal": (matrix_text(with_cell(2, 2, "", both=False)), "distance from P2 to itself is nan"),
    "infinite": (matrix_text(with_cell(0, 3, "inf")), "infinite distance between P0 and P3"),
    "non_numeric": (matrix_text(with_cell(0, 1, "far")), "row 2 (P0), column P1: 'far' is not a number"),
    "duplicate": (matrix_text(GOOD, ["A", "B", "A", "C"]), "duplicate name 'A'"),
    "latitude": ("name,latitude,longitude\nA,91,0\nB,0,0\nC,1,1\n", "row 2 (A): latitude 91 is outside [-90, 90]"),
    "longitude": ("name,latitude,longitude\nA,1,0\nB,0,-181\nC,1,1\n", "row 3 (B): longitude -181 is outside"),
    "two_places": ("name,latitude,longitude\nA,1,0\nB,0,1\n", "2 places: a map needs at least 3"),
    "all_zero": ("name,latitude,longitude\nA,1,1\nB,1,1\nC,1,1\n", "every known distance is 0"),
    "no_known_distance": (
        matrix_text([["0", "3", "4", ""], ["3", "0", "5", ""], ["4", "5", "0", ""], ["", "", "", "0"]]),
        "P3 has no known distance to any other place",
    ),
    "groups": (
        "source,target,distance\nA,B,1\nB,C,1\nA,C,1\nD,E,1\nE,F,1\nD,F,1\n",
        "split the places into 2 unconnected groups whose relative position is undetermined: "
        "A (3 places), D (3 places)",
    ),
    "pair_twice": ("source,target,distance\nA,B,1\nB,A,2\nB,C,1\nA,C,1\n", "listed twice with different distances"),
    "pair_negative": ("source,target,distance\nA,B,-1\nB,C,1\nA,C,1\n", "row 2 (A - B): distance -1 is negative"),
    "pair_self": ("source,target,distance\nA,A,3\nA,B,1\nB,C,1\nA,C,1\n", "row 2: distance from A to itself is 3"),
    "pair_weight": (
        "source,target,distance,weight\nA,B,1,1\nB,C,1,-2\nA,C,1,1\n",
        "row 3 (B - C): weight -2 must be finite and >= 0",
    ),
    "pair_underscore": ("source,target,distance\nA,B,4_5\nB,C,1\nA,C,1\n", "row 2 (A - B) distance: '4_5' is not"),
    "matrix_underscore": (matrix_text(with_cell(0, 1, "4_5")), "row 2 (P0), column P1: '4_5' is not a number"),
}


def expect_error(path: Path, message: str, **options) -> None:
    """The reader refuses ``path`` in one line that starts with the file's name and holds ``message``."""
    line = refusal(lambda: load_table(path, **options), message)
    assert line.startswith(f"{path}: "), line


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_csv(tmp_path, case):
    text, message = BAD_CSV[case]
    expect_error(write(tmp_path / f"{case}.csv", text), message)


def test_a_bad_csv_through_the_cli(tmp_path, capsys):
    """A data error's way out of the CLI: one line naming the file and the cell, status 2, no results."""
    text, message = BAD_CSV["non_numeric"]
    path = write(tmp_path / "non_numeric.csv", text)
    line = refused(tmp_path, capsys, ["--data.path", str(path)], message)
    assert line.startswith(f"error: {path}: ")


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nowhere.csv", "file not found")


def test_unknown_extension(tmp_path):
    expect_error(write(tmp_path / "d.xlsx", "x"), "unknown extension '.xlsx'")


def test_npy_not_square_and_names_mismatch(tmp_path):
    np.save(tmp_path / "rect.npy", np.zeros((3, 4)))
    expect_error(tmp_path / "rect.npy", "not square (shape (3, 4))")
    np.save(tmp_path / "sq.npy", EUROPE_TABLE.matrix())
    names = write(tmp_path / "names.txt", "A\nB\nC\n")
    line = refusal(lambda: load_table(tmp_path / "sq.npy", names=names), "3 names")
    assert line == f"{names}: 3 names for the 36 x 36 matrix in {tmp_path / 'sq.npy'}"


def test_divergence_stops_with_a_plain_message(tmp_path, capsys):
    args = ["--optimizer", "SGD", "--optimizer.lr", "1e6", "--trainer.max_epochs", "50"]
    refused(tmp_path, capsys, args, "learning rate is probably too large")


def test_haversine_matrix_is_what_places_give():
    assert np.allclose(EUROPE_TABLE.matrix(), geo.distance_matrix(EUROPE_TABLE.latlon))


def test_explicit_format_overrides_the_extension(tmp_path):
    path = europe_matrix_csv(tmp_path / "distances.dat")
    with pytest.raises(Exception, match="unknown extension '.dat'"):
        load_table(path)
    table = load_table(path, format="matrix")
    assert table.names == EUROPE_TABLE.names and table.kind == "matrix"


@pytest.mark.parametrize("marker", ["", "#N/A", "NA", "N/A", "n/a", "nan", "-", " #n/a "])
def test_every_missing_marker_is_an_unknown_pair(tmp_path, caplog, marker):
    """Matrix and pair list alike: the one set of markers (data.MISSING) means an unknown distance."""
    matrix = load_table(write(tmp_path / "m.csv", matrix_text(with_cell(0, 1, marker))))
    assert matrix.n_known_pairs == 5 and np.isnan(matrix.matrix()[0, 1])
    pairs = "source,target,distance\nA,B,3\nA,C,4\nA,D,5\nB,C,5\nB,D,4\nC,D,3\nA,E,1\nB,E,1\nC,E,{}\nD,E,1\n"
    with caplog.at_level(logging.WARNING, logger="citymap_lightning"):
        table = load_table(write(tmp_path / "p.csv", pairs.format(marker)))
    assert table.n_known_pairs == 9 and np.isnan(table.matrix()[2, 4])
    assert "p.csv: 1 pair(s) without a distance are left unknown: row 10 (C - E)" in caplog.text


def test_empty_distances_in_a_pair_list_are_counted_and_the_first_rows_named(tmp_path, caplog):
    rows = ["source,target,distance"] + [f"P{a},P{b},{'' if (a + b) % 4 == 0 else a + b}"
                                         for a in range(8) for b in range(a + 1, 8)]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="citymap_lightning"):
        table = load_table(write(tmp_path / "p.csv", "\n".join(rows) + "\n"))
    assert table.n_known_pairs == 28 - 6
    warning = [r.getMessage() for r in caplog.records if "without a distance" in r.getMessage()]
    assert warning == [f"{tmp_path / 'p.csv'}: 6 pair(s) without a distance are left unknown: row 5 (P0 - P4), "
                       "row 10 (P1 - P3), row 14 (P1 - P7) … and 3 more"]  # fmt: skip


@pytest.mark.parametrize("marker", ["#N/A", "-", ""])
def test_a_missing_marker_where_a_value_is_required_is_refused(tmp_path, marker):
    from citymap_lightning.errors import DataError

    text = f"name,latitude,longitude\nA,1,0\nB,{marker},1\nC,1,1\n"
    with pytest.raises(DataError, match="row 3 \\(B\\) latitude"):
        load_table(write(tmp_path / "places.csv", text))
