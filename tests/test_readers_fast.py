"""The CSV readers' fast path: cells cut at once from the text are the csv module's cells, or it steps aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import write

from citymap_lightning.readers import load_table
from citymap_lightning.readers.text import body_lines, plain_columns, read_csv_body, split_rows

PLAIN_BODIES = {
    "plain": ("A,B,1\nB,C,2\nA,C,3\n", ",", 3),
    "no final newline": ("A,B,1\nB,C,2", ",", 3),
    "quoted names": ('"Sant Pere, Santa Caterina",B,1\nB,"C ""the"" town",2\nA,C,3\n', ",", 3),
    "quotes inside a name": ('O"Ne"il,B,1\nB,C,2\n', ",", 3),
    "spaces and empty cells": (" A , B ,\nB,C, 2 \n", ",", 3),
    "semicolons": ("A;B;1,5\nB;C;2\n", ";", 3),
    "tabs": ("A\tB\t1\nB\tC\t2\n", "\t", 3),
    "one column": ('A\n"B, C"\nD\n', ",", 1),
    "an empty trailing cell": ("A,B,1,\nB,C,2,\n", ",", 4),
    "non-ASCII names": ("Zürich,Kraków,1\nKraków,Łódź,2\n", ",", 3),
}
"""Bodies the fast path takes: its cells must be the csv module's."""

OTHER_BODIES = {
    "a name across lines": ('"A\nB",C,1\nC,D,2\n', ",", 3),
    "a row too long": ("A,B,1\nB,C,2,9\n", ",", 3),
    "a row too short": ("A,B,1\nB,C\n", ",", 3),
    "a blank line": ("A,B,1\n\nB,C,2\n", ",", 3),
    "a quote left open": ('A,"B,1\nB,C,2\n', ",", 3),
    "a quoted row too long": ('"A",B,1,2\nB,C,2\n', ",", 3),
    "a lone quote inside a name": ('O"Neil,B,1\nB,C,2\n', ",", 3),
    "a NUL": ("A,B\x00,1\n", ",", 3),
    "nothing": ("", ",", 3),
}
"""Bodies the fast path leaves to the csv module (whose rows the readers check for the exact message)."""


@pytest.mark.parametrize("case", PLAIN_BODIES)
def test_cells_cut_at_once_are_the_csv_modules(case: str) -> None:
    body, separator, width = PLAIN_BODIES[case]
    columns = plain_columns(body, separator, width)
    assert columns is not None
    assert [list(row) for row in zip(*columns, strict=True)] == split_rows(body_lines(body), separator)


@pytest.mark.parametrize("case", OTHER_BODIES)
def test_bodies_that_are_not_plain_go_to_the_csv_module(case: str) -> None:
    assert plain_columns(*OTHER_BODIES[case]) is None


def _same_pairs(a, b) -> None:
    assert a.names == b.names
    for name in ("i", "j", "d", "w"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_a_pair_list_reads_the_same_whichever_way_it_is_cut(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"place {k}" for k in range(300)] + ['"Sant Pere, Santa Caterina"', '"O""Neil"']
    lines = ["source,target,distance,weight"]
    for _ in range(3000):
        a, b = rng.choice(len(names), 2, replace=False)
        lines.append(f"{names[a]},{names[b]},{rng.uniform(1, 100):.3f},{rng.choice(['', '1', '2.5'])}")
    text = "\n".join(lines) + "\n"
    fast = load_table(write(tmp_path / "fast.csv", text), symmetrize=True)
    # a blank line sends the same rows through the csv module row by row
    slow = load_table(write(tmp_path / "slow.csv", text.replace("\n", "\n\n", 1)), symmetrize=True)
    header, body, separator = read_csv_body(tmp_path / "fast.csv")
    assert plain_columns(body, separator, len(header)) is not None
    _same_pairs(fast, slow)
    assert "Sant Pere, Santa Caterina" in fast.names and 'O"Neil' in fast.names
    crlf = load_table(write(tmp_path / "crlf.csv", text.replace("\n", "\r\n")), symmetrize=True)
    _same_pairs(fast, crlf)


def test_places_read_the_same_whichever_way_they_are_cut(tmp_path: Path) -> None:
    text = 'name,latitude,longitude\nParis,48.86,2.35\n"Frankfurt, Main",50.11,8.68\nRome,41.9,12.5\n'
    fast = load_table(write(tmp_path / "fast.csv", text))
    slow = load_table(write(tmp_path / "slow.csv", text.replace("\n", "\n\n")))
    assert fast.names == slow.names == ["Paris", "Frankfurt, Main", "Rome"]
    assert np.array_equal(fast.latlon, slow.latlon)


def test_the_messages_of_the_fast_path_name_the_row(tmp_path: Path) -> None:
    from citymap_lightning.errors import DataError

    plain = "source,target,distance\nA,B,1\nB,C,x\nA,C,3\n"
    with pytest.raises(DataError, match=r"row 3 \(B - C\) distance: 'x' is not a number"):
        load_table(write(tmp_path / "bad.csv", plain))
    with pytest.raises(DataError, match="row 3 has an empty place name"):
        load_table(write(tmp_path / "empty.csv", "source,target,distance\nA,B,1\nB, ,2\n"))
    with pytest.raises(DataError, match=r"row 3 \(Rome\): latitude 91 is outside"):
        load_table(write(tmp_path / "lat.csv", "name,latitude,longitude\nParis,48,2\nRome,91,12\nOslo,59,10\n"))
