"""Paths, fixtures and helpers shared by the test modules: CLI runs, written results read back, refusals."""

from __future__ import annotations

import csv
import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EUROPE = ROOT / "data" / "europe36.csv"
COURSE_DISTANCES = ROOT / "data" / "optim4ai_distances.npy"  # the course's own 36 x 36 matrix (km), bundled
COURSE_NAMES = ROOT / "data" / "optim4ai_cities.txt"  # its names, spelled as the course spells them
QUIET = ["--trainer.enable_progress_bar", "false"]


@pytest.fixture(scope="session", autouse=True)
def _headless_and_quiet_argv():
    """Render off-screen, and keep LightningCLI from reading pytest's own argv."""
    matplotlib.use("agg")
    saved = sys.argv
    sys.argv = ["citymap_lightning"]
    yield
    sys.argv = saved


@pytest.fixture
def europe_path() -> Path:
    return EUROPE


# ---- files in, results out ---------------------------------------------------------------------------------------


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` and give the path back, to pass straight to an option."""
    path.write_text(text, encoding=encoding)
    return path


@functools.cache
def europe() -> Any:
    """The bundled 36 European cities as a table (read once)."""
    from citymap_lightning.readers import load_table

    return load_table(EUROPE)


@functools.cache
def europe_distances() -> np.ndarray:
    """Their great-circle distances (km), 36 x 36."""
    from citymap_lightning import geometry as geo

    return geo.distance_matrix(europe().latlon)


def write_matrix(path: Path, rows: list[int], cols: list[int], d: np.ndarray | None = None) -> Path:
    """A matrix CSV of the European cities ``rows`` x ``cols`` (indices), ``d`` or their great-circle km."""
    from citymap_lightning import output

    d = europe_distances() if d is None else d
    names = europe().names
    return output.write_matrix(path, [names[r] for r in rows], [names[c] for c in cols], d[np.ix_(rows, cols)])


def run_dir(root: Path) -> Path:
    """The one run folder (the one holding config.yaml) under ``root``."""
    (log_dir,) = [p.parent for p in root.rglob("config.yaml")]
    return log_dir


def fit_cli(root: Path, *args: str, subcommand: str = "fit") -> Path:
    """Run the CLI in-process with every output under ``root``, quietly; return the run's folder."""
    from citymap_lightning.cli import main

    main([subcommand, "--trainer.default_root_dir", str(root), *QUIET, *args])
    return run_dir(root)


def read_coordinates(path: Path) -> dict[str, np.ndarray]:
    """coordinates.csv as {name: position} (its axes x, y, z...; not the geonameid, region and country of names)."""
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f))
    axes = [k for k, column in enumerate(rows[0]) if re.fullmatch(r"x\d*|y|z", column)]
    return {row[0]: np.array([float(row[k]) for k in axes]) for row in rows[1:]}


def geojson_latlon(path: Path) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """coordinates.geojson as {name: (latitude, longitude)} and {name: properties}."""
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    latlon = {f["properties"]["name"]: np.array(f["geometry"]["coordinates"][::-1]) for f in features}
    return latlon, {f["properties"]["name"]: f["properties"] for f in features}


def stress1(x: np.ndarray, d: np.ndarray) -> float:
    """Kruskal's stress-1 of positions ``x`` (n x dim) against the n x n distances ``d``, by numpy alone."""
    i, j = np.triu_indices(len(d), 1)
    fitted = np.linalg.norm(x[i] - x[j], axis=1)
    return float(np.sqrt(((fitted - d[i, j]) ** 2).sum() / (d[i, j] ** 2).sum()))


def map_tolerance(coords: Any, relative: float = 0.0, dtype: Any = np.float64, roundings: float = 8) -> float:
    """An absolute tolerance on a map's coordinates that holds on any machine, in the map's own unit.

    ``relative`` of the map's extent (the widest side of its bounding box), and never less than
    ``roundings`` float roundings of it in ``dtype`` (``np.float32`` where the fit's coordinates are
    float32). A tolerance in km passes on one machine and fails on the next (1e-6 km on a map 1,000 km
    across failed at 2.4e-6): rounding and an optimiser's stopping point scale with the map.
    """
    points = np.asarray(coords, dtype=np.float64)
    extent = float(np.ptp(points.reshape(-1, points.shape[-1]), axis=0).max())
    return max(relative, roundings * float(np.finfo(dtype).eps)) * extent


def map_stress1(coordinates: Path, table: Any) -> float:
    """Stress-1 of a written coordinates.csv against every pair of ``table`` (a DistanceTable), by numpy alone."""
    coords = read_coordinates(coordinates)
    x = np.stack([coords[name] for name in table.names])
    i, j = np.triu_indices(table.n, 1)
    d = table.pair_distances(i, j)
    return float(np.sqrt(((np.linalg.norm(x[i] - x[j], axis=1) - d) ** 2).sum() / (d**2).sum()))


def event_tags(log_dir: Path) -> Any:
    """The TensorBoard event files in ``log_dir``, read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def assert_course_orientation(coords: dict[str, np.ndarray]) -> None:
    """The course's rule and a few more facts of European geography hold on a map."""
    assert coords["Copenhagen"][1] > coords["Rome"][1]
    assert coords["Reykjavik"][0] < coords["Moscow"][0]
    assert coords["Lisbon"][0] < coords["Madrid"][0]
    assert coords["Kiruna"][1] > coords["Gibraltar"][1]
    assert coords["Athens"][0] > coords["London"][0]


# ---- refusals ----------------------------------------------------------------------------------------------------


def refused(tmp_path: Path, capsys: Any, args: list[str], message: str, subcommand: str = "fit") -> str:
    """Run the CLI and check the promise: one line naming the problem, status 2, no traceback, no results."""
    from citymap_lightning.cli import main

    root = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main([subcommand, *args, "--trainer.default_root_dir", str(root), *QUIET])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and message in err[0], err[0]
    assert "Traceback" not in err[0] and "weights_only=False" not in err[0]
    assert not list(root.rglob("coordinates.csv")) and not list(root.rglob("map.png"))
    return err[0]


def refusal(call: Callable[[], object], message: str) -> str:
    """Call a reader or check directly: it must refuse with an error the CLI tells as a user's, holding ``message``.

    For refusals whose path through the CLI (one line, status 2, no results) a :func:`refused` test covers
    once per kind: this checks the message without starting the CLI. Returns the line the CLI would print.
    """
    from citymap_lightning.cli import user_error

    with pytest.raises(Exception) as info:
        call()
    text = user_error(info.value)
    assert text is not None, f"a bug's traceback, not a user's error: {info.value!r}"
    line = " ".join(text.split())
    assert message in line and "Traceback" not in line, line
    return line
