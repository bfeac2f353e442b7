"""Resume, reproducibility and prediction from checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import QUIET

from citymap_lightning.cli import main


def fit(root, *extra):
    main(["fit", "--trainer.default_root_dir", str(root), *QUIET, *extra])


def version(root, n):
    return root / "lightning_logs" / f"version_{n}"


def test_same_seed_same_coordinates(tmp_path):
    fit(tmp_path / "a", "--trainer.max_epochs", "20")
    fit(tmp_path / "b", "--trainer.max_epochs", "20")
    a = (version(tmp_path / "a", 0) / "coordinates.csv").read_bytes()
    b = (version(tmp_path / "b", 0) / "coordinates.csv").read_bytes()
    assert a == b


@pytest.mark.slow
def test_resume_last_ends_where_an_uninterrupted_run_ends(tmp_path, capsys):
    never = ("--model.tol", "0")  # every epoch runs: the split falls mid-fit
    fit(tmp_path / "whole", "--trainer.max_epochs", "40", *never)
    root = tmp_path / "split"
    fit(root, "--trainer.max_epochs", "20", *never)
    capsys.readouterr()
    fit(root, "--trainer.max_epochs", "40", "--ckpt_path", "last", *never)
    assert f"Resuming from {version(root, 0) / 'checkpoints' / 'last.ckpt'}" in capsys.readouterr().out
    whole = np.loadtxt(version(tmp_path / "whole", 0) / "coordinates.csv", delimiter=",", skiprows=1, usecols=(1, 2))
    resumed = np.loadtxt(version(root, 1) / "coordinates.csv", delimiter=",", skiprows=1, usecols=(1, 2))
    assert np.array_equal(whole, resumed)
    # the map's history came through the checkpoint: the resumed run's trajectories start at the start
    ckpt = torch.load(version(root, 1) / "checkpoints" / "last.ckpt", weights_only=False)
    (state,) = [v for k, v in ckpt["callbacks"].items() if k.startswith("MapRenderer")]
    assert len(state["history"]) >= 40


def test_resume_last_without_an_earlier_run_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        fit(tmp_path, "--ckpt_path", "last")
    assert exit_info.value.code != 0
    assert "no earlier run with checkpoints/last.ckpt" in capsys.readouterr().err


def test_predict_writes_coordinates_without_training(tmp_path, capsys):
    fit(tmp_path, "--trainer.max_epochs", "30")
    ckpt = version(tmp_path, 0) / "checkpoints" / "last.ckpt"
    main(["predict", "--ckpt_path", str(ckpt), "--trainer.default_root_dir", str(tmp_path), *QUIET])
    fitted = (version(tmp_path, 0) / "coordinates.csv").read_text()
    predicted = (version(tmp_path, 1) / "coordinates.csv").read_text()
    assert fitted == predicted
    assert str(version(tmp_path, 1) / "coordinates.csv") in capsys.readouterr().out


def test_predict_with_a_checkpoint_of_other_data_is_a_clear_error(tmp_path, capsys):
    fit(tmp_path, "--trainer.max_epochs", "3")
    ckpt = version(tmp_path, 0) / "checkpoints" / "last.ckpt"
    small = tmp_path / "small.csv"  # a matrix of other places: its columns name no fitted place
    small.write_text(",A,B,C\nA,0,1,2\nB,1,0,2\nC,2,2,0\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--ckpt_path", str(ckpt), "--data.path", str(small),
              "--trainer.default_root_dir", str(tmp_path / "p"), *QUIET])  # fmt: skip
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "small.csv: column 'A' is not a place of the fitted map" in err[0]
    assert not list((tmp_path / "p").rglob("coordinates.csv"))
