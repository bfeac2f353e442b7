"""``citymap_lightning.MDS``: scikit-learn's checks, missing pairs, names in and out, transform, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import COURSE_DISTANCES, EUROPE, ROOT, stress1

from citymap_lightning import geometry as geo
from citymap_lightning.readers import load_table

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from citymap_lightning import MDS  # noqa: E402

TABLE = load_table(EUROPE)
NAMES = TABLE.names
D = np.load(COURSE_DISTANCES)
RAW_STRESS_OPTIMUM = 0.0020192  # stress-1 of the course's matrix at raw stress's optimum (L-BFGS to convergence)


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["euclidean", "precomputed"])
def test_scikit_learn_checks_pass(metric):
    check_estimator(MDS(metric=metric))


def test_course_matrix_reaches_the_optimum():
    mds = MDS(metric="precomputed", random_state=0)
    embedding = mds.fit_transform(D)
    assert embedding.shape == (36, 2) and embedding is mds.embedding_
    assert mds.stress_ <= RAW_STRESS_OPTIMUM * 1.01
    assert stress1(embedding, D) == pytest.approx(mds.stress_, rel=1e-3)  # stress_ is stress-1, in input units
    assert 1 <= mds.n_iter_ <= mds.max_iter
    assert mds.fitted_map_.names == [str(k) for k in range(36)]


def test_nan_marks_missing_pairs():
    d = geo.distance_matrix(TABLE.latlon)
    rng = np.random.default_rng(0)
    hide = np.triu(rng.random(d.shape) < 0.4, 1)
    given = d.copy()
    given[hide | hide.T] = np.nan
    mds = MDS(metric="precomputed").fit(given)
    assert mds.fitted_map_.stress1 < 0.01
    assert stress1(mds.embedding_, d) < 0.01  # the hidden pairs come out right too
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MDS().fit(np.where(np.isnan(given), np.nan, 1.0)[:, :5])  # NaN is missing only for a distance matrix


def test_weights_leave_pairs_out():
    d = geo.distance_matrix(TABLE.latlon)
    wrong = d.copy()
    wrong[0, 1] = wrong[1, 0] = 10 * d[0, 1]  # one grossly wrong pair
    weights = np.ones_like(d)
    weights[0, 1] = weights[1, 0] = 0.0
    good = MDS(metric="precomputed").fit(wrong, weights=weights)
    assert stress1(good.embedding_, d) < 0.01


def test_dataframe_names_in_and_out():
    d = pd.DataFrame(geo.distance_matrix(TABLE.latlon), index=NAMES, columns=NAMES)
    mds = MDS(metric="precomputed").set_output(transform="pandas")
    out = mds.fit_transform(d)
    assert isinstance(out, pd.DataFrame) and list(out.index) == NAMES and list(out.columns) == ["x", "y"]
    assert mds.fitted_map_.names == NAMES
    placed = mds.transform(d.iloc[:3])
    assert list(placed.index) == NAMES[:3]
    assert np.abs(placed.to_numpy() - out.to_numpy()[:3]).max() < 1.0  # km: the fitted places land on themselves


def test_transform_puts_new_places_on_the_map():
    latlon = pd.DataFrame(TABLE.latlon, index=NAMES, columns=["latitude", "longitude"])
    new = ["Paris", "Warsaw", "Istanbul", "Dublin"]
    fitted = latlon.drop(index=new)
    mds = MDS(metric="haversine").fit(fitted)
    coords = mds.transform(latlon.loc[new])
    error = geo.haversine(mds.fitted_map_.to_latlon(coords), latlon.loc[new].to_numpy())
    assert np.median(error) < 60
    d_new = geo.haversine(latlon.loc[new].to_numpy()[:, None], fitted.to_numpy()[None])
    by_distance = MDS(metric="precomputed").fit(geo.distance_matrix(fitted.to_numpy()))
    placed, placed_stress1 = by_distance.place(d_new)
    assert placed.shape == (4, 2) and placed_stress1.max() < 0.01  # each fits its distances to the fitted places
    d_new[1, 2:] = np.nan
    with pytest.raises(ValueError, match="new place 1 has 2 known distance"):
        by_distance.transform(d_new)


def test_errors_are_plain_value_errors():
    with pytest.raises(ValueError, match="square"):
        MDS(metric="precomputed").fit(D[:, :5])
    with pytest.raises(ValueError, match="a minimum of 3 is required"):
        MDS().fit(np.array([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="not a place of"):
        MDS(metric="precomputed").fit(D, anchors={"Atlantis": (0, 0)})
    with pytest.raises(ValueError, match="latitude and longitude"):
        MDS(metric="haversine").fit(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="n_components=3"):
        MDS(geometry="sphere").fit(TABLE.latlon)


@pytest.mark.slow
def test_the_package_imports_without_scikit_learn():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import citymap_lightning\n"
        "assert citymap_lightning.CityMap\n"
        "try:\n    citymap_lightning.MDS\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "pip install 'citymap-lightning[sklearn]'" in out.stdout
