"""Hostile inputs, options and files: each ends in one plain line, exit status 2, no traceback, no result files.

The files are made here, in the test. Options run the whole CLI; a bad file is given to the function that
refuses it (the reader, the path check, the checkpoint check), and one case of each such kind runs the CLI
too, for its promise of one line, status 2 and no results.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EUROPE, QUIET, ROOT, read_coordinates, refusal, refused, write

from citymap_lightning import output
from citymap_lightning.cli import check_arguments, check_checkpoint, main
from citymap_lightning.readers import load_table

TABLE = load_table(EUROPE)


def npy_with_names(tmp_path, d: np.ndarray, name: str = "d.npy") -> list[str]:
    np.save(tmp_path / name, d)
    (tmp_path / "names.txt").write_text("\n".join(TABLE.names) + "\n", encoding="utf-8")
    return ["--data.path", str(tmp_path / name), "--data.names", str(tmp_path / "names.txt")]


# ---- paths that are not regular files, or too large ------------------------------------------------------------


def test_names_from_a_device_is_refused_at_once(tmp_path):
    args = npy_with_names(tmp_path, TABLE.matrix())
    args[-1] = "/dev/zero"
    refusal(lambda: check_arguments(["fit", *args]), "/dev/zero: is not a regular file")


def test_a_fifo_as_data_does_not_hang(tmp_path, capsys):
    """The CLI's path for a file option that names no regular file: refused before anything opens it."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    refused(tmp_path, capsys, ["--data.path", str(fifo)], "is not a regular file")


def test_a_folder_as_names(tmp_path):
    args = npy_with_names(tmp_path, TABLE.matrix())
    args[-1] = str(tmp_path)
    refusal(lambda: check_arguments(["fit", *args]), "is a folder, not a names file")


def test_a_config_from_a_device():
    refusal(lambda: check_arguments(["fit", "--config", "/dev/zero"]), "/dev/zero: is not a regular file")


def test_the_size_ceiling_names_its_override(monkeypatch):
    monkeypatch.setenv("CITYMAP_MAX_FILE_MB", "0.0001")
    refusal(lambda: load_table(EUROPE), "above the 9.92e-05 MB ceiling; set CITYMAP_MAX_FILE_MB")


# ---- .npy files that are not what they claim ---------------------------------------------------------------------


def test_an_npz_named_npy(tmp_path):
    np.savez(tmp_path / "d.npz", d=TABLE.matrix())
    os.replace(tmp_path / "d.npz", tmp_path / "d.npy")
    refusal(lambda: load_table(tmp_path / "d.npy"), "not a NumPy .npy array")


def test_an_npy_header_claiming_a_huge_shape(tmp_path):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000, 100000000), }"
    header += " " * (118 - len(header)) + "\n"
    (tmp_path / "huge.npy").write_bytes(
        b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 64
    )
    refusal(lambda: load_table(tmp_path / "huge.npy"), "shorter than the 100000000 x 100000000")


def test_complex_npy(tmp_path):
    d = TABLE.matrix().astype(complex)
    d[0, 1] += 1j
    npy_with_names(tmp_path, d)
    refusal(lambda: load_table(tmp_path / "d.npy", names=tmp_path / "names.txt"), "complex numbers with non-zero")
    np.save(tmp_path / "real.npy", TABLE.matrix().astype(complex))
    assert np.allclose(load_table(tmp_path / "real.npy").matrix(), TABLE.matrix())


def test_object_npy_is_never_unpickled(tmp_path):
    np.save(tmp_path / "o.npy", np.array([[0, "a"], ["a", 0]], dtype=object), allow_pickle=True)
    refusal(lambda: load_table(tmp_path / "o.npy"), "holds object, not numbers")


