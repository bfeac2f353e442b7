"""What a user sees: TensorBoard diagnostics, figures, labels, starts, the animation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import QUIET, ROOT, assert_course_orientation, event_tags, read_coordinates, run_dir

from citymap_lightning import render
from citymap_lightning.cli import main


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("default")
    main(["fit", "--trainer.default_root_dir", str(root), "--map.gif", "true", *QUIET])
    return run_dir(root)


def test_diagnostics_in_tensorboard(default_run):
    acc = event_tags(default_run)
    tags = acc.Tags()
    assert {"map", "shepard", "city_error"} <= set(tags["images"])
    assert "diagnostics/city_stress" in tags["histograms"]
    mean_km = acc.Scalars("diagnostics/position_error_mean_km")
    max_km = acc.Scalars("diagnostics/position_error_max_km")
    assert len(mean_km) >= 10
    # a flat map of Europe is off by tens of km on average from the projected truth, not hundreds
    assert mean_km[-1].value < 60 and max_km[-1].value < 200 and mean_km[-1].value < mean_km[0].value
    city_stress = acc.Histograms("diagnostics/city_stress")[-1].histogram_value
    assert city_stress.num == 36 and city_stress.sum == pytest.approx(1.0, rel=1e-4)
    worst = acc.Tensors("diagnostics/worst_cities/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert "Reykjavik" in worst  # the map's least flat corner


def test_diagnostic_files_and_projector(default_run):
    for name in ("map.png", "shepard.png", "city_error.png", "coordinates.csv"):
        assert (default_run / name).read_bytes()[:4] in (b"\x89PNG", b"name"), name
    config = (default_run / "projector_config.pbtxt").read_text()
    assert 'tensor_name: "coordinates' in config and "metadata.tsv" in config
    (metadata,) = default_run.rglob("metadata.tsv")
    assert metadata.read_text(encoding="utf-8").split("\n")[:2] == ["Amsterdam", "Athens"]


def test_gif_is_small_and_animated(default_run):
    from PIL import Image

    gif = default_run / "fit.gif"
    assert 10_000 < gif.stat().st_size < 10_000_000
    epochs = int(event_tags(default_run).Scalars("hp/epochs")[-1].value)
    with Image.open(gif) as image:  # the start and every epoch (the default records up to 200 positions)
        assert image.n_frames == epochs + 1 >= 10


def test_labels_do_not_overlap_or_cover_cities(default_run):
    coords = read_coordinates(default_run / "coordinates.csv")
    names, xy = list(coords), np.stack(list(coords.values()))
    fig = render.draw_map(xy, names)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text()]
    assert [t.get_text() for t in texts] == names
    boxes = [t.get_window_extent(renderer) for t in texts]
    points = ax.transData.transform(xy)
    for i, box in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            assert not box.overlaps(boxes[j]), (names[i], names[j])
        for k, point in enumerate(points):
            if k != i:
                assert not box.contains(*point), (names[i], "covers", names[k])


@pytest.mark.parametrize("start", ["mercator", "lambert", "classical"])
def test_starts(tmp_path, start):
    main(["fit", "--model.start", start, "--trainer.max_epochs", "20", "--trainer.default_root_dir", str(tmp_path),
          *QUIET])  # fmt: skip
    log_dir = run_dir(tmp_path)
    acc = event_tags(log_dir)
    stress = [e.value for e in acc.Scalars("train/stress1")]
    assert stress[0] < 0.05  # starts near the answer, unlike the random start
    assert stress[-1] <= 0.0023
    assert_course_orientation(read_coordinates(log_dir / "coordinates.csv"))


def test_projection_start_needs_latitude_longitude(tmp_path, capsys):
    npy = tmp_path / "d.npy"
    np.save(npy, np.array([[0, 3, 4], [3, 0, 5], [4, 5, 0]], dtype=float))
    with pytest.raises(SystemExit):
        main(["fit", "--data.path", str(npy), "--model.start", "mercator", "--trainer.default_root_dir",
              str(tmp_path), *QUIET])  # fmt: skip
    assert "start 'mercator' needs latitude/longitude" in capsys.readouterr().err


def test_weighted_stress_loss(tmp_path):
    main(["fit", "--model.loss", "weighted_stress", "--model.start", "classical", "--trainer.max_epochs", "20",
          "--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip
    acc = event_tags(run_dir(tmp_path))
    assert acc.Scalars("hp/stress1")[-1].value < 0.004


def test_restarts_with_lbfgs_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--model.restarts", "3", "--config", str(ROOT / "configs" / "lbfgs.yaml"),
              "--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip
    assert "needs a first-order optimiser" in capsys.readouterr().err


def test_diagnostics_every_n_epochs(tmp_path):
    main(["fit", "--trainer.max_epochs", "20", "--map.diagnostics_every_n_epochs", "5", "--model.tol", "0",
          "--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip
    acc = event_tags(run_dir(tmp_path))
    assert len(acc.Images("shepard")) == 5  # at epochs 5, 10, 15, 20 and at the end
