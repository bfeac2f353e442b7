"""Seed sweeps: every configuration reaches the optimum on the 36 cities (slow: about 3 minutes)."""

from __future__ import annotations

import pytest
from conftest import QUIET, ROOT, assert_course_orientation, map_stress1, read_coordinates, run_dir

from citymap_lightning.cli import main
from citymap_lightning.readers import load_table

TABLE = load_table(ROOT / "data" / "europe36.csv")


def fit_stress(tmp_path, seed: int, *extra: str) -> float:
    root = tmp_path / f"seed{seed}"
    main(["fit", "--seed_everything", str(seed), "--trainer.default_root_dir", str(root), *QUIET, *extra])
    coordinates = run_dir(root) / "coordinates.csv"
    assert_course_orientation(read_coordinates(coordinates))
    return map_stress1(coordinates, TABLE)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_default_config_every_seed(tmp_path, seed):
    assert fit_stress(tmp_path, seed) <= 0.0023


@pytest.mark.slow
@pytest.mark.parametrize("config", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("seed", range(5))
def test_course_configs(tmp_path, config, seed):
    assert fit_stress(tmp_path, seed, "--config", str(ROOT / "configs" / f"{config}.yaml")) <= 0.0023
