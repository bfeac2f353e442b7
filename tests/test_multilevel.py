"""Coarse-to-fine fitting of tables with missing pairs: plain objects, judged against the independent reference."""

from __future__ import annotations

import numpy as np
import pytest
import reference_mds as ref
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from citymap_lightning import losses, multilevel, starts
from citymap_lightning.tables import PairTable


def road_list(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A road-shaped pair list of ``n`` US places: towns of 15,000 people or more, then villages 3-25 km about them."""
    towns = min(n, 2000)
    names, latlon = ref.us_places(towns, seed)
    rng = np.random.default_rng(seed)
    extra = n - towns
    base = rng.integers(towns, size=extra)
    km, bearing = rng.uniform(3.0, 25.0, extra), rng.uniform(0.0, 2 * np.pi, extra)
    lat = latlon[base, 0] + np.degrees(km * np.cos(bearing) / ref.EARTH_RADIUS_KM)
    lon = latlon[base, 1] + np.degrees(km * np.sin(bearing) / ref.EARTH_RADIUS_KM) / np.cos(np.radians(latlon[base, 0]))
    latlon = np.vstack([latlon, np.c_[lat, lon]])
    names = names + [f"village {k}" for k in range(extra)]
    pairs = sorted(ref.road_pairs(latlon, nearest=(4, 4), far=2, seed=seed + 1))
    i, j = (np.array(v, dtype=np.int64) for v in zip(*pairs, strict=True))
    return names, latlon, i, j, ref.great_circle(latlon, i, j)


@pytest.fixture(scope="module")
def road3000():
    return road_list(3000)


def test_each_level_shrinks_and_stays_connected(road3000):
    _, _, i, j, d = road3000
    levels = multilevel.hierarchy(3000, i, j, d, np.ones_like(d), coarsest=100)
    assert len(levels) >= 3 and levels[-1].n <= 100
    for finer, coarser in zip(levels, levels[1:], strict=False):
        assert coarser.n <= multilevel.MIN_SHRINK * finer.n
        assert len(np.unique(coarser.kept)) == coarser.n and coarser.kept.max() < finer.n
        assert (coarser.i < coarser.j).all() and (coarser.d > 0).all()
        graph = coo_matrix((np.ones(len(coarser.i)), (coarser.i, coarser.j)), shape=(coarser.n, coarser.n))
        assert connected_components(graph, directed=False)[0] == 1
    # the same table gives the same levels
    again = multilevel.hierarchy(3000, i, j, d, np.ones_like(d), coarsest=100)
    assert all(np.array_equal(a.kept, b.kept) for a, b in zip(levels[1:], again[1:], strict=True))


def test_placing_puts_places_on_their_partners_circles(road3000):
    """Placed from the true positions of the kept places, the others land near their true positions."""
    _, latlon, i, j, d = road3000
    truth = ref.azimuthal_equidistant(latlon)
    level = multilevel.Level(3000, i, j, d, np.ones_like(d))
    coarse = multilevel.coarsen(level, np.random.default_rng(0))
    placed = multilevel.prolong(truth[coarse.kept], level, coarse.kept)
    assert np.array_equal(placed[coarse.kept], truth[coarse.kept])
    error = np.linalg.norm(placed - truth, axis=1)
    nearest = np.full(3000, np.inf)
    np.minimum.at(nearest, i, d)
    np.minimum.at(nearest, j, d)
    # trilateration from placed partners: most places within a tenth of their nearest partner's distance
    assert np.median(error / nearest) < 0.2  # 0.08 measured


@pytest.mark.parametrize("loss", losses.LOSSES)
def test_minimise_reaches_the_reference_minimum(loss):
    """Block-preconditioned L-BFGS on the loss's torch terms ends where the reference's numpy L-BFGS does."""
    table = ref.pairs_table(300, seed=3)
    truth = ref.azimuthal_equidistant(table.latlon)
    start = truth + np.random.default_rng(0).normal(scale=5.0, size=truth.shape)
    ours, value = multilevel.minimise(loss, start, table.i, table.j, table.d, np.ones_like(table.d), tol=1e-12)
    _, _, reference = ref.lbfgs(loss, start, table.i, table.j, table.d, None, "plane", 1.0)
    assert value == pytest.approx(ref.objective(loss, ours, table.i, table.j, table.d), rel=1e-9)
    assert value <= reference * (1 + 1e-6)


@pytest.mark.parametrize("loss", losses.LOSSES)
def test_the_pair_objective_is_its_terms_gradient(loss):
    """The gradient handed to L-BFGS is the derivative of the loss's own terms (finite differences, float64)."""
    rng = np.random.default_rng(1)
    i, j = np.triu_indices(6, 1)
    d = rng.uniform(1.0, 3.0, len(i))
    objective = multilevel.pair_objective(loss, i, j, d, np.ones_like(d))
    x = rng.normal(size=12)
    value, grad = objective(x, 2)
    step = 1e-6
    numeric = [(objective(x + step * e, 2)[0] - objective(x - step * e, 2)[0]) / (2 * step) for e in np.eye(12)]
    assert np.allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    fitted = torch.from_numpy(np.linalg.norm(x.reshape(6, 2)[i] - x.reshape(6, 2)[j], axis=1))
    assert value == pytest.approx(float(losses.terms(loss, fitted, torch.from_numpy(d), None).sum()), rel=1e-12)


@pytest.mark.parametrize("loss", losses.LOSSES)
def test_the_fused_loss_is_derived_from_the_terms(loss):
    """The blockwise loss with its analytic gradient (above 200 places) equals autograd through the terms."""
    rng = np.random.default_rng(2)
    n = 40
    x = torch.from_numpy(rng.normal(size=(2, n, 2)))
    truth = rng.normal(size=(n, 2))
    d = torch.from_numpy(np.linalg.norm(truth[:, None] - truth[None], axis=-1))
    w = torch.from_numpy(rng.uniform(0.5, 2.0, (n, n)))
    w = (w + w.T) / 2
    fused = x.clone().requires_grad_(True)
    value, _ = losses.fused_loss(fused, d, w, loss, working_set=64)  # several blocks of rows
    value.sum().backward()
    plain = x.clone().requires_grad_(True)
    fitted = (plain[:, :, None] - plain[:, None]).square().sum(-1).clamp_min(1e-300).sqrt()
    expected = losses.loss_fn(loss)(fitted, d, w)
    expected.sum().backward()
    assert torch.allclose(value, expected, rtol=1e-10)
    assert torch.allclose(fused.grad, plain.grad, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "loss",
    [
        "course",
        pytest.param(
            "stress",
            marks=pytest.mark.xfail(
                strict=True,
                reason="twisted clusters of villages remain: 1.03x (coarse to fine, 5 s) and 1.011x (the "
                "single-level continuation, 197 s) on this list; Asian lists of 20,000 and 50,000 end within 1.01x",
            ),
        ),
    ],
)
def test_a_large_road_shaped_list_starts_at_its_optimum(loss):
    """6,000 US towns and villages (4 nearest + 2 far partners) start coarse-to-fine within 1% of the reference."""
    names, latlon, i, j, d = road_list(6000, seed=5)
    assert 6000 > starts.MULTILEVEL_FROM
    table = PairTable(names=names, i=i, j=j, d=d, w=np.ones_like(d))
    record = []
    x = starts.continuation(table, loss, 2, record=record)
    value = ref.objective(loss, x, i, j, d)
    # every stage is recorded: the coarsest level's continuation, then each finer level down to level 0
    levels = [int(stage.name.split()[1]) for stage in record]
    assert levels == sorted(levels, reverse=True) and levels[-1] == 0 and levels[0] >= 2
    assert all(np.isfinite(stage.objective) and stage.seconds >= 0 for stage in record)
    finest = [stage for stage in record if stage.name.startswith("level 0 ")]
    assert finest[-1].places == 6000 and all(stage.converged is not None for stage in finest)
    _, _, from_truth = ref.lbfgs(loss, ref.azimuthal_equidistant(latlon), i, j, d, None, "plane", 1.0)
    _, _, from_ours = ref.lbfgs(loss, x, i, j, d, None, "plane", 1.0)
    assert value <= 1.01 * min(from_truth, from_ours)


def test_the_start_stages_are_logged(tmp_path):
    """A pair list's start shows its stages: one INFO line each, TensorBoard scalars stepped by stage, a table."""
    import logging

    from conftest import event_tags, fit_cli

    names, _, i, j, d = road_list(300, seed=2)
    path = tmp_path / "road.csv"
    path.write_text(
        "source,target,distance\n"
        + "".join(f"{names[a]},{names[b]},{c:.3f}\n" for a, b, c in zip(i, j, d, strict=True))
    )
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("citymap_lightning").addHandler(handler)
    try:
        run = fit_cli(tmp_path / "out", "--data.path", str(path), "--trainer.max_epochs", "5")
    finally:
        logging.getLogger("citymap_lightning").removeHandler(handler)
    shown = [line for line in lines if line.startswith("start stage ")]
    assert len(shown) >= 3 and "course" in shown[0]
    events = event_tags(run)
    steps = [e.step for e in events.Scalars("start/stage")]
    assert steps == list(range(len(shown)))
    assert len(events.Scalars("start/objective")) == len(shown)
    text = events.Tensors("start/stages/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text.count("\n") == len(shown) + 1 and "| stage |" in text
