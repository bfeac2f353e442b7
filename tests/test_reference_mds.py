"""The conformance reference itself: its gradients against finite differences, and its minimum on known cases."""

from __future__ import annotations

import numpy as np
import pytest
import reference_mds as ref


def _problem(geometry: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """12 points, a random half of their pairs, noisy given values and random weights."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(12, ref.GEOMETRY_DIM[geometry]))
    i, j = np.triu_indices(12, 1)
    keep = rng.random(len(i)) < 0.6
    i, j = i[keep], j[keep]
    d = ref.map_distances(x, i, j, geometry, 1.0) * rng.uniform(0.7, 1.3, len(i))
    return x, i, j, d, rng.uniform(0.5, 2.0, len(i))


@pytest.mark.parametrize("geometry", ["plane", "space", "sphere"])
@pytest.mark.parametrize("loss", ref.LOSSES)
@pytest.mark.parametrize("transform", ["ratio", "interval", "ordinal"])
def test_gradient_matches_finite_differences(geometry: str, loss: str, transform: str) -> None:
    if loss == "course" and transform != "ratio":
        pytest.skip("the course objective takes no transform")
    x, i, j, d, w = _problem(geometry)
    radius = 1.3
    value, grad, d_radius = ref.value_and_grad(loss, x, i, j, d, w, geometry, radius, transform)
    assert value == pytest.approx(ref.objective(loss, x, i, j, d, w, geometry, radius, transform), rel=1e-12)
    h = 1e-6
    numeric = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        numeric[k] = (
            ref.objective(loss, up, i, j, d, w, geometry, radius, transform)
            - ref.objective(loss, down, i, j, d, w, geometry, radius, transform)
        ) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7 * np.abs(numeric).max())
    if geometry == "sphere":
        up = ref.objective(loss, x, i, j, d, w, geometry, radius + h, transform)
        down = ref.objective(loss, x, i, j, d, w, geometry, radius - h, transform)
        assert d_radius == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-7 * abs(value))


def test_objectives_by_hand() -> None:
    """Three points on a line, one pair known at twice its map distance."""
    x = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    i, j, d = np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([6.0, 4.0, 5.0])
    assert ref.objective("stress", x, i, j, d) == 9.0
    assert ref.objective("weighted_stress", x, i, j, d) == 9.0 / 36
    assert ref.objective("sammon", x, i, j, d) == 9.0 / 6
    assert ref.objective("course", x, i, j, d) == (9.0 - 36.0) ** 2
    assert ref.objective("stress", x, i, j, d, w=np.array([2.0, 1.0, 1.0])) == 18.0
    # a map exactly proportional to the given values leaves nothing under interval or ordinal
    assert ref.objective("stress", 2 * x, i, j, np.array([3.0, 4.0, 5.0]) * 4, transform="interval") < 1e-28
    assert ref.objective("stress", x, i, j, np.array([1.0, 2.0, 3.0]), transform="ordinal") == 0.0


def test_great_circle_on_a_sphere_of_the_earth() -> None:
    """Paris-London on the sphere by atan2 and by haversine agree (about 344 km)."""
    latlon = np.array([[48.8566, 2.3522], [51.5074, -0.1278]])
    i, j = np.array([0]), np.array([1])
    haversine = ref.great_circle(latlon, i, j)
    on_sphere = ref.map_distances(ref.EARTH_RADIUS_KM * ref.latlon_to_unit(latlon), i, j, "sphere")
    assert haversine[0] == pytest.approx(343.5, abs=1.0)
    assert on_sphere[0] == pytest.approx(haversine[0], rel=1e-12)


@pytest.mark.parametrize("loss", ref.LOSSES)
def test_minimum_of_an_exact_table_is_zero(loss: str) -> None:
    """Distances of a flat configuration are fitted exactly from the classical start alone (no true start given)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(15, 2)) * 100
    i, j = np.triu_indices(15, 1)
    d = ref.map_distances(x, i, j)
    result = ref.reference_minimize(loss, 15, i, j, d)
    scale = ref.objective(loss, np.zeros_like(x), i, j, d)
    assert result.value <= 1e-14 * scale


def test_anchors_are_held_and_the_rest_fitted() -> None:
    """Three anchored points stay put; the others reach the exact fit around them."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 2)) * 50
    i, j = np.triu_indices(10, 1)
    d = ref.map_distances(x, i, j)
    result = ref.reference_minimize("stress", 10, i, j, d, anchors={0: x[0], 4: x[4], 7: x[7]})
    np.testing.assert_allclose(result.coords[[0, 4, 7]], x[[0, 4, 7]], atol=1e-9)
    np.testing.assert_allclose(result.coords, x, atol=1e-5)


def test_a_sparse_table_is_better_from_the_continuation_than_from_classical_mds() -> None:
    """On a road-shaped pair list, raw stress from the classical start folds; the reference does not stop there."""
    table = ref.pairs_table(60)
    result = ref.reference_minimize(
        "stress", table.n, table.i, table.j, table.d, true=ref.true_start(table.latlon, "plane")
    )
    assert result.starts["classical"] > 10 * result.value
    assert result.starts["continuation"] <= 1.0001 * result.value
    assert result.starts["true"] <= 1.0001 * result.value
