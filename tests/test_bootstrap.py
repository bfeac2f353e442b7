"""Bootstrap replicates: uncertainty.csv, ellipses on the map and in TensorBoard, and the Guttman step."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from conftest import EUROPE, QUIET, event_tags, read_coordinates, refused, run_dir, write_matrix

from citymap_lightning import geometry as geo
from citymap_lightning import uncertainty
from citymap_lightning.cli import main
from citymap_lightning.readers import load_table
from citymap_lightning.solvers.guttman import GuttmanStep

TABLE = load_table(EUROPE)
D = geo.distance_matrix(TABLE.latlon)


def noisy(tmp_path, noise: np.ndarray):
    rng = np.random.default_rng(0)
    level = np.sqrt((noise[:, None] ** 2 + noise[None, :] ** 2) / 2)
    z = np.triu(rng.standard_normal(D.shape), 1)
    every = list(range(TABLE.n))
    return write_matrix(tmp_path / "noisy.csv", every, every, D * np.exp(level * (z + z.T)))


def test_bootstrap_writes_ellipses_that_grow_with_the_noise(tmp_path):
    noise = np.full(TABLE.n, 0.03)
    noise[:6] = 0.12
    path = noisy(tmp_path, noise)
    main(["fit", "--data.path", str(path), "--model.loss", "stress", "--model.bootstrap", "12",
          "--data.gazetteer", "false", "--trainer.max_epochs", "30", "--trainer.default_root_dir",
          str(tmp_path / "run"), *QUIET])  # fmt: skip
    log_dir = run_dir(tmp_path / "run")
    with open(log_dir / "uncertainty.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["name", *uncertainty.COLUMNS] and [r["name"] for r in rows] == TABLE.names
    semi = np.array([float(r["semi_major"]) for r in rows])
    minor = np.array([float(r["semi_minor"]) for r in rows])
    assert (semi >= minor).all() and (minor > 0).all()
    assert all(0 <= float(r["angle_deg"]) < 180 for r in rows)
    assert np.median(semi[:6]) > 1.5 * np.median(semi[6:])  # 4x the noise: larger ellipses
    acc = event_tags(log_dir)
    assert "uncertainty" in acc.Tags()["images"] and "uncertainty/median_semi_major" in acc.Tags()["scalars"]
    assert (log_dir / "uncertainty.png").stat().st_size > 10000
    assert len(read_coordinates(log_dir / "coordinates.csv")) == TABLE.n  # the map, not a replicate
    assert acc.Scalars("uncertainty/median_semi_major")[-1].value == pytest.approx(np.median(semi), rel=1e-3)
    # the logs are the map's, never a replicate's
    assert acc.Scalars("val/stress1")[-1].value == pytest.approx(acc.Scalars("hp/stress1")[-1].value, rel=1e-3)


def test_ellipses_of_a_known_spread():
    rng = np.random.default_rng(1)
    spread = rng.standard_normal((4000, 3, 2)) * np.array([3.0, 1.0])  # x 3 times y
    table = uncertainty.ellipses(spread)
    assert table[:, 0] == pytest.approx(3.0, rel=0.05) and table[:, 1] == pytest.approx(1.0, rel=0.05)
    assert table[:, 2] == pytest.approx(3.0 * np.sqrt(uncertainty.CHI2_95_2D), rel=0.05)
    assert np.minimum(table[:, 4], 180 - table[:, 4]).max() < 3  # along x


@pytest.mark.parametrize("fixed", [None, [0, 7, 20]], ids=["free", "anchored"])
def test_guttman_step_never_raises_the_stress(fixed):
    rng = np.random.default_rng(2)
    d = torch.from_numpy(D / D.max())
    w = torch.from_numpy(rng.integers(0, 3, (3, TABLE.n, TABLE.n)).astype(float))
    w = torch.triu(w, 1) + torch.triu(w, 1).transpose(1, 2)
    coords = torch.nn.Parameter(torch.from_numpy(rng.standard_normal((3, TABLE.n, 2))))
    start = coords.detach().clone()
    step = GuttmanStep([coords], d, w, iterations=1, fixed=None if fixed is None else torch.tensor(fixed))
    previous = None
    for _ in range(30):
        with torch.no_grad():
            now = (w * (torch.cdist(coords, coords) - d) ** 2).sum((-1, -2))
        assert previous is None or (now <= previous + 1e-9).all()
        previous = now
        step.step()
    assert (previous < 0.25 * (w * (torch.cdist(start, start) - d) ** 2).sum((-1, -2))).all()  # it did move
    if fixed is not None:  # the fixed places never moved
        assert torch.equal(coords.detach()[:, fixed], start[:, fixed])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.bootstrap", "1"], "bootstrap is 1"),
        (["--model.bootstrap", "5", "--model.loss", "course"], "not loss 'course'"),
        (["--model.bootstrap", "5", "--model.loss", "stress", "--model.geometry", "sphere"], "geometry 'sphere'"),
        (["--model.bootstrap", "5", "--model.loss", "stress", "--data.full_batch_limit", "0"], "bootstrap 5"),
    ],
)
def test_bootstrap_refusals(tmp_path, capsys, args, message):
    refused(tmp_path, capsys, args, message)
