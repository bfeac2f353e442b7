"""Options never guess: no abbreviations, and every refused option is one line naming it, with the closest known one."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch
from conftest import event_tags

from citymap_lightning import CityMap, DistanceDataModule, losses
from citymap_lightning.cli import main
from citymap_lightning.errors import ConfigError

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


# ---- refused before torch is imported ------------------------------------------------------------------------------


def run_module(tmp_path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -X importtime -m citymap_lightning ARGS`` in ``tmp_path``; stderr holds the modules it imported."""
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "citymap_lightning", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip


def imported(stderr: str) -> set[str]:
    """The top-level packages a ``-X importtime`` run imported."""
    return {
        line.split("|")[-1].strip().split(".")[0] for line in stderr.splitlines() if line.startswith("import time:")
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["fit", "--model.los", "stress"], "error: --model.los: unknown option; did you mean --model.loss?"),
        (["fit", "--model.loss=weighted-stress"], "error: --model.loss: unknown loss 'weighted-stress': did you mean "
                                                  "weighted_stress? expected one of auto, course, stress, "
                                                  "weighted_stress, sammon"),
        (["fit", "--model.geometry", "Sphere"], "error: --model.geometry: unknown geometry 'Sphere': did you mean "
                                                "sphere?"),
        (["fit", "--data.format", "csv"], "error: --data.format: unknown format 'csv'"),
        (["fit", "--data.positions", "missing.csv"], "error: missing.csv: positions file not found"),
        (["fit", "--data.init_args.path=missing.csv"], "error: missing.csv: data file not found"),
        (["predict", "--ckpt_path", "missing.ckpt"], "error: missing.ckpt: checkpoint not found"),
        (["dims", "--max_dims", "3"], "error: --max_dims: unknown option; did you mean --max_dim?"),
        (["fitt", "--model.loss", "stress"], "error: unknown subcommand 'fitt': did you mean fit?"),
    ],
    ids=["name", "value", "value-case", "format", "positions", "data-path", "checkpoint", "dims", "subcommand"],
)  # fmt: skip
def test_a_typo_is_refused_before_torch_is_imported(tmp_path, args, expected):
    done = run_module(tmp_path, *args)
    lines = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert done.returncode == 2 and done.stdout == ""
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert not imported(done.stderr) & {"torch", "lightning", "numpy", "jsonargparse"}
    assert not list(tmp_path.iterdir())


def test_importing_the_package_imports_neither_torch_nor_lightning(tmp_path):
    code = (
        "import logging, sys; import citymap_lightning; "
        "assert not {'torch', 'lightning', 'numpy'} & set(sys.modules), sorted(sys.modules); "
        "logging.basicConfig(format='%(message)s'); logging.getLogger('citymap_lightning').warning('shown'); "
        "print(citymap_lightning.CityMap.__name__, 'torch' in sys.modules)"
    )
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "SLURM_PROCID")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["CityMap", "True"] and done.stderr.strip() == "shown"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**env, "LOCAL_RANK": "1"})  # fmt: skip
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr  # rank 1 says nothing, as under DDP


def test_the_option_manifest_is_the_parsers(tmp_path):
    """options.py checks the command line against a manifest written from the real parser: it must be that parser's."""
    from citymap_lightning.cli import option_manifest
    from citymap_lightning.option_manifest import MANIFEST

    assert option_manifest() == MANIFEST, "out of date: run python scripts/make_option_manifest.py"


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "--optimizer", "Adam", "--optimizer.lr", "0.1", "--optimizer.init_args.betas", "[0.9, 0.99]"],
        ["fit", "--trainer.logger.init_args.save_dir", "x", "--trainer.callbacks+=EarlyStopping"],
        ["fit", "--trainer.devices+", "1", "--seed_everything", "-1", "--model.anneal_eps", "-.5"],
        ["fit", "--data", "my.package.OtherData", "--data.init_args.foo", "1", "--data.format", "csv"],
        ["fit", "--data.class_path=my.package.OtherData", "--data.foo", "1"],
        ["fit", "--data", "DistanceDataModule", "--data.gazetteer", "false", "--model.loss", "weighted_stress"],
        ["fit", "--model.los", "stress", "--help"],
        ["fit", "--print_config", "--trainer.max_time.hours", "1", "--model.num_places", "3", "--", "--x"],
        ["compare", "a", "b", "--out", "c"],
        ["--print_config", "fitt"],
        [],
    ],
)
def test_what_only_the_parser_can_judge_is_left_to_it(args):
    """The early check refuses nothing the parser would take (it may leave it refusals, never make wrong ones)."""
    from citymap_lightning.options import check_early

    check_early(args)


def test_a_data_module_named_in_a_config_file_leaves_its_options_to_the_parser(tmp_path):
    from citymap_lightning.options import check_early

    config = tmp_path / "c.yaml"
    config.write_text("data:\n  class_path: my.package.OtherData\n", encoding="utf-8")
    check_early(["fit", "--config", str(config), "--data.foo", "1"])
    config.write_text("trainer:\n  max_epochs: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="--data.foo: unknown option"):
        check_early(["fit", "--config", str(config), "--data.foo", "1"])


def test_a_config_files_unknown_choice_gets_the_closest(tmp_path, capsys):
    config = tmp_path / "my.yaml"
    config.write_text("model:\n  loss: Weighted-Stress\n", encoding="utf-8")
    line = refused_option(capsys, ["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path)])
    assert line.startswith("error: model.loss: unknown loss 'Weighted-Stress': did you mean weighted_stress?"), line


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


def test_loss_auto_says_which_it_picked_at_set_up(caplog):
    """Resolved where the solver is known: once, when the problem is built."""
    dm = DistanceDataModule()
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        for options in ({"transform": "interval"}, {}, {"loss": "stress"}):
            model = CityMap(num_places=dm.num_places, **options)
            model.prepare(dm.table, dm.solver)
            model.prepare(dm.table, dm.solver)
    picked = [r.getMessage() for r in caplog.records if "model.loss auto" in r.getMessage()]
    assert picked == [
        "model.loss auto: stress (Kruskal's raw stress, for the interval transform)",
        "model.loss auto: course (the course's objective on squared distances, for the ratio transform)",
    ]


def test_loss_auto_is_raw_stress_where_pair_batches_fit(caplog):
    """Pair batches (inputs too large to fit whole) take stress-type losses only: auto picks raw stress, no refusal."""
    dm = DistanceDataModule(full_batch_limit=0)
    model = CityMap(num_places=dm.num_places)
    with caplog.at_level(logging.INFO, logger="citymap_lightning"):
        problem = model.prepare(dm.table, dm.solver)
    assert model.hparams.loss == "stress" and problem.loss.name == "stress"
    assert model.start == "classical"
    assert "model.loss auto: stress (Kruskal's raw stress: pair batches of up to" in caplog.text


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