# ---- values taken silently before --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,latitude,longitude,latitude\nA,1,2,3\nB,2,3,4\nC,3,1,2\n", "2 columns for 'latitude'"),
        ("source,target,distance,weight\nA,B,1,nan\nB,C,1,1\nA,C,1,1\n", "weight 'nan' is not a number"),
        ("source,target,distance,weight\nA,B,1,0\nB,C,1,0\nA,C,1,0\n", "no pair has a known distance"),
        ("source,target,distance\nA,B,\nB,C,\nA,C,\n", "no pair has a known distance"),
        ("source,target,distance\nA,B,4_5\nB,C,1\nA,C,1\n", "'4_5' is not a number"),
    ],
    ids=["duplicate-latitude", "nan-weight", "zero-weights", "empty-distances", "underscore"],
)
def test_values_refused_instead_of_read_silently(tmp_path, text, message):
    path = write(tmp_path / "in.csv", text)
    refusal(lambda: load_table(path), message)


def test_the_zero_distance_warning_counts_every_pair(tmp_path, caplog):
    rows = [f"P{k},10,10" for k in range(50)] + ["Q,12,10", "R,10,13"]
    load_table(write(tmp_path / "same.csv", "name,latitude,longitude\n" + "\n".join(rows) + "\n"))
    assert "1225 pairs in all are at distance 0" in caplog.text


