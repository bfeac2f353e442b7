"""Parquet input (pyarrow, the ``large`` extra): the same tables and the same one-line messages as the CSV's."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import EUROPE, fit_cli, read_coordinates, refusal, refused, write

from citymap_lightning.errors import DataError
from citymap_lightning.readers import load_table

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

PAIRS = (
    "source,target,distance,weight\nParis,Lyon,465,1\nLyon,Marseille,315,2\nParis,Marseille,775,\nLyon,Nice,,1\n"
    "Nice,Paris,930,1\n"
)


def parquet(path: Path, **columns: list) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def test_a_pair_list_in_parquet_is_the_csvs_table(tmp_path: Path) -> None:
    path = parquet(tmp_path / "pairs.parquet", source=["Paris", "Lyon", "Paris", "Lyon", "Nice"],
                   target=["Lyon", "Marseille", "Marseille", "Nice", "Paris"],
                   distance=[465.0, 315.0, 775.0, None, 930], weight=[1.0, 2.0, None, 1.0, 1])  # fmt: skip
    table, csv = load_table(path), load_table(write(tmp_path / "pairs.csv", PAIRS))
    assert table.names == csv.names == ["Paris", "Lyon", "Marseille", "Nice"]
    for name in ("i", "j", "d", "w"):
        assert np.array_equal(getattr(table, name), getattr(csv, name)), name


def test_places_in_parquet_with_node_ids_and_any_column_case(tmp_path: Path) -> None:
    path = parquet(tmp_path / "places.pq", Name=[101, 102, 103], lat=[48.86, 45.76, 43.3], Longitude=[2.35, 4.84, 5.37])
    table = load_table(path)
    assert table.names == ["101", "102", "103"]
    assert np.allclose(table.latlon, [[48.86, 2.35], [45.76, 4.84], [43.3, 5.37]])


def test_parquet_numbers_stored_as_text_are_read_as_csv_cells(tmp_path: Path) -> None:
    cells = {"source": ["A", "B", "A", "C"], "target": ["B", "C", "C", "A"], "distance": ["1", "2", "#N/A", " 3 "]}
    path = parquet(tmp_path / "text.parquet", **cells)
    table = load_table(path)
    assert table.n_known_pairs == 3 and sorted(table.d.tolist()) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"source": ["A", "B"], "target": ["B", "B"], "distance": [1.0, 3.0]}, "row 3: distance from B to itself is 3"),
        ({"source": ["A", None], "target": ["B", "C"], "distance": [1.0, 3.0]}, "row 3 has an empty place name"),
        (
            {"source": ["A", "B"], "target": ["B", "C"], "distance": [1.0, -3.0]},
            "row 3 (B - C): distance -3 is negative",
        ),
        ({"name": ["A", "B"], "latitude": [1.0, None], "longitude": [2.0, 3.0]}, "row 3 (B) latitude: empty cell"),
        ({"name": ["A", "B"], "latitude": [1.0, 95.0], "longitude": [2.0, 3.0]}, "latitude 95 is outside [-90, 90]"),
        ({"source": ["A"], "target": ["B"], "distance": [True]}, "column 'distance' holds bool, not numbers"),
        ({"from": ["A"], "to": ["B"], "km": [1.0]}, "unrecognised columns 'from,to,km'"),
    ],
)
def test_parquet_input_is_refused_in_the_csvs_words(tmp_path: Path, columns: dict, message: str) -> None:
    path = parquet(tmp_path / "bad.parquet", **columns)
    line = refusal(lambda: load_table(path), message)
    assert line.startswith(f"{path}: ")


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "fake.parquet", "source,target,distance\nA,B,1\n")
    refusal(lambda: load_table(path), "not a Parquet file")


def test_without_pyarrow_parquet_is_refused_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    path = parquet(tmp_path / "pairs.parquet", source=["A", "B", "A"], target=["B", "C", "C"], distance=[1.0, 1, 1])
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match=r"reading Parquet needs pyarrow: pip install 'citymap-lightning\[large\]'"):
        load_table(path)
    refused(tmp_path, capsys, ["--data.path", str(path)], "reading Parquet needs pyarrow")


def test_the_fit_command_reads_parquet(tmp_path: Path) -> None:
    csv = load_table(EUROPE)
    path = parquet(tmp_path / "europe.parquet", name=csv.names, latitude=csv.latlon[:, 0], longitude=csv.latlon[:, 1])
    run = fit_cli(tmp_path / "run", "--data.path", str(path), "--trainer.max_epochs", "2")
    assert sorted(read_coordinates(run / "coordinates.csv")) == sorted(csv.names)
