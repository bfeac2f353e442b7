"""What a run prints reads well: log lines never share the progress bar's line, lists of names are cut with a count."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import EUROPE, QUIET

from citymap_lightning import comparison, output
from citymap_lightning.lists import listed
from citymap_lightning.progress import EpochProgressBar, console_handler


class Terminal(io.StringIO):
    """A stream that says it is a terminal: the bar is cleared and drawn again around a log line."""

    def isatty(self) -> bool:
        return True


def screen(text: str) -> list[str]:
    """The lines a terminal shows for ``text``: a carriage return writes over the line from its start."""
    lines = []
    for line in text.split("\n"):
        shown = ""
        for part in line.split("\r"):
            shown = part + shown[len(part) :]
        lines.append(shown.rstrip())
    return lines


@pytest.mark.parametrize("stream", [io.StringIO(), Terminal()], ids=["file", "terminal"])
def test_a_warning_during_the_fit_is_a_line_of_its_own(monkeypatch, stream):
    monkeypatch.setattr(sys, "stderr", stream)
    bar = EpochProgressBar()
    bar.on_train_start(SimpleNamespace(max_epochs=60, current_epoch=0), None)
    handler = console_handler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("citymap_lightning.test_console")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("Koga: matched Koga (JP-08), 700 km from where the map puts it; left out")
        logger.warning("a second one")
    finally:
        logger.removeHandler(handler)
        bar.on_train_end(None, None)
    text = stream.getvalue()
    raw = text.split("\n")
    shown = screen(text)
    warned = [k for k, line in enumerate(shown) if "WARNING" in line]
    assert [shown[k] for k in warned] == [
        "WARNING: Koga: matched Koga (JP-08), 700 km from where the map puts it; left out",
        "WARNING: a second one",
    ]
    if isinstance(stream, Terminal):  # cleared, written, the bar drawn again below
        assert shown[warned[-1] + 1].startswith("fit:   0%")
    else:  # in a file every line holds one thing: the bar's line is ended first
        assert [raw[k] for k in warned] == [shown[k] for k in warned]
        assert shown[: warned[0]] == ["fit:   0%|          | 0/60 [00:00<?, ?epoch/s]"]


def test_no_log_line_of_a_fit_starts_on_the_bars_line(tmp_path):
    """A 3-D map with positions warns (and Lightning says why it stopped) while the bar is drawn, at the fit's end."""
    done = subprocess.run(
        [sys.executable, "-m", "citymap_lightning", "fit", "--data.positions", str(EUROPE), "--model.geometry", "space",
         "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(tmp_path), "--map.html", "false"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.split("\n")
    warned = [line for line in lines if "WARNING" in line or "stopped" in line]
    assert any("drawn for a flat 2-D map only" in line for line in warned), done.stderr
    assert warned and all(line.startswith(("WARNING: ", "`Trainer.fit` stopped")) for line in warned), warned


# ---- lists of names --------------------------------------------------------------------------------------------------


def test_a_long_list_is_cut_with_a_count():
    names = [f"place {k}" for k in range(285)]
    assert listed(names) == ", ".join(names[:10]) + " … and 275 more"
    assert listed(names[:10]) == ", ".join(names[:10])
    assert listed(["a", "b"], sep="; ", total=7) == "a; b … and 5 more"
    assert listed([]) == ""


def test_compare_prints_the_names_only_in_one_map_in_one_short_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    common = [f"c{k}" for k in range(20)]
    only_a = [f"a{k}" for k in range(285)]
    output.write_coordinates(tmp_path / "a.csv", common + only_a, rng.normal(size=(305, 2)) * 100)
    output.write_coordinates(tmp_path / "b.csv", [*common, "b0"], rng.normal(size=(21, 2)) * 100)
    code = comparison.compare_main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--out", str(tmp_path / "cmp")])
    assert code == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("only in")]
    assert line == (
        f"only in {tmp_path / 'a.csv'}: {', '.join(only_a[:10])} … and 275 more; only in {tmp_path / 'b.csv'}: b0"
    )


def test_refusals_that_name_many_places_count_the_rest(tmp_path, capsys):
    from conftest import refused

    pairs = "source,target,distance\n" + "".join(f"A{k},B{k},1\n" for k in range(12))
    path = tmp_path / "groups.csv"
    path.write_text(pairs, encoding="utf-8")
    line = refused(tmp_path, capsys, ["--data.path", str(path), *QUIET], "unconnected groups")
    assert line.endswith("A0 (2 places), A1 (2 places), A2 (2 places), A3 (2 places), A4 (2 places) … and 7 more")
