"""The Lightning glue: the module, data module and map renderer under a plain Trainer."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from conftest import (
    assert_course_orientation,
    europe,
    event_tags,
    geojson_latlon,
    map_stress1,
    map_tolerance,
    read_coordinates,
    stress1,
)
from lightning.pytorch.loggers import TensorBoardLogger

from citymap_lightning import CityMap, DistanceDataModule, MapRenderer
from citymap_lightning import geometry as geo

COURSE_OPTIMUM = 0.002167  # stress-1 of the course objective's optimum on the 36 cities (any solver, any seed)


def fit(tmp_path: Path, max_epochs: int = 40, seed: int = 0, dm=None, **model_kwargs) -> tuple:
    pl.seed_everything(seed)
    dm = dm or DistanceDataModule()
    model = CityMap(num_places=dm.num_places, **model_kwargs)
    renderer = MapRenderer()
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        default_root_dir=tmp_path,
        logger=TensorBoardLogger(tmp_path, default_hp_metric=False),
        callbacks=[renderer],
        enable_progress_bar=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(model, dm)
    return trainer, model, renderer


def test_fast_dev_run_writes_no_map(tmp_path):
    dm = DistanceDataModule()
    model = CityMap(num_places=dm.num_places)
    trainer = pl.Trainer(
        fast_dev_run=1, default_root_dir=tmp_path, enable_progress_bar=False, callbacks=[MapRenderer()]
    )
    trainer.fit(model, dm)
    assert trainer.global_step == 1
    assert not list(tmp_path.rglob("map.png"))


def test_default_fit_reaches_the_optimum_and_writes_the_map(tmp_path):
    trainer, model, renderer = fit(tmp_path)
    log_dir = Path(trainer.log_dir)
    best = model.best_restart()
    assert float(model.stress1[best]) <= 0.0023
    coords = read_coordinates(log_dir / "coordinates.csv")
    assert list(coords) == DistanceDataModule().names
    assert_course_orientation(coords)
    positions = np.stack(list(coords.values()))
    assert np.abs(positions.mean(axis=0)).max() < map_tolerance(positions, relative=1e-8)  # 10 digits written
    # results come back in km: Paris - Berlin is about 878 km on the ground
    assert np.linalg.norm(coords["Paris"] - coords["Berlin"]) == pytest.approx(878, rel=0.02)
    png = log_dir / "map.png"
    assert png.stat().st_size > 20_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(renderer.history) >= 2


def test_event_file_has_scalars_image_and_hparams(tmp_path):
    trainer, model, _ = fit(tmp_path, max_epochs=30)
    acc = event_tags(Path(trainer.log_dir))
    tags = acc.Tags()
    for tag in ("train/loss", "train/stress1", "train/lr", "hp/stress1", "hp/wall_time_s"):
        assert tag in tags["scalars"], tag
    assert "map" in tags["images"]
    stress = [e.value for e in acc.Scalars("train/stress1")]
    # the fit stops once converged: one point per epoch it ran, and TensorBoard says it converged
    epochs = acc.Scalars("hp/epochs")[-1].value
    assert len(stress) == trainer.current_epoch == epochs < 30 and stress[-1] < stress[0]
    assert acc.Scalars("hp/converged")[-1].value == 1.0
    final = acc.Scalars("hp/stress1")[-1].value
    assert final == pytest.approx(float(model.stress1[model.best_restart()]), rel=1e-5)
    assert final <= 0.0023
    assert acc.Scalars("train/lr")[-1].value == pytest.approx(1.0)
    # the HPARAMS tab's experiment names the metrics and the optimiser among the hyperparameters
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = acc.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    # only what runs are compared by, and hp/stress1 first among the metrics
    assert [m.name.tag for m in experiment.metric_infos] == [
        "hp/stress1", "hp/reference_stress1", "hp/wall_time_s", "hp/converged", "hp/epochs"
    ]  # fmt: skip
    columns = ["loss", "start", "optimizer", "lr", "max_epochs", "places", "transform", "geometry"]
    assert [h.name for h in experiment.hparam_infos] == columns
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert session.hparams["loss"].string_value == "course" and session.hparams["start"].string_value == "random"
    assert session.hparams["places"].number_value == 36 and session.hparams["optimizer"].string_value == "ScaledLBFGS"


def test_restarts_keep_the_best(tmp_path):
    """The map written is the restart whose stress-1, computed here from each restart's coordinates, is lowest."""
    trainer, model, _ = fit(tmp_path, max_epochs=400, restarts=3)  # default optimiser with restarts: Adam
    assert model.coords.shape == (3, 36, 2)
    dm = trainer.datamodule
    d = dm.table.matrix()
    restarts = [model.coords[k].detach().double().numpy() * dm.scale for k in range(3)]  # km
    each = np.array([stress1(x, d) for x in restarts])
    assert each.max() / each.min() - 1 > 1e-4  # the restarts end apart: keeping another one would show
    best = int(np.argmin(each))
    assert model.best_restart() == best
    written = read_coordinates(Path(trainer.log_dir) / "coordinates.csv")
    x = np.stack([written[name] for name in dm.table.names])
    assert stress1(x, d) == pytest.approx(each[best], rel=1e-6)  # the written map is that restart, turned and moved
    fitted = np.linalg.norm(x[:, None] - x[None], axis=-1)
    kept = np.linalg.norm(restarts[best][:, None] - restarts[best][None], axis=-1)
    assert np.abs(fitted - kept).max() < 0.01  # km
    assert each[best] <= COURSE_OPTIMUM * 1.01


def test_classical_start_begins_near_the_answer(tmp_path):
    trainer, model, renderer = fit(tmp_path, max_epochs=10, start="classical", loss="stress")
    first = renderer.history[0][0]
    dm = trainer.datamodule
    d = torch.tensor(dm.table.matrix() / dm.scale, dtype=torch.float64)
    start_stress = torch.sqrt(
        (torch.triu(torch.cdist(torch.tensor(first), torch.tensor(first)) - d, 1) ** 2).sum()
        / torch.triu(d, 1).pow(2).sum()
    )
    assert float(start_stress) < 0.01
    assert float(model.stress1.min()) <= 0.0021  # raw stress reaches the best 2-D placement, ~0.00203


def test_notebook_style_three_lines(tmp_path):
    """A plain Trainer writes a map that is right: at the optimum, in km, north up, and on the globe."""
    dm = DistanceDataModule()
    model = CityMap(num_places=dm.num_places)
    pl.Trainer(max_epochs=30, default_root_dir=tmp_path, enable_progress_bar=False, callbacks=[MapRenderer()]).fit(
        model, dm
    )
    (coordinates,) = list(tmp_path.rglob("coordinates.csv"))
    table = europe()
    assert map_stress1(coordinates, table) <= COURSE_OPTIMUM * 1.01  # against the great-circle distances, by numpy
    coords = read_coordinates(coordinates)
    assert list(coords) == table.names
    assert_course_orientation(coords)
    assert np.linalg.norm(coords["Paris"] - coords["Berlin"]) == pytest.approx(878, rel=0.02)  # km
    found, _ = geojson_latlon(coordinates.parent / "coordinates.geojson")
    errors = geo.haversine(np.stack([found[name] for name in table.names]), table.latlon)
    assert np.median(errors) < 60  # km: a flat map of Europe, read back on the globe
