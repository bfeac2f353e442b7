"""The command line, in-process through main([...]) and as `python -m citymap_lightning`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import QUIET, ROOT, assert_course_orientation, event_tags, map_stress1, read_coordinates, run_dir

from citymap_lightning.cli import main
from citymap_lightning.readers import load_table


def test_fit_in_process_writes_everything_under_root_and_prints_paths(tmp_path, capsys):
    main(["fit", "--trainer.default_root_dir", str(tmp_path), *QUIET])
    out = capsys.readouterr().out.strip().splitlines()
    log_dir = run_dir(tmp_path)
    printed = [Path(line.strip()) for line in out[out.index(next(x for x in out if x.startswith("Outputs in"))) + 1 :]]
    assert all(p.is_absolute() and p.exists() for p in printed)
    names = {p.name for p in printed}
    assert {"map.png", "coordinates.csv", "config.yaml", "last.ckpt"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    for p in printed:
        assert tmp_path in p.parents
    table = load_table(ROOT / "data" / "europe36.csv")
    assert map_stress1(log_dir / "coordinates.csv", table) <= 0.0023
    assert_course_orientation(read_coordinates(log_dir / "coordinates.csv"))
    config = yaml.safe_load((log_dir / "config.yaml").read_text())
    assert config["seed_everything"] == 0 and config["model"]["loss"] == "auto"


def test_default_root_dir_wins_over_a_configured_logger(tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "trainer:\n  max_epochs: 5\n  logger:\n    class_path: lightning.pytorch.loggers.TensorBoardLogger\n"
        "    init_args:\n      save_dir: elsewhere\n      name: mine\n"
    )
    root = tmp_path / "root"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        main(["fit", "--config", str(config), "--trainer.default_root_dir", str(root), *QUIET])
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "elsewhere").exists()
    assert (root / "elsewhere" / "mine" / "version_0" / "map.png").exists()
    assert list((root / "elsewhere" / "mine" / "version_0" / "checkpoints").glob("*.ckpt"))


def test_optimizer_from_the_command_line_replaces_the_default(tmp_path):
    main(
        [
            "fit", "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "400",
            "--optimizer", "Adam", "--optimizer.lr", "0.1", *QUIET,
        ]
    )  # fmt: skip
    log_dir = run_dir(tmp_path)
    config = yaml.safe_load((log_dir / "config.yaml").read_text())
    assert config["optimizer"]["class_path"] == "torch.optim.Adam"
    acc = event_tags(log_dir)
    assert acc.Scalars("hp/stress1")[-1].value <= 0.0023
    assert acc.Scalars("train/lr")[-1].value == pytest.approx(0.1)


def test_validate_and_print_config(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["loss"] == "auto" and printed["trainer"]["max_epochs"] == 60
    main(["validate", "--trainer.default_root_dir", str(tmp_path), *QUIET])
    assert "val/stress1" in capsys.readouterr().out


def test_bad_setting_is_one_line_and_nonzero(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model.loss", "nonsense", "--trainer.default_root_dir", str(tmp_path), *QUIET])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --model.loss: unknown loss 'nonsense'") and "Traceback" not in err
    assert not list(tmp_path.rglob("map.png"))


@pytest.mark.slow
def test_python_dash_m_help():
    result = subprocess.run([sys.executable, "-m", "citymap_lightning", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "fit" in result.stdout and "predict" in result.stdout


@pytest.mark.slow
def test_python_dash_m_fit_with_no_arguments(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "citymap_lightning", "fit"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    last = [line.strip() for line in result.stdout.strip().splitlines()[-8:]]
    written = [Path(p) for p in last if p.startswith("/")]
    assert any(p.name == "map.png" for p in written) and all(p.exists() for p in written)
    assert (tmp_path / "lightning_logs" / "version_0" / "map.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_a_signal_writes_the_map_of_where_the_fit_got(tmp_path, signum, status):
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "citymap_lightning", "fit", "--config", str(ROOT / "configs" / "sgd.yaml"),
            "--trainer.max_epochs", "1000000", "--trainer.default_root_dir", str(tmp_path), *QUIET,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell's background job starts with SIGINT ignored, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.time() + 120
    while not list(tmp_path.rglob("events.out.tfevents*")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()  # no runaway fit when the test fails
    assert proc.returncode == status
    assert "Traceback" not in err
    assert f"interrupted by {signal.Signals(signum).name}" in err
    log_dir = run_dir(tmp_path)
    assert (log_dir / "map.png").exists() and (log_dir / "coordinates.csv").exists()
    assert f"wrote {log_dir / 'map.png'}" in out
    assert (log_dir / "checkpoints" / "last.ckpt").exists()
    # one plain line with the whole path, not Lightning's "An SIGTERMException was raised with message: , ..."
    assert "was raised with message" not in out + err
    assert f"checkpoint of the interrupted fit: {(log_dir / 'checkpoints' / 'last.ckpt').resolve()}" in out


HELD_BEFORE_THE_FIT = """
import signal, sys
from citymap_lightning import cli

def before_fit(self, original=cli.CityMapCLI.before_fit):
    print("held before the fit", flush=True)
    signal.pause()  # until the test's signal: the data is read, the trainer built, nothing fitted yet
    original(self)

cli.CityMapCLI.before_fit = before_fit
cli.main(sys.argv[1:])
"""


@pytest.mark.slow
def test_sigterm_before_the_fit_writes_nothing(tmp_path):
    """SIGTERM sent when the program says it is about to fit (whatever the machine's speed): status 143, no files."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HELD_BEFORE_THE_FIT, "fit", "--trainer.default_root_dir", str(tmp_path), *QUIET],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    watchdog = threading.Timer(300, proc.kill)  # no hung test when the marker never comes
    watchdog.start()
    try:
        for line in proc.stdout:
            if line.strip() == "held before the fit":
                proc.send_signal(signal.SIGTERM)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        watchdog.cancel()
        proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err and "interrupted by SIGTERM" in err
    assert not list(tmp_path.rglob("coordinates.csv")) and not list(tmp_path.rglob("*.ckpt"))
    assert not list(tmp_path.rglob("map.png")) and "wrote" not in out