# ---- options -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed_everything", "-5"], "seed_everything: -5 is not in bounds"),
        (["--optimizer", "Adam", "--optimizer.lr", "-1"], "optimizer: Invalid learning rate: -1.0"),
        (["--trainer.max_epochs", "0"], "trainer.max_epochs is 0"),
        (["--trainer.max_epochs", "abc"], "--trainer.max_epochs: expected int, got 'abc'"),
        (["--map.gif_frames", "0"], "map.gif_frames is 0: it must be at least 2"),
        (["--data.full_batch_limit", "-1"], "data.full_batch_limit is -1"),
        (["--model.start", "mercator", "--data.path", "NPY"], "start 'mercator' needs latitude/longitude"),
        (["--model.radius", "-3", "--model.geometry", "sphere"], "radius must be positive"),
        (["--no-such-option", "1"], "--no-such-option: unknown option"),
    ],
    ids=["seed", "lr", "epochs-0", "epochs-text", "gif-frames", "limit", "mercator", "radius", "unknown"],
)
def test_options_refused_in_one_line(tmp_path, capsys, args, message):
    if "NPY" in args:
        args = [a for a in args if a not in ("--data.path", "NPY")] + npy_with_names(tmp_path, TABLE.matrix())
    refused(tmp_path, capsys, args, message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_asked_for_on_a_machine_without_one(tmp_path, capsys):
    refused(tmp_path, capsys, ["--trainer.accelerator", "gpu"], "trainer: ")


@pytest.mark.slow
def test_a_one_dimensional_ordering(tmp_path):
    main(["fit", "--model.dim", "1", "--trainer.default_root_dir", str(tmp_path), *QUIET])
    (coordinates,) = list(tmp_path.rglob("coordinates.csv"))
    assert coordinates.read_text(encoding="utf-8").splitlines()[0] == "name,x"
    x = read_coordinates(coordinates)
    # Europe laid on a line: Lisbon and Moscow, far apart, end far apart
    assert abs(x["Lisbon"][0] - x["Moscow"][0]) > 2000
    assert (coordinates.parent / "map.png").exists()


# ---- checkpoints -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("fitted")
    main(["fit", "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(root), *QUIET])
    (last,) = list(root.rglob("last.ckpt"))
    return last


def damaged(tmp_path, kind: str, checkpoint) -> str:
    path = tmp_path / f"{kind}.ckpt"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "truncated":
        path.write_bytes(checkpoint.read_bytes()[:2000])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    elif kind == "pickle":  # a pickle that would run code if unpickled without weights_only
        import pickle

        path.write_bytes(pickle.dumps(os.system))
    return str(path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("random", "not a checkpoint of this program"),
        ("truncated", "not a checkpoint of this program"),
        ("empty", "the checkpoint is empty"),
        ("folder", "is a folder, not a checkpoint"),
        ("missing", "checkpoint not found"),
        ("pickle", "not a checkpoint of this program"),
    ],
)
def test_checkpoints_that_are_not_checkpoints(tmp_path, checkpoint, kind, message):
    path = damaged(tmp_path, kind, checkpoint)
    line = refusal(lambda: check_checkpoint(Path(path)), message)
    assert "weights_only=False" not in line


def test_a_hostile_checkpoint_through_the_cli(tmp_path, capsys, checkpoint):
    """A checkpoint's way out of the CLI: refused, weights-only, before any hook runs; one line, status 2."""
    refused(tmp_path, capsys, ["--ckpt_path", damaged(tmp_path, "pickle", checkpoint)], "not a checkpoint of this",
            subcommand="predict")  # fmt: skip


def test_predict_needs_a_checkpoint(tmp_path, capsys):
    refused(tmp_path, capsys, [], "predict needs --ckpt_path", subcommand="predict")


def test_a_resume_under_another_optimiser_leaves_the_last_checkpoint_alone(tmp_path, capsys):
    root = tmp_path / "run"
    main(["fit", "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(root), *QUIET])
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(ROOT / "configs" / "adam.yaml"), "--ckpt_path", "last",
              "--trainer.default_root_dir", str(root), *QUIET])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "made with another optimiser than Adam" in err[0], err
    # nothing new, nothing changed: the earlier run's last.ckpt is still the newest
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_checkpoint_of_other_places(tmp_path, capsys, checkpoint):
    """Resuming a fit from a checkpoint of other places is refused (predict would put them on its map as new places)."""
    text = "name,latitude,longitude\nA,1,2\nB,2,3\nC,3,1\n"
    args = ["--data.path", str(write(tmp_path / "abc.csv", text)), "--ckpt_path", str(checkpoint)]
    refused(tmp_path, capsys, args, "was it made from other data?", subcommand="fit")


# ---- resources ---------------------------------------------------------------------------------------------------


def test_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    def full(path, *args, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(output, "atomic_write", full)
    refused(tmp_path, capsys, ["--trainer.max_epochs", "2"], "the disk is full")


def test_running_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    from citymap_lightning.solvers import full

    def huge(*args, **kwargs):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000)")

    monkeypatch.setattr(full.FullBatch, "__init__", huge)
    refused(tmp_path, capsys, [], "out of memory: reduce the number of places")


# ---- scale and names ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("factor", [1e-30, 1e-20, 1e20, 1e30, 1e140])
def test_the_unit_does_not_matter(tmp_path, factor):
    main(["fit", *npy_with_names(tmp_path, TABLE.matrix() * factor), "--trainer.default_root_dir", str(tmp_path / "r"),
          *QUIET])  # fmt: skip
    coords = read_coordinates(next((tmp_path / "r").rglob("coordinates.csv")))
    x = np.stack([coords[name] for name in TABLE.names]) / factor
    i, j = np.triu_indices(36, 1)
    d = TABLE.matrix()[i, j]
    stress1 = np.sqrt(((np.linalg.norm(x[i] - x[j], axis=1) - d) ** 2).sum() / (d**2).sum())
    assert stress1 == pytest.approx(0.002167, abs=2e-5)  # the course's optimum, in any unit


def test_names_are_data_not_markup(tmp_path):
    names = ["$x^2$", "Line\nbreak", "Tab\there", "Bell\x07", r"$\frac{a}{b}$", "Plain"]
    rows = [f'"{name}",{40 + k},{k * 3}' for k, name in enumerate(names)]
    path = write(tmp_path / "odd.csv", "name,latitude,longitude\n" + "\n".join(rows) + "\n")
    main(["fit", "--data.path", str(path), "--trainer.max_epochs", "5", "--trainer.default_root_dir",
          str(tmp_path / "r"), *QUIET])  # fmt: skip
    coordinates = next((tmp_path / "r").rglob("coordinates.csv"))
    assert list(read_coordinates(coordinates)) == names  # given back unchanged
    (metadata,) = list((tmp_path / "r").rglob("metadata.tsv"))
    lines = metadata.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(names) and "Line\\nbreak" in lines and "Tab\\there" in lines
    assert (coordinates.parent / "map.png").exists()


# ---- found by an adversarial tester beyond the examples ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.dim", "40"], "model.dim is 40, but 36 places fit exactly in 35 dimensions"),
        (["--trainer.check_val_every_n_epoch", "0"], "check_val_every_n_epoch must be at least 1"),
        (["--optimizer", "SGD", "--optimizer.lr", "0"], "optimizer.lr is 0"),
    ],
    ids=["dim-above-places", "val-every-0", "lr-0"],
)
def test_more_options_refused(tmp_path, capsys, args, message):
    refused(tmp_path, capsys, args, message)


