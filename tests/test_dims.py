"""The ``dims`` subcommand: stress-1 per dimension beside random data's, as a CSV, a plot and TensorBoard."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import QUIET, ROOT, event_tags, refused, run_dir

from citymap_lightning.cli import main
from citymap_lightning.dims import Dimension, elbow


def test_dims_of_european_distances(tmp_path):
    main(["dims", "--trainer.default_root_dir", str(tmp_path), *QUIET, "--model.loss", "stress",
          "--trainer.max_epochs", "40", "--max_dim", "3", "--replicates", "2"])  # fmt: skip
    log_dir = run_dir(tmp_path)
    with open(log_dir / "dims.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["dim"]) for r in rows] == [1, 2, 3]
    s = np.array([float(r["stress1"]) for r in rows])
    random = np.array([float(r["random_stress1"]) for r in rows])
    assert s[1] < 0.003 and (s[0] - s[1]) >= 5 * (s[1] - s[2])  # Europe is flat: the elbow at 2
    assert (random > 10 * s[1:2]).all()  # random distances fit far worse
    assert (log_dir / "dims.png").stat().st_size > 10000
    acc = event_tags(log_dir)
    assert "dims" in acc.Tags()["images"]
    assert [e.step for e in acc.Scalars("dims/stress1")] == [1, 2, 3]
    assert not list(log_dir.rglob("*.ckpt"))  # nothing but the scree's files


def test_world_distances_have_their_elbow_at_3(tmp_path):
    world = str(ROOT / "data" / "world200.csv")
    main(["dims", "--data.path", world, "--trainer.default_root_dir", str(tmp_path), *QUIET, "--model.loss", "stress",
          "--trainer.max_epochs", "40", "--max_dim", "4", "--replicates", "1"])  # fmt: skip
    with open(run_dir(tmp_path) / "dims.csv", encoding="utf-8") as f:
        s = [float(r["stress1"]) for r in csv.DictReader(f)]
    assert elbow([Dimension(k + 1, v, 1.0) for k, v in enumerate(s)]) == 3


def test_elbow_ignores_rounding_after_it():
    rows = [Dimension(1, 0.34, 0.6), Dimension(2, 0.002, 0.5), Dimension(3, 0.00188, 0.4), Dimension(4, 0.00189, 0.4)]
    assert elbow(rows) == 2
    assert elbow(rows[:2]) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.geometry", "sphere"], "dims fits flat maps"),
        (["--max_dim", "0"], "max_dim (0) and replicates (5) must be at least 1"),
    ],
)
def test_dims_refusals(tmp_path, capsys, args, message):
    refused(tmp_path, capsys, args, message, subcommand="dims")
