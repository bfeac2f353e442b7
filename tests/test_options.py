"""Options never guess: no abbreviations, and every refused option is one line naming it, with the closest known one."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch
from conftest import event_tags

from citymap_lightning import CityMap, losses
from citymap_lightning.cli import main

QUIET = ["--trainer.enable_progress_bar", "false"]


def refused_option(capsys, args: list[str]) -> str:
    """Run the CLI in-process; it must exit 2 with one ``error:`` line on stderr and nothing on stdout."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert out == ""
    return lines[0]


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict", "dims"])
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model.los", "stress"], "error: --model.los: unknown option; did you mean --model.loss?"),
        (["--data.pth", "x"], "error: --data.pth: unknown option; did you mean --data.path?"),
        (["--data.init_args.pth", "x"], "error: --data.pth: unknown option; did you mean --data.path?"),
        (["--trainer.max_epoch", "1"], "error: --trainer.max_epoch: unknown"),
        (["--modl.loss=stress"], "error: --modl.loss: unknown option; did you mean --model.loss?"),
    ],
    ids=["model-abbreviation", "data-typo", "data-init-args", "trainer-abbreviation", "group-typo"],
)
def test_unknown_options_are_refused_with_the_closest_known_one(capsys, subcommand, args, expected):
    line = refused_option(capsys, [subcommand, *args])
    assert line.startswith(expected), line


def test_an_abbreviation_is_never_taken_for_the_option(tmp_path, capsys):
    """argparse would take --trainer.max_epoch for --trainer.max_epochs and fit: nothing may be written."""
    line = refused_option(capsys, ["fit", "--trainer.max_epoch", "1", "--trainer.default_root_dir", str(tmp_path)])
    assert line == "error: --trainer.max_epoch: unknown option; did you mean --trainer.max_epochs?"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["dims", "--max_dims", "3"], "error: --max_dims: unknown option; did you mean --max_dim?"),
        (["fit", "--model.dim", "abc"], "error: --model.dim: expected int, got 'abc'"),
        (["fit", "--data.full_batch_limit", "x"], "error: --data.full_batch_limit: expected int, got 'x'"),
        (["fit", "--optimizer", "Adam", "--optimizer.lrr", "0.1"], "did you mean --optimizer.lr?"),
        (["fit", "--optimizer", "Adamm"], "error: --optimizer: no class 'Adamm': did you mean Adam?"),
        (["fit", "--optimizer.lr", "0.1"], "error: --optimizer.lr: name the class first"),
        (["fit", "--model.loss"], "error: --model.loss: needs a value"),
        (["fitt"], "error: unknown subcommand 'fitt': did you mean fit?"),
        (["fit", "stress"], "error: unexpected argument 'stress'"),
        (["fit", "-x"], "error: -x: unknown option"),
    ],
    ids=[
        "dims-own",
        "type",
        "data-type",
        "optimizer-setting",
        "optimizer-class",
        "optimizer-unnamed",
        "no-value",
        "subcommand",
        "positional",
        "short",
    ],
)
def test_other_refused_options_are_one_line(capsys, args, expected):
    assert expected in refused_option(capsys, args)


def test_an_unknown_key_in_a_config_file_is_named(tmp_path, capsys):
    config = tmp_path / "my.yaml"
    config.write_text("model:\n  los: stress\n", encoding="utf-8")
    line = refused_option(capsys, ["fit", "--config", str(config)])
    assert line == "error: model.los (in a config file): unknown option; did you mean model.loss?"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model.los", "stress"], "error: --model.los: unknown option; did you mean --model.loss?"),
        (["--data.pth", "x"], "error: --data.pth: unknown option; did you mean --data.path?"),
    ],
    ids=["los", "pth"],
)
def test_python_dash_m_unknown_option_is_one_line(tmp_path, args, expected):
    done = subprocess.run([sys.executable, "-m", "citymap_lightning", "fit", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [expected] and done.stdout == ""
    assert not list(tmp_path.iterdir())


# ---- loss auto, and refusals that need no data --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "transform", "resolved"),
    [("auto", "ratio", "course"), ("auto", "interval", "stress"), ("auto", "ordinal", "stress"),
     ("weighted_stress", "interval", "weighted_stress"), ("course", "ratio", "course")],
)  # fmt: skip
def test_loss_auto_resolves_by_the_transform(loss, transform, resolved):
    assert losses.resolve_loss(loss, transform) == resolved
    model = CityMap(num_places=5, loss=loss, transform=transform)
    assert model.hparams.loss == resolved  # what the fit, checkpoints and predict use
    assert model.start == ("random" if resolved == "course" else "classical")  # the course's path is unchanged


def test_loss_auto_says_which_it_picked(caplog):
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        CityMap(num_places=5, transform="interval")
        CityMap(num_places=5)
        CityMap(num_places=5, loss="stress")
    picked = [r.getMessage() for r in caplog.records if "model.loss auto" in r.getMessage()]
    assert picked == [
        "model.loss auto: stress (Kruskal's raw stress, for the interval transform)",
        "model.loss auto: course (the course's objective on squared distances, for the ratio transform)",
    ]


def test_interval_with_the_default_loss_fits(tmp_path, caplog):
    """The README suggests interval for travel times: with the default loss it fits (raw stress), once refused."""
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        main(["fit", "--model.transform", "interval", "--trainer.max_epochs", "20", "--data.gazetteer", "false",
              "--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip
    assert "model.loss auto: stress (Kruskal's raw stress, for the interval transform)" in caplog.text
    (log_dir,) = [p.parent for p in tmp_path.rglob("config.yaml")]
    assert event_tags(log_dir).Scalars("hp/stress1")[-1].value < 0.01  # europe36's great-circle km: a = 0, b = 1
    checkpoint = torch.load(log_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["loss"] == "stress"  # resolved: what predict takes from it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.transform", "interval", "--model.loss", "course"], "the course objective compares squared"),
        (["--model.loss", "sammonn"], "unknown loss 'sammonn'"),
        (["--model.geometry", "sphere", "--model.dim", "2"], "geometry 'sphere' places points by 3-D vectors"),
        (["--model.bootstrap", "1"], "bootstrap is 1"),
        (["--trainer.max_epochs", "0"], "trainer.max_epochs is 0"),
        (["--trainer.check_val_every_n_epoch", "0"], "check_val_every_n_epoch must be at least 1"),
    ],
    ids=["course-interval", "loss", "sphere-dim", "bootstrap", "epochs", "val-every"],
)
def test_a_refusal_that_needs_no_data_comes_before_reading_it(tmp_path, capsys, args, message):
    """The data file is unreadable: were it read first, its own error would be the one printed."""
    bad = tmp_path / "bad.csv"
    bad.write_text("no,header,known\n1,2,3\n", encoding="utf-8")
    line = refused_option(capsys, ["fit", "--data.path", str(bad), *args, "--trainer.default_root_dir", str(tmp_path)])
    assert message in line and "unrecognised header" not in line


def test_dims_settings_are_refused_before_reading(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("no,header,known\n1,2,3\n", encoding="utf-8")
    line = refused_option(capsys, ["dims", "--data.path", str(bad), "--model.geometry", "sphere"])
    assert "dims fits flat maps" in line
    line = refused_option(capsys, ["dims", "--data.path", str(bad), "--max_dim", "0"])
    assert "max_dim (0) and replicates (5) must be at least 1" in line
