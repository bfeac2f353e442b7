"""When a fit is done: the relative-change rule, the exact-fit floor, and the run's one summary line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_mds as ref
from conftest import fit_cli

from citymap_lightning.convergence import EXACT, Convergence


def test_converged_after_patience_quiet_epochs():
    c = Convergence(tol=1e-3, patience=2)
    assert not c.update(1.0) and not c.update(0.5)  # a change of 100%
    assert not c.update(0.49999)  # one quiet epoch of two
    assert c.update(0.499985)
    assert "converged (relative change" in c.summary(0.01, 4, 100)
    assert not c.short


def test_a_fit_still_falling_did_not_converge_and_says_what_to_raise():
    c = Convergence(tol=1e-7, patience=3)
    for value in (1.0, 0.9, 0.8):
        c.update(value)
    line = c.summary(0.05, 3, 3)
    assert c.short and "did not converge" in line and "--trainer.max_epochs (now 3)" in line


def test_an_exact_fit_has_converged_whatever_its_rounding_noise():
    """An exact fit's objective changes by rounding alone (a sphere of 200 cities: stress-1 1.8e-6 kept moving)."""
    c = Convergence(tol=1e-7, patience=3)
    for value in (1e-11, 3e-12, 9e-12, 2e-12):  # relative changes of 70% and more: noise at the float32 floor
        c.update(value, stress1=EXACT / 5)
    assert c.converged and "an exact fit" in c.summary(EXACT / 5, 4, 60)
    noisy = Convergence(tol=1e-7, patience=3)
    for value in (1e-11, 3e-12, 9e-12, 2e-12):
        noisy.update(value, stress1=10 * EXACT)
    assert not noisy.converged


def test_a_change_within_the_coordinates_rounding_counts_as_quiet():
    """Weighted stress at its optimum (500 US places) changed by about 1e-6 an epoch as float32 coordinates were
    rounded: the rounding's own effect on the objective is asked for, and only below the ceiling."""
    asked = []

    def noise() -> float:
        asked.append(1)
        return 1e-5

    c = Convergence(tol=1e-7, patience=3)
    c.update(1.0, noise=noise)
    for value in (1.000001, 1.000002, 1.000001):  # changes of 1e-6: above tol, within the noise
        c.update(value, noise=noise)
    assert c.converged and len(asked) == 3
    line = c.summary(0.01, 4, 60)
    assert "converged" in line and "rounding the coordinates" in line and "1e-05" in line
    falling = Convergence(tol=1e-7, patience=3)
    for value in (1.0, 0.9, 0.8, 0.7):  # changes over NOISE_CEILING are never put down to rounding
        falling.update(value, noise=lambda: 1.0)
    assert not falling.converged and "did not converge" in falling.summary(0.01, 4, 60)
    below = Convergence(tol=1e-7, patience=3)
    below.update(1.0, noise=noise)
    below.update(1.0, noise=noise)  # no change: quiet by tol, the noise not asked
    assert len(asked) == 3


def test_tol_zero_runs_every_epoch_and_is_never_short():
    c = Convergence(tol=0.0, patience=1)
    for value in (1.0, 1.0, 1.0):
        assert not c.update(value)
    assert not c.short and "every epoch run" in c.summary(0.1, 3, 3)
    assert math.isnan(Convergence(1e-7, 3).change)


@pytest.mark.slow
def test_a_pair_list_stopped_at_two_epochs_warns_that_it_did_not_converge(tmp_path, caplog):
    """The issue's promise: ``--trainer.max_epochs 2`` on a pair list says ``did not converge`` (a warning),
    just before the output paths; the default 36-city fit says ``converged``."""
    t = ref.pairs_table(60, seed=2)
    path, _ = ref.write_table(t, tmp_path / "data")
    with caplog.at_level("INFO", logger="citymap_lightning"):
        fit_cli(tmp_path / "short", "--data.path", str(path), "--trainer.max_epochs", "2")
    short = [r for r in caplog.records if "did not converge" in r.getMessage()]
    assert len(short) == 1 and short[0].levelname == "WARNING"
    assert "stress-1" in short[0].getMessage() and "outputs in" in short[0].getMessage()
    caplog.clear()
    with caplog.at_level("INFO", logger="citymap_lightning"):
        fit_cli(tmp_path / "default")
    done = [r.getMessage() for r in caplog.records if "converged (" in r.getMessage()]
    assert len(done) == 1 and "after" in done[0]
    assert np.isfinite(float(done[0].split("stress-1 ")[1].split(" ")[0]))


def _road_list(n: int = 300, seed: int = 3):
    """A small road-shaped pair list (4 nearest + 2 random partners) of random places, as a PairTable."""
    from scipy.spatial import cKDTree

    from citymap_lightning.tables import PairTable

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1000, (n, 2))
    near = cKDTree(x).query(x, 5)[1][:, 1:]
    i = np.concatenate([np.repeat(np.arange(n), 4), np.repeat(np.arange(n), 2)])
    j = np.concatenate([near.ravel(), rng.integers(0, n, 2 * n)])
    keep = i != j
    i, j = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
    i, j = np.unique(np.stack([i, j]), axis=1)
    d = np.linalg.norm(x[i] - x[j], axis=1) * rng.uniform(0.9, 1.1, len(i))  # noisy: the minimum is not exact
    return x, PairTable(names=[f"p{k}" for k in range(n)], i=i, j=j, d=d, w=np.ones(len(d)), source="test")


