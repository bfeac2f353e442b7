"""Monitoring shows the fit: train/* scalars on Lightning's own logging schedule, under the CLI and a plain Trainer."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
from conftest import event_tags

from citymap_lightning import CityMap, DistanceDataModule
from citymap_lightning.cli import main


def test_every_log_every_n_steps_gets_its_points(tmp_path):
    """60 epochs of one step each, every 10 steps: Lightning writes steps 10, 20, ... 60 (numbered 9, ... 59).

    ``--model.tol 0`` runs every epoch: the default stops once converged (12 epochs here).
    """
    main(["fit", "--trainer.log_every_n_steps", "10", "--trainer.enable_progress_bar", "false", "--model.tol", "0",
          "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip
    (log_dir,) = [p.parent for p in tmp_path.rglob("config.yaml")]
    acc = event_tags(log_dir)
    for tag in ("train/loss", "train/stress1", "train/lr"):
        assert [e.step for e in acc.Scalars(tag)] == [9, 19, 29, 39, 49, 59], tag
    assert acc.Scalars("train/stress1")[-1].value <= 0.0023  # the course's optimum, reached within 10 epochs


def test_a_plain_trainer_writes_train_scalars_and_the_last_step(tmp_path):
    """Lightning's default log_every_n_steps is 50: step 50 is Lightning's, the 60th (the fit's end) the model's."""
    pl.seed_everything(0)
    dm = DistanceDataModule()
    model = CityMap(num_places=dm.num_places, tol=0.0)  # every epoch runs
    trainer = pl.Trainer(max_epochs=60, default_root_dir=tmp_path, enable_progress_bar=False)
    trainer.fit(model, dm)
    acc = event_tags(Path(trainer.log_dir))
    for tag in ("train/loss", "train/stress1", "train/lr"):
        assert [e.step for e in acc.Scalars(tag)] == [49, 59], tag
    # the last step's value is the fit's end, up to L-BFGS's last line-search probe (1e-10 apart on this machine)
    assert acc.Scalars("train/stress1")[-1].value == pytest.approx(acc.Scalars("hp/stress1")[-1].value, rel=1e-6)
