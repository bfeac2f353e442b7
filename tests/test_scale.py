"""Large inputs: the fused full-batch loss, lazy tables, pair sampling, the pair-batch fit and DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EUROPE, QUIET, ROOT, event_tags, map_stress1, read_coordinates, run_dir

from citymap_lightning import geometry as geo
from citymap_lightning import losses, render, sampling
from citymap_lightning.cli import main
from citymap_lightning.readers import from_matrix, load_table
from citymap_lightning.tables import PlacesTable

PAIRS = ["--data.full_batch_limit", "0", "--model.loss", "stress", "--model.start", "pivot"]


@pytest.fixture(scope="module")
def europe300(tmp_path_factory) -> Path:
    """The 300 most populous places of the bundled 5,000."""
    path = tmp_path_factory.mktemp("data") / "europe300.csv"
    lines = (ROOT / "data" / "europe5000.csv").read_text(encoding="utf-8").splitlines()[:301]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("loss", losses.LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_loss_matches_autograd_through_cdist(loss, weighted):
    rng = np.random.default_rng(0)
    n = 41
    x = torch.from_numpy(rng.standard_normal((2, n, 2)))
    truth = torch.from_numpy(rng.standard_normal((n, 2)))
    d = torch.cdist(truth, truth)
    w = torch.from_numpy(rng.random((n, n)) * (rng.random((n, n)) < 0.8))
    w = torch.minimum(w, w.T).fill_diagonal_(0) if weighted else None
    reference = x.clone().requires_grad_()
    fitted = geo.Plane().distances(reference)
    expected = losses.loss_fn(loss)(fitted, d, torch.ones_like(d) if w is None else w)
    expected.sum().backward()
    fused = x.clone().requires_grad_()
    value, residual = losses.fused_loss(fused, d, w, loss, working_set=3 * 2 * n)  # blocks of 3 rows
    value.sum().backward()
    assert torch.allclose(value, expected.detach(), rtol=1e-12)
    assert torch.allclose(fused.grad, reference.grad, rtol=1e-8, atol=1e-9)
    squared = (fitted.detach() - d) ** 2 * (1 if w is None else w)
    assert torch.allclose(residual, squared.sum((-1, -2)), rtol=1e-12)
    per_place = losses.fused_city_residuals(x, d, w, working_set=5 * n)
    assert torch.allclose(per_place, squared.sum(-1), rtol=1e-12)


def test_places_table_holds_no_matrix_and_gives_the_same_distances():
    places = load_table(EUROPE)
    assert isinstance(places, PlacesTable) and not hasattr(places, "distances")
    dense = from_matrix(places.matrix(), places.names)
    assert places.n_known_pairs == places.n_pairs == dense.n_known_pairs == 630
    i, j = np.triu_indices(36, 1)
    assert np.allclose(places.pair_distances(i, j), dense.distances[i, j], atol=1e-6)
    assert np.allclose(places.columns(np.array([3, 7])), dense.distances[:, [3, 7]], atol=1e-6)
    assert (places.pair_weights(i, j) == 1).all()
    assert (np.sort(places.nearest(4), axis=1) == np.sort(dense.nearest(4), axis=1)).all()


def test_neighbour_search_matches_brute_force_near_the_poles_and_the_antimeridian():
    rng = np.random.default_rng(7)
    spread = np.column_stack([np.degrees(np.arcsin(rng.uniform(-1, 1, 1400))), rng.uniform(-180, 180, 1400)])
    poles = np.column_stack([rng.choice([-1, 1], 300) * rng.uniform(88.5, 90, 300), rng.uniform(-180, 180, 300)])
    dateline = np.column_stack([rng.uniform(-60, 60, 300), rng.choice([-1, 1], 300) * rng.uniform(179.5, 180, 300)])
    latlon = np.concatenate([spread, poles, dateline])
    table = PlacesTable(names=[str(k) for k in range(len(latlon))], latlon=latlon)
    k = 8
    near = table.nearest(k)
    assert near.shape == (2000, k) and near.dtype == np.int64
    d = geo.haversine(latlon[:, None], latlon[None, :])
    np.fill_diagonal(d, np.inf)
    brute = np.argsort(d, axis=1, kind="stable")[:, :k]
    rows = np.arange(2000)[:, None]
    assert (near != rows).all()
    # the same distances, nearest first; the same places wherever the k-th distance is not tied
    assert np.allclose(d[rows, near], d[rows, brute], rtol=0, atol=1e-6)
    untied = d[rows, brute][:, -1] < np.sort(d, axis=1)[:, k] - 1e-6
    assert untied.mean() > 0.99
    assert (np.sort(near[untied], axis=1) == np.sort(brute[untied], axis=1)).all()
    # places on both sides of the antimeridian are neighbours of each other
    east, west = latlon[:, 1] > 179.5, latlon[:, 1] < -179.5
    assert (east[near[west]]).any() and (west[near[east]]).any()
    assert table.nearest(k) is near  # computed once per table


def test_neighbour_search_with_identical_places_and_fewer_places_than_neighbours():
    latlon = np.array([[10.0, 20.0], [10.0, 20.0], [10.0, 20.0], [10.0, 20.0], [10.5, 20.0]])
    table = PlacesTable(names=list("abcde"), latlon=latlon)
    near = table.nearest(2)
    assert (near != np.arange(5)[:, None]).all()
    assert set(near[4]) <= {0, 1, 2, 3} and all(set(near[r]) <= {0, 1, 2, 3} for r in range(4))
    assert np.sort(table.nearest(10), axis=1).tolist() == [[b for b in range(5) if b != a] for a in range(5)]
    assert PlacesTable(names=["a"], latlon=latlon[:1]).nearest(3).shape == (1, 0)


def test_epoch_pairs_are_reproducible_new_each_epoch_and_shared_by_ranks():
    table = load_table(EUROPE)
    near = table.nearest(3)
    dense = np.where(np.eye(36, dtype=bool), np.inf, table.matrix())
    assert (np.sort(near, axis=1) == np.sort(np.argsort(dense, axis=1)[:, :3], axis=1)).all()
    first = sampling.epoch_pairs(36, near, 5, seed=0, epoch=0)
    assert all((a == b).all() for a, b in zip(first, sampling.epoch_pairs(36, near, 5, seed=0, epoch=0), strict=True))
    assert not np.array_equal(first[1], sampling.epoch_pairs(36, near, 5, seed=0, epoch=1)[1])
    assert (first[0] != first[1]).all()
    assert len(first[0]) > 36 * 7  # 3 neighbours + 5 random each, less the few self-pairs drawn
    shards = [sampling.shard(*first, rank, 2) for rank in range(2)]
    union = sorted(zip(np.concatenate([s[0] for s in shards]), np.concatenate([s[1] for s in shards]), strict=True))
    assert union == sorted(zip(*first, strict=True))
    assert set(zip(*shards[0], strict=True)) != set(zip(*shards[1], strict=True))
    i, j = sampling.evaluation_pairs(1000, 5000)
    assert len(i) == 5000 and (i < j).all() and len(set(zip(i, j, strict=True))) == 5000


def test_pair_fit_reaches_the_full_batch_quality_and_logs_its_schedule(europe300, tmp_path):
    main(["fit", *PAIRS, "--data.path", str(europe300), "--trainer.max_epochs", "30",
          "--trainer.check_val_every_n_epoch", "10", "--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip
    log_dir = run_dir(tmp_path)
    # the full-batch optimum of these 300 places is 0.00118 (L-BFGS, 30 epochs)
    assert map_stress1(log_dir / "coordinates.csv", load_table(europe300)) <= 0.00125
    acc = event_tags(log_dir)
    assert {"train/batch_stress1", "train/eta", "val/stress1", "val/pairs"} <= set(acc.Tags()["scalars"])
    assert acc.Scalars("val/pairs")[-1].value == 300 * 299 / 2  # exact: every pair
    eta = [s.value for s in acc.Scalars("train/eta")]
    assert eta[0] == pytest.approx(1.0) and eta[-1] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(eta, eta[1:], strict=False))
    val = [s.value for s in acc.Scalars("val/stress1")]
    assert val[-1] < val[0] and val[-1] == pytest.approx(
        map_stress1(log_dir / "coordinates.csv", load_table(europe300)), rel=1e-3
    )
    assert {"map.png", "shepard.png", "city_error.png", "coordinates.geojson"} <= {p.name for p in log_dir.iterdir()}


def test_pair_fit_never_builds_a_distance_matrix_and_samples_validation(europe300, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the pair path built an n x n distance matrix")

    monkeypatch.setattr(geo, "distance_matrix", refuse)
    searches = []
    search = PlacesTable._find_nearest
    monkeypatch.setattr(PlacesTable, "_find_nearest", lambda self, k: searches.append(k) or search(self, k))
    main(["fit", *PAIRS, "--data.path", str(europe300), "--data.exact_limit", "100", "--data.sample_pairs", "4000",
          "--trainer.max_epochs", "30", "--trainer.check_val_every_n_epoch", "30",
          "--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip
    log_dir = run_dir(tmp_path)
    assert searches == [8]  # the neighbour search runs once per fit, not once per epoch
    acc = event_tags(log_dir)
    assert acc.Scalars("val/pairs")[-1].value == 4000
    sampled = acc.Scalars("val/stress1")[-1].value
    monkeypatch.undo()
    exact = map_stress1(log_dir / "coordinates.csv", load_table(europe300))
    assert exact <= 0.00125
    assert sampled == pytest.approx(exact, rel=0.15)


def test_pair_fit_of_a_pair_list_with_missing_pairs(tmp_path):
    table = load_table(EUROPE)
    rng = np.random.default_rng(1)
    i, j = np.triu_indices(36, 1)
    keep = rng.random(len(i)) < 0.6
    lines = ["source,target,distance"] + [
        f"{table.names[a]},{table.names[b]},{table.matrix()[a, b]:.3f}" for a, b in zip(i[keep], j[keep], strict=True)
    ]
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    main(["fit", *PAIRS, "--data.path", str(path), "--trainer.max_epochs", "60",
          "--trainer.default_root_dir", str(tmp_path / "run"), *QUIET])  # fmt: skip
    log_dir = run_dir(tmp_path / "run")
    assert map_stress1(log_dir / "coordinates.csv", load_table(EUROPE)) <= 0.01
    assert len((log_dir / "pairs_fitted.csv").read_text(encoding="utf-8").splitlines()) == 631


@pytest.mark.slow
def test_pair_fit_resumes_exactly_where_an_uninterrupted_fit_ends(europe300, tmp_path):
    weighted = [*PAIRS, "--model.loss", "weighted_stress", "--data.path", str(europe300), *QUIET]
    main(["fit", *weighted, "--trainer.max_epochs", "20", "--trainer.default_root_dir", str(tmp_path / "whole")])
    split = ["fit", *weighted, "--trainer.default_root_dir", str(tmp_path / "split")]
    main([*split, "--trainer.max_epochs", "10", "--checkpoint.every_n_epochs", "10"])
    main([*split, "--trainer.max_epochs", "20", "--ckpt_path", "last"])
    whole = (tmp_path / "whole" / "lightning_logs" / "version_0" / "coordinates.csv").read_bytes()
    resumed = (tmp_path / "split" / "lightning_logs" / "version_1" / "coordinates.csv").read_bytes()
    assert whole == resumed


def test_pair_fit_of_a_matrix_without_coordinates(tmp_path):
    table = load_table(EUROPE)
    np.save(tmp_path / "d.npy", table.matrix())
    (tmp_path / "names.txt").write_text("\n".join(table.names) + "\n", encoding="utf-8")
    main(["fit", *PAIRS, "--data.path", str(tmp_path / "d.npy"), "--data.names", str(tmp_path / "names.txt"),
          "--trainer.max_epochs", "30", "--trainer.default_root_dir", str(tmp_path / "run"), *QUIET])  # fmt: skip
    log_dir = run_dir(tmp_path / "run")
    assert map_stress1(log_dir / "coordinates.csv", load_table(EUROPE)) <= 0.0021  # raw stress optimum: 0.00203
    assert event_tags(log_dir).Scalars("val/pairs")[-1].value == 630


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--optimizer", "LBFGS"], "pair batches take their own step"),
        (["--optimizer", "Adam"], "pair batches take their own step"),
        (["--model.loss", "course"], "which take one flat map"),
        (["--model.geometry", "sphere"], "which take one flat map"),
        (["--model.restarts", "2"], "which take one flat map"),
    ],
)
def test_pair_fit_refuses_what_it_cannot_do(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *PAIRS, "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path), *QUIET, *extra])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not list(tmp_path.rglob("coordinates.csv"))


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_matches_one_process(europe300, tmp_path):
    """`strategy=ddp` relaunches the command, so it runs in a subprocess (inside pytest it would relaunch pytest)."""
    common = [sys.executable, "-m", "citymap_lightning", "fit", *PAIRS, "--data.path", str(europe300),
              "--trainer.max_epochs", "30", *QUIET]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = {}
    for name, extra in {
        "one": [],
        "ddp": ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"],
    }.items():
        root = tmp_path / name
        done = subprocess.run([*common, *extra, "--trainer.default_root_dir", str(root)], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        results[name] = map_stress1(run_dir(root) / "coordinates.csv", load_table(europe300))
    assert "GLOBAL_RANK: 1" in done.stdout + done.stderr
    # each message once (rank zero's), and val/* already reduced: Lightning has no sync_dist advice to give
    assert done.stdout.count("300 places, 44850 of 44850 pairs known") == 1, done.stdout
    assert done.stdout.count("Outputs in ") == 1 and "sync_dist" not in done.stderr, done.stderr
    assert results["ddp"] == pytest.approx(results["one"], rel=0.05)
    assert results["ddp"] <= 0.00125


def test_readable_subset_takes_the_first_place_of_each_occupied_cell():
    coords = np.array([[0.0, 0.0], [0.1, 0.1], [9.9, 9.9], [5.0, 0.2], [9.8, 9.7], [0.2, 0.0]])
    assert render.readable_subset(coords, 10, cells=2).tolist() == [0, 2, 3]
    assert render.readable_subset(coords, 2, cells=2).tolist() == [0, 2]
    assert render.readable_subset(coords, 0).tolist() == []


def test_many_places_make_a_density_map_with_a_subset_history_and_whole_outputs(europe300, tmp_path):
    """Above map.max_points: hexagons, a labelled subset, and only that subset's history in memory and checkpoints."""
    main(["fit", *PAIRS, "--data.path", str(europe300), "--map.max_points", "100", "--map.max_labels", "20",
          "--trainer.max_epochs", "6", "--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip
    log_dir = run_dir(tmp_path)
    ckpt = torch.load(log_dir / "checkpoints" / "last.ckpt", weights_only=False)
    (state,) = [v for k, v in ckpt["callbacks"].items() if k.startswith("MapRenderer")]
    subset = state["subset"].numpy()
    assert 3 <= len(subset) <= 20 and len(set(subset.tolist())) == len(subset) and subset[0] == 0
    assert len(state["history"]) >= 6 and all(h.shape == (1, len(subset), 2) for h in state["history"])
    coords = read_coordinates(log_dir / "coordinates.csv")
    table = load_table(europe300)
    x = np.stack([coords[name] for name in table.names])
    # the last snapshot holds the subset's final positions: the same shape as theirs in coordinates.csv
    last = state["history"][-1][0].numpy()
    i, j = np.triu_indices(len(subset), 1)
    ratio = np.linalg.norm(last[i] - last[j], axis=1) / np.linalg.norm(x[subset][i] - x[subset][j], axis=1)
    assert np.allclose(ratio, ratio[0], rtol=1e-6)
    assert (log_dir / "map.png").read_bytes()[:4] == b"\x89PNG"
    features = json.loads((log_dir / "coordinates.geojson").read_text(encoding="utf-8"))["features"]
    assert [f["properties"]["name"] for f in features] == table.names
    (tensors,) = log_dir.rglob("tensors.tsv")
    assert np.allclose(np.loadtxt(tensors), x, rtol=1e-6, atol=1e-3)
    (metadata,) = log_dir.rglob("metadata.tsv")
    assert metadata.read_text(encoding="utf-8").splitlines() == table.names
    assert 'metadata_path: "' in (log_dir / "projector_config.pbtxt").read_text()


def test_density_map_draws_hexagons_and_labels_but_no_paths():
    from matplotlib.collections import LineCollection, PolyCollection

    rng = np.random.default_rng(0)
    coords = rng.normal(size=(3000, 2)) * 100
    names = [f"p{k}" for k in range(3000)]
    subset = render.readable_subset(coords, 30)
    history = np.stack([coords[subset] * (1 + 0.1 * k) for k in range(5)])
    fig = render.draw_map(coords, names, history, max_points=1000, subset=subset)
    ax = fig.axes[0]
    assert any(isinstance(c, PolyCollection) and len(c.get_offsets()) > 100 for c in ax.collections)  # hexagons
    assert not [c for c in ax.collections if isinstance(c, LineCollection)]  # paths: TensorBoard and map.html
    assert sorted(t.get_text() for t in ax.texts if t.get_text()) == sorted(names[k] for k in subset)
    fig = render.draw_map(coords[:500], names[:500], max_points=1000)  # below: points, as before
    assert not any(isinstance(c, PolyCollection) and len(c.get_offsets()) > 100 for c in fig.axes[0].collections)


def test_batches_made_by_a_thread_give_the_same_map_as_batches_made_in_line(europe300, tmp_path, monkeypatch):
    """Large epochs' batches come from a thread beside the steps: the same pairs in the same order, the same map."""
    import threading

    from citymap_lightning.solvers import pairs

    run = [*PAIRS, "--data.path", str(europe300), "--trainer.max_epochs", "6", *QUIET]
    main(["fit", *run, "--trainer.default_root_dir", str(tmp_path / "in_line")])
    made_by = set()
    batches = pairs.PairBatches._pairs

    def noted(self, *args):  # which thread made each batch
        made_by.add(threading.current_thread().name)
        return batches(self, *args)

    monkeypatch.setattr(pairs, "PREFETCH_PAIRS", 1)  # every epoch is large
    monkeypatch.setattr(pairs.PairBatches, "_pairs", noted)
    main(["fit", *run, "--trainer.default_root_dir", str(tmp_path / "thread")])
    made = [(tmp_path / name / "lightning_logs" / "version_0" / "coordinates.csv").read_bytes()
            for name in ("in_line", "thread")]  # fmt: skip
    assert made[0] == made[1]
    assert "citymap-batches" in made_by


def test_a_prefetching_thread_passes_errors_on_and_stops_when_asked_no_more():
    from citymap_lightning.solvers.pairs import _prefetched

    def failing():
        yield 1
        raise ValueError("bad batch")

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for batch in _prefetched(failing(), 4):
            got.append(batch)
    assert got == [1]
    endless = _prefetched(iter(range(10**9)), 2)
    assert [next(endless) for _ in range(5)] == [0, 1, 2, 3, 4]
    endless.close()  # the thread sees the stop and ends
