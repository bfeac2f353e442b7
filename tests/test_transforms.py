"""Interval and ordinal transforms: travel times with a fixed cost, and distances known only by their order."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from conftest import EUROPE, QUIET, event_tags, geojson_latlon, read_coordinates, refused, run_dir, write_matrix

from citymap_lightning import geometry as geo
from citymap_lightning import transforms
from citymap_lightning.cli import main
from citymap_lightning.readers import load_table

TABLE = load_table(EUROPE)
D = geo.distance_matrix(TABLE.latlon)
EVERY = list(range(TABLE.n))


def fit(root, *extra: str):
    main(["fit", "--trainer.default_root_dir", str(root), *QUIET, "--model.loss", "stress", "--data.gazetteer", "false",
          *extra])  # fmt: skip
    return run_dir(root)


def test_interval_recovers_the_fixed_cost_of_travel_times(tmp_path, caplog):
    times = 20 + D / 1.5
    np.fill_diagonal(times, 0.0)
    path = write_matrix(tmp_path / "times.csv", EVERY, EVERY, times)
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        log_dir = fit(tmp_path / "run", "--data.path", str(path), "--model.transform", "interval")
    line = next(r.getMessage() for r in caplog.records if "interval transform" in r.getMessage())
    a = float(line.split("given = ")[1].split(" +")[0])
    assert a == pytest.approx(20, rel=0.1)
    acc = event_tags(log_dir)
    assert acc.Scalars("transform/a")[-1].value == pytest.approx(a, rel=1e-3)
    assert "transform/b" in acc.Tags()["scalars"]
    assert acc.Scalars("train/stress1")[-1].value < 0.01  # against the disparities
    assert (log_dir / "shepard.png").stat().st_size > 10000


def test_ordinal_recovers_places_from_the_order_of_their_distances(tmp_path):
    path = write_matrix(tmp_path / "sqrt.csv", EVERY, EVERY, np.sqrt(D))
    stress = {}
    for transform in ("ratio", "ordinal"):
        coords = read_coordinates(fit(tmp_path / transform, "--data.path", str(path), "--model.transform", transform)
                                  / "coordinates.csv")  # fmt: skip
        x = np.array([coords[n] for n in TABLE.names])
        i, j = np.triu_indices(TABLE.n, 1)
        fitted = np.linalg.norm(x[i] - x[j], axis=1)
        scale = (fitted * D[i, j]).sum() / (fitted**2).sum()
        stress[transform] = np.sqrt(((scale * fitted - D[i, j]) ** 2).sum() / (D[i, j] ** 2).sum())
    assert stress["ordinal"] < 0.01 < stress["ratio"]


def test_disparities_by_hand():
    fitted = torch.tensor([[1.0, 3.0, 2.0, 4.0]], dtype=torch.float64)
    given = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    w = torch.ones(4, dtype=torch.float64)
    # ordinal: 3 then 2 violate the order and pool to 2.5
    assert transforms.disparities("ordinal", fitted, given, w).tolist() == [[1.0, 2.5, 2.5, 4.0]]
    a, b = transforms.interval_line(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([12.0, 14.0, 16.0]), torch.ones(3))
    assert float(a[0]) == pytest.approx(10.0) and float(b[0]) == pytest.approx(2.0)
    loss, residual, _ = transforms.stress_terms("interval", torch.tensor([[1.0, 2.0, 3.0]]),
                                                torch.tensor([12.0, 14.0, 16.0]), torch.ones(3))  # fmt: skip
    assert float(loss[0]) == pytest.approx(0.0, abs=1e-12) and float(residual[0]) == pytest.approx(0.0, abs=1e-12)


def test_interval_on_the_sphere(tmp_path):
    log_dir = fit(tmp_path, "--model.geometry", "sphere", "--model.transform", "interval", "--trainer.max_epochs", "30")
    assert event_tags(log_dir).Scalars("train/stress1")[-1].value < 0.01


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.transform", "ordinal", "--model.loss", "course"], "the course objective compares squared distances"),
        (
            ["--model.transform", "ordinal", "--model.loss", "stress", "--data.full_batch_limit", "0"],
            "transform 'ordinal'",
        ),
        (["--model.transform", "log"], "unknown transform 'log'"),
    ],
)
def test_transform_refusals(tmp_path, capsys, args, message):
    refused(tmp_path, capsys, args, message)


@pytest.mark.slow
def test_transforms_by_pair_batches_on_a_pair_list(tmp_path, caplog):
    """A road-shaped pair list (nearest neighbours and a few far partners) fitted by pair batches."""
    rng = np.random.default_rng(0)
    pairs = set()
    for a in range(TABLE.n):
        for b in [*np.argsort(D[a])[1:8], *rng.choice(TABLE.n, 3, replace=False)]:
            if a != b:
                pairs.add((min(a, b), int(max(a, b))))
    for transform, values in (("interval", 20 + D / 1.5), ("ordinal", np.sqrt(D))):
        path = tmp_path / f"{transform}.csv"
        lines = [f"{TABLE.names[a]},{TABLE.names[b]},{values[a, b]:.5f}\n" for a, b in sorted(pairs)]
        path.write_text("source,target,distance\n" + "".join(lines), encoding="utf-8")
        with caplog.at_level(logging.INFO, logger="citymap_lightning"):
            log_dir = fit(tmp_path / transform, "--data.path", str(path), "--model.transform", transform,
                          "--data.full_batch_limit", "0", "--trainer.max_epochs", "60")  # fmt: skip
        coords = read_coordinates(log_dir / "coordinates.csv")
        x = np.array([coords[n] for n in TABLE.names])
        i, j = np.triu_indices(TABLE.n, 1)
        fitted = np.linalg.norm(x[i] - x[j], axis=1)
        scale = (fitted * D[i, j]).sum() / (fitted**2).sum()
        error = np.sqrt(((scale * fitted - D[i, j]) ** 2).sum() / (D[i, j] ** 2).sum())
        assert error < 0.04, (transform, error)  # against every pair, not only those given
    line = next(r.getMessage() for r in caplog.records if "interval transform" in r.getMessage())
    assert float(line.split("given = ")[1].split(" +")[0]) == pytest.approx(20, rel=0.15)


def test_ordinal_names_are_located_without_their_values(tmp_path):
    """Ranks are not proportional to km: the gazetteer matches names without them, and the GeoJSON is right."""
    path = write_matrix(tmp_path / "sqrt.csv", EVERY, EVERY, np.sqrt(D))
    main(["fit", "--trainer.default_root_dir", str(tmp_path / "run"), *QUIET, "--model.loss", "stress",
          "--data.path", str(path), "--model.transform", "ordinal"])  # fmt: skip
    latlon, _ = geojson_latlon(run_dir(tmp_path / "run") / "coordinates.geojson")
    found = np.array([latlon[name] for name in TABLE.names])
    assert np.median(geo.haversine(found, TABLE.latlon)) < 60