def test_file_options_that_cannot_name_the_file():
    refusal(lambda: check_arguments(["fit", "--data.path", ""]), "--data.path is empty")
    refusal(lambda: load_table(EUROPE, names=ROOT / "README.md"), "a names file goes with a .npy matrix")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (";A;B;C\nA;0;2.164;1,5\nB;2.164;0;3\nC;1,5;3;0\n", "has a '.' in a file whose numbers"),
        ("name,latitude,longitude\nZurich,47,4,8,5\nGeneva,46,2,6,1\nBasel,47,6,7,6\n", "would shift the columns"),
        ("source,target,distance\nA,B,1e308\nB,C,1e308\nA,C,1.5e308\n", "beyond 1e-150 to 1e150"),
    ],
    ids=["thousands-dots", "extra-cells", "near-1e308"],
)
def test_more_values_refused(tmp_path, text, message):
    path = write(tmp_path / "in.csv", text)
    refusal(lambda: load_table(path), message)


def test_a_line_break_in_a_name_still_makes_one_line(tmp_path, capsys):
    """A data error's way out of the CLI when the message quotes a name that holds a line break."""
    path = write(tmp_path / "in.csv", 'name,latitude,longitude\n"Line1\nLine2",x,1\nB,2,2\nC,3,3\n')
    refused(tmp_path, capsys, ["--data.path", str(path)], "latitude: 'x' is not a number")


def test_a_config_that_is_not_utf8(tmp_path):
    (tmp_path / "c.yaml").write_bytes("trainer:\n  max_epochs: 5\n".encode("utf-16"))
    refusal(lambda: check_arguments(["fit", "--config", str(tmp_path / "c.yaml")]), "the config file is not UTF-8")


def test_the_ceiling_can_be_lifted_and_must_be_a_size(monkeypatch):
    monkeypatch.setenv("CITYMAP_MAX_FILE_MB", "nan")
    refusal(lambda: load_table(EUROPE), "expected a positive number of megabytes")
    monkeypatch.setenv("CITYMAP_MAX_FILE_MB", "inf")
    assert load_table(EUROPE).n == 36


def test_an_output_folder_that_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path / "afile"), *QUIET])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "cannot write here" in err[0], err


def test_a_form_feed_inside_a_name_does_not_end_the_row(tmp_path):
    table = load_table(write(tmp_path / "ff.csv", "name,latitude,longitude\nAth\x0cens,38,23.7\nB,40,20\nC,42,25\n"))
    assert table.names[0] == "Ath\x0cens"


def test_a_diverging_fit_leaves_no_checkpoint_to_resume(tmp_path, capsys):
    refused(tmp_path, capsys, ["--optimizer", "Adam", "--optimizer.lr", "1e20", "--trainer.max_epochs", "3"],
            "the fit diverged")  # fmt: skip
    assert not list(tmp_path.rglob("*.ckpt"))
