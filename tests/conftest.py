from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EUROPE = ROOT / "data" / "europe36.csv"
COURSE_DISTANCES = ROOT / "data" / "optim4ai_distances.npy"  # the course's own 36 x 36 matrix (km), bundled
COURSE_NAMES = ROOT / "data" / "optim4ai_cities.txt"  # its names, spelled as the course spells them


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


def read_coordinates(path: Path) -> dict[str, np.ndarray]:
    """coordinates.csv as {name: position}."""
    import csv

    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return {row[0]: np.array([float(v) for v in row[1:]]) for row in rows[1:]}


def event_tags(log_dir: Path) -> dict[str, list]:
    """Tags of the TensorBoard event files in ``log_dir``, read with TensorBoard's own reader."""
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