@pytest.mark.parametrize("loss", ["stress", "course"])
def test_stationarity_is_near_zero_at_the_minimum_and_large_on_a_slope(loss):
    """The gradient test reads 0 at an independent minimum (SciPy L-BFGS-B, float64) and not beside it."""
    import torch

    from citymap_lightning import geometry, losses
    from citymap_lightning.problem import MapState, Problem
    from citymap_lightning.solvers import FullBatch, PairBatches

    x, table = _road_list()
    i, j, d, _ = table.known_values()
    best = ref.lbfgs(loss, x, i, j, d, None, "plane", 1.0)[0]
    for solver in (FullBatch(table), PairBatches(table)):
        problem = Problem(table, geometry.Plane(), losses.get(loss))
        at = lambda c, scale=solver.scale: MapState(coords=torch.from_numpy(c / scale)[None].float())  # noqa: E731
        assert solver.stationarity(problem, at(best)) < 1e-5
        rng = np.random.default_rng(0)
        shaken = best + rng.normal(0, 20, best.shape)  # 20 km on a 1,000 km map
        assert solver.stationarity(problem, at(shaken)) > 1e-2
        # an anchored place's gradient is not a slope: it cannot move
        held = best.copy()
        held[0] += 50.0
        mask = np.zeros(len(x), bool)
        mask[:3] = True  # three held places fix the map: place 0 is then 50 km from where its distances put it
        pinned = ref.lbfgs(loss, held, i, j, d, None, "plane", 1.0, anchored=mask)[0]
        anchors = (torch.tensor([0, 1, 2]), torch.from_numpy(pinned[:3] / solver.scale).float())
        anchored = Problem(table, geometry.Plane(), losses.get(loss), anchored=anchors)
        assert solver.stationarity(problem, at(pinned)) > 1e-3
        assert solver.stationarity(anchored, at(pinned)) < 1e-5


def test_a_fit_that_stopped_falling_on_a_slope_did_not_converge():
    """Quiet epochs on a slope (pair batches at 4x their optimum once said `converged`): the gradient test decides."""
    c = Convergence(tol=2e-3, patience=3)
    asked = []

    def slope() -> float:
        asked.append(1)
        return 0.3

    for value in (0.2, 0.1999, 0.1998, 0.1997, 0.1996):
        c.update(value, stress1=0.15, stationarity=slope)
    assert not c.converged and c.short and len(asked) == 2  # asked only once the epochs were quiet
    line = c.summary(0.15, 80, 80)
    assert "did not converge" in line and "not a stationary point" in line and "0.3" in line
    assert "converged" not in line.replace("did not converge", "")
    flat = Convergence(tol=2e-3, patience=3)
    for value in (0.2, 0.1999, 0.1998, 0.1997):
        flat.update(value, stress1=0.15, stationarity=lambda: 2e-7)
    assert flat.converged and "a step along its gradient would gain 2e-07" in flat.summary(0.15, 4, 80)
    unjudged = Convergence(tol=2e-3, patience=3)  # no whole objective (random partners): the change alone
    for value in (0.2, 0.1999, 0.1998, 0.1997):
        unjudged.update(value, stress1=0.15, stationarity=lambda: None)
    assert unjudged.converged
    resumed = Convergence(tol=2e-3, patience=3)
    resumed.load_state_dict(c.state_dict())
    assert resumed.gain == 0.3 and not resumed.converged


def test_a_full_batch_stalled_on_a_slope_goes_on_in_float64():
    """Float32 steps stop short of a nearly exact fit's optimum (rounding outweighs the gradient in its flat valley):
    the quiet epochs on a slope read as stalled, and the full batch then evaluates in float64, once."""
    import torch
    from conftest import EUROPE

    from citymap_lightning.model import CityMap
    from citymap_lightning.readers import load_table
    from citymap_lightning.solvers.full import FullBatch

    stalled = Convergence(1e-7, 3)
    for _ in range(4):
        stalled.update(1.0, stationarity=lambda: 3e-4)
    assert stalled.stalled_short and not stalled.converged
    flat = Convergence(1e-7, 3)
    for _ in range(4):
        flat.update(1.0, stationarity=lambda: 1e-6)
    assert flat.converged and not flat.stalled_short

    table = load_table(EUROPE)
    solver = FullBatch(table)
    model = CityMap(num_places=table.n, loss="stress")
    problem = model.prepare(table, solver)
    state = model.state()
    assert solver.training_step(problem, state, solver.batch).loss.dtype == torch.float32
    assert solver.polish(problem) and not solver.polish(problem)  # once
    result = solver.training_step(problem, state, solver.batch)
    assert result.loss.dtype == torch.float64
    result.loss.backward()
    assert model.coords.grad is not None and model.coords.grad.dtype == torch.float32  # the coordinates stay float32
