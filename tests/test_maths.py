"""The pure functions: losses, starts, geography, alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from citymap_lightning import align, losses, metrics, starts
from citymap_lightning import geometry as geo


def test_course_objective_by_hand():
    coords = geo.Plane().distances(torch.tensor([[[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]]))
    d = torch.tensor([[0.0, 2.0, 4.0], [2.0, 0.0, 5.0], [4.0, 5.0, 0.0]])
    w = torch.ones(3, 3)
    # squared distances 9, 16, 25 against 4, 16, 25: only the first pair is off, by 5
    assert losses.loss_fn("course")(coords, d, w).item() == pytest.approx(25.0)
    assert losses.loss_fn("stress")(coords, d, w).item() == pytest.approx(1.0)
    assert metrics.stress1(coords, d, w).item() == pytest.approx(np.sqrt(1 / (4 + 16 + 25)))


def test_weights_leave_out_pairs():
    coords = geo.Plane().distances(torch.tensor([[[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]]))
    d = torch.tensor([[0.0, 2.0, 4.0], [2.0, 0.0, 5.0], [4.0, 5.0, 0.0]])
    w = torch.ones(3, 3)
    w[0, 1] = w[1, 0] = 0.0
    assert losses.loss_fn("course")(coords, d, w).item() == pytest.approx(0.0)
    assert metrics.stress1(coords, d, w).item() == pytest.approx(0.0)


@pytest.mark.parametrize("name", losses.LOSSES)
def test_gradients_match_finite_differences(name):
    gen = torch.Generator().manual_seed(0)
    coords = torch.randn(2, 6, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    truth = torch.randn(6, 2, dtype=torch.float64, generator=gen)
    d = torch.cdist(truth, truth)
    w = torch.rand(6, 6, dtype=torch.float64, generator=gen) + 0.5
    w = (w + w.T) / 2
    fn = losses.loss_fn(name)
    assert torch.autograd.gradcheck(lambda x: fn(geo.Plane().distances(x), d, w), (coords,))


def test_geodesic_distance_gradient_and_values():
    gen = torch.Generator().manual_seed(4)
    coords = torch.randn(1, 5, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    radius = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    d = torch.rand(5, 5, dtype=torch.float64, generator=gen)
    d = (d + d.T) / 2
    d.fill_diagonal_(0)
    fn = losses.loss_fn("stress")
    assert torch.autograd.gradcheck(
        lambda x, r: fn(geo.Sphere().distances(x, r), d, torch.ones(5, 5)), (coords, radius)
    )
    quarter = geo.Sphere().distances(torch.tensor([[[1.0, 0, 0], [0, 5.0, 0], [0, 0, -1.0]]]), torch.tensor(1.0))
    # three orthogonal directions (of any length) are a quarter circle apart
    expected = (torch.ones(3, 3, dtype=torch.float64) - torch.eye(3, dtype=torch.float64)) * torch.pi / 2
    assert torch.allclose(quarter[0], expected, atol=1e-6)


def test_restarts_are_independent():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 2, generator=gen), torch.randn(5, 2, generator=gen)
    d = torch.cdist(a, a)
    w = torch.ones(5, 5)
    both = metrics.stress1(geo.Plane().distances(torch.stack([a, b])), d, w, dims=(-1, -2))
    assert both[0].item() == pytest.approx(0.0, abs=1e-6)
    assert both[1].item() == pytest.approx(metrics.stress1(geo.Plane().distances(b[None]), d, w).item())


def test_place_residuals_find_the_bad_city():
    gen = torch.Generator().manual_seed(2)
    truth = torch.randn(8, 2, generator=gen)
    d = torch.cdist(truth, truth)
    moved = truth.clone()
    moved[3] += torch.tensor([1.0, 1.0])
    per_place = losses.fused_city_residuals(moved[None].double(), d.double(), None)[0]
    fitted = geo.Plane().distances(moved[None].double())[0]
    assert torch.allclose(per_place, metrics.stress1_sums(fitted, d.double(), dims=-1)[0])
    assert int(per_place.argmax()) == 3


def test_classical_mds_recovers_a_flat_configuration():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(10, 2))
    d = np.linalg.norm(truth[:, None] - truth[None], axis=-1)
    x = starts.classical_mds(d, 2)
    assert np.allclose(np.linalg.norm(x[:, None] - x[None], axis=-1), d, atol=1e-9)


def test_random_start_is_the_course_normalisation():
    x = starts.random_start(20, 2, np.random.default_rng(0))
    assert np.linalg.norm(np.linalg.norm(x[:, None] - x[None], axis=-1)) == pytest.approx(1.0)


def test_haversine_known_pairs():
    london, paris = (51.50853, -0.12574), (48.85341, 2.3488)
    assert geo.haversine(np.array(london), np.array(paris)) == pytest.approx(343.6, abs=1.0)
    quarter = geo.haversine(np.array([0.0, 0.0]), np.array([0.0, 90.0]))
    assert quarter == pytest.approx(np.pi / 2 * geo.EARTH_RADIUS_KM)


def test_azimuthal_projection_round_trip():
    latlon = np.array([[52.0, 4.0], [38.0, 23.7], [64.1, -21.9], [55.75, 37.6]])
    centre = geo.spherical_centre(latlon)
    back = geo.inverse_azimuthal_equidistant(geo.azimuthal_equidistant(latlon, centre), centre)
    assert np.allclose(back, latlon, atol=1e-9)


def test_procrustes_recovers_rotation_and_reflection():
    rng = np.random.default_rng(3)
    target = rng.normal(size=(12, 2))
    angle = 0.7
    rot = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) @ np.diag([-1.0, 1.0])
    source = target @ rot.T + np.array([5.0, -2.0])
    fit = align.procrustes(source, target)
    assert np.allclose(fit.apply(source), target, atol=1e-9)
    assert np.linalg.det(fit.rotation) == pytest.approx(-1.0)


def test_anchor_rule_puts_copenhagen_north_and_reykjavik_west():
    names = ["Copenhagen", "Rome", "Reykjavik", "Moscow"]
    coords = np.array([[0.0, 0.0], [0.0, 10.0], [-5.0, 3.0], [5.0, 3.0]])  # upside down, mirrored
    out = align.anchor_rule(coords, names).apply(coords)
    assert out[0, 1] > out[1, 1]
    assert abs(out[0, 0] - out[1, 0]) < 1e-9
    assert out[2, 0] < out[3, 0]
