"""The three table kinds (dense matrix, latitude/longitude, sparse pairs) from file to map, through the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EUROPE, QUIET, ROOT, event_tags, map_stress1, map_tolerance, read_coordinates, run_dir

from citymap_lightning import geometry as geo
from citymap_lightning import starts
from citymap_lightning.cli import main
from citymap_lightning.readers import from_matrix, load_table
from citymap_lightning.tables import MatrixTable, PairTable, PlacesTable


def places(n: int) -> PlacesTable:
    """The n most populous places of the bundled 5,000."""
    big = load_table(ROOT / "data" / "europe5000.csv")
    return PlacesTable(names=big.names[:n], latlon=big.latlon[:n])


def road_like_pairs(table: PlacesTable, neighbours: int = 8, partners: int = 8, seed: int = 0):
    """Each place with its nearest neighbours and a few random far partners, each pair once: a road network's shape."""
    rng = np.random.default_rng(seed)
    n = table.n
    i = np.repeat(np.arange(n), neighbours + partners)
    j = np.concatenate([table.nearest(neighbours), rng.integers(0, n, (n, partners))], axis=1).ravel()
    keep = i != j
    pairs = np.unique(np.sort(np.stack([i[keep], j[keep]], axis=1), axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1], table.pair_distances(pairs[:, 0], pairs[:, 1])


def write_pairs(path, names, i, j, d):
    lines = ["source,target,distance"] + [f"{names[a]},{names[b]},{v:.4f}" for a, b, v in zip(i, j, d, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_readers_give_each_kind_and_the_same_distances(tmp_path):
    table = load_table(EUROPE)
    matrix = table.matrix()
    csv_path = tmp_path / "m.csv"
    rows = [",".join(["", *table.names])] + [
        ",".join([name, *(f"{v:.6f}" for v in row)]) for name, row in zip(table.names, matrix, strict=True)
    ]
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    i, j = np.triu_indices(36, 1)
    pairs = load_table(write_pairs(tmp_path / "p.csv", table.names, i, j, matrix[i, j]))
    dense = load_table(csv_path)
    assert isinstance(table, PlacesTable) and isinstance(dense, MatrixTable) and isinstance(pairs, PairTable)
    for other in (dense, pairs):
        assert other.complete and other.n_known_pairs == 630
        assert np.allclose(other.matrix(), matrix, atol=1e-3)
        assert np.allclose(other.pair_distances(i[:50], j[:50]), matrix[i[:50], j[:50]], atol=1e-3)
        assert np.allclose(other.columns(np.array([0, 5])), matrix[:, [0, 5]], atol=1e-3)
    # a pair list holds COO arrays, nothing n x n
    assert pairs.i.shape == pairs.j.shape == pairs.d.shape == pairs.w.shape == (630,)
    assert (pairs.i < pairs.j).all()


def test_shortest_paths_through_the_known_pairs_match_a_dense_search():
    from scipy.sparse.csgraph import shortest_path

    table = places(200)
    i, j, d = road_like_pairs(table, neighbours=4, partners=1)
    sparse = PairTable(names=table.names, i=i, j=j, d=d, w=np.ones(len(i)))
    dense = np.full((200, 200), np.inf)
    dense[i, j] = dense[j, i] = d
    expected = shortest_path(np.where(np.isfinite(dense), dense, 0), directed=False)
    cols = np.array([0, 17, 150])
    assert np.allclose(sparse.path_columns(cols), expected[:, cols])
    assert np.allclose(starts.full_distances(sparse), expected)


@pytest.mark.parametrize("table_file", ["places", "matrix", "npy", "pairs"])
def test_every_kind_reproduces_the_course_map(tmp_path, table_file):
    table = load_table(EUROPE)
    matrix = table.matrix()
    i, j = np.triu_indices(36, 1)
    if table_file == "places":
        path = EUROPE
        extra = []
    elif table_file == "npy":
        np.save(tmp_path / "d.npy", matrix)
        (tmp_path / "names.txt").write_text("\n".join(table.names) + "\n", encoding="utf-8")
        path, extra = tmp_path / "d.npy", ["--data.names", str(tmp_path / "names.txt")]
    elif table_file == "matrix":
        path, extra = tmp_path / "m.csv", []
        rows = [",".join(["", *table.names])]
        rows += [",".join([n, *(f"{v:.6f}" for v in r)]) for n, r in zip(table.names, matrix, strict=True)]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    else:
        path, extra = write_pairs(tmp_path / "p.csv", table.names, i, j, matrix[i, j]), []
    main(["fit", "--data.path", str(path), "--trainer.default_root_dir", str(tmp_path / "run"), *QUIET, *extra])
    coords = read_coordinates(run_dir(tmp_path / "run") / "coordinates.csv")
    x = np.stack([coords[name] for name in table.names])
    fitted = np.linalg.norm(x[i] - x[j], axis=1)
    stress1 = np.sqrt(((fitted - matrix[i, j]) ** 2).sum() / (matrix[i, j] ** 2).sum())
    assert stress1 == pytest.approx(0.002167, abs=2e-5)  # the course's optimum, whatever the table's kind


@pytest.mark.parametrize("limit", ["5000", "0"], ids=["all-pairs-batch", "pair-batches"])
def test_a_sparse_pair_list_fits_without_any_n_by_n_array(tmp_path, monkeypatch, limit):
    table = places(300)
    i, j, d = road_like_pairs(table)
    path = write_pairs(tmp_path / "roads.csv", table.names, i, j, d)

    def refuse(*args, **kwargs):
        raise AssertionError("an n x n array was built for a sparse table")

    # the continuation start also tries classical MDS of the shortest paths up to 1,000 places (8 MB of them
    # at 1,000): starts.full_distances is allowed there; the fit itself builds no n x n array
    for owner, name in [(PairTable, "matrix"), (PairTable, "weight_matrix"), (geo, "distance_matrix")]:
        monkeypatch.setattr(owner, name, refuse)
    main(["fit", "--config", str(ROOT / "configs" / "large.yaml"), "--data.path", str(path),
          "--data.full_batch_limit", limit, "--map.max_pairs_places", "0",
          "--trainer.default_root_dir", str(tmp_path / "run"), *QUIET])  # fmt: skip
    monkeypatch.undo()
    log_dir = run_dir(tmp_path / "run")
    # the package saw 12 % of the pairs; the map is right on all of them (complete-table optimum: 0.00118)
    assert len(i) < 0.13 * table.n_pairs
    assert map_stress1(log_dir / "coordinates.csv", table) <= 0.0016
    assert event_tags(log_dir).Scalars("hp/stress1")[-1].value <= 0.0016  # over the known pairs
    assert {"map.png", "shepard.png", "city_error.png"} <= {p.name for p in log_dir.iterdir()}
    assert not (log_dir / "pairs_fitted.csv").exists()


def test_fitted_map_comes_from_the_model(tmp_path):
    import lightning.pytorch as pl

    from citymap_lightning import CityMap, DistanceDataModule, FittedMap

    data = DistanceDataModule()
    model = CityMap(num_places=data.num_places)
    pl.Trainer(max_epochs=60, default_root_dir=tmp_path, enable_progress_bar=False, logger=False,
               enable_checkpointing=False).fit(model, data)  # fmt: skip
    fit = model.fitted_map()
    assert isinstance(fit, FittedMap)
    assert fit.names == data.names and fit.coords.shape == (36, 2) and fit.unit == "km"
    assert fit.stress1 == pytest.approx(0.002167, abs=2e-5)
    assert fit.place_share.sum() == pytest.approx(1.0) and (fit.place_share >= 0).all()
    assert np.abs(fit.coords.mean(axis=0)).max() < map_tolerance(fit.coords, relative=1e-12)  # origin: the centroid
    positions = fit.as_dict()
    assert positions["Copenhagen"][1] > positions["Rome"][1] and positions["Reykjavik"][0] < positions["Moscow"][0]
    assert geo.haversine(fit.latlon, data.table.latlon).max() < 100  # km
    assert fit.radius is None


def test_a_matrix_row_with_an_odd_cell_still_names_it(tmp_path):
    text = ",A,B,C\nA,0,1,2\nB,1,0,4_5\nC,2,4_5,0\n"
    path = tmp_path / "m.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"row 3 \(B\), column C: '4_5' is not a number"):
        load_table(path)
    dense = from_matrix(np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0.0]]), ["A", "B", "C"])
    assert dense.complete and dense.unit_weights


@pytest.mark.slow
def test_weighted_stress_of_a_sparse_pair_list_reaches_its_optimum(tmp_path):
    """Weighted stress over a road-shaped pair list, fitted by Guttman transforms: L-BFGS had stalled.

    300 places with their 4 nearest neighbours and 2 far partners: after the default 60 epochs
    L-BFGS stood at weighted stress 14.0 (1.68 after 600). Guttman transforms at 10 per epoch
    stood at 1.099 (1.079 after 600 epochs); at 50 per epoch, as for every table with missing
    pairs, at 1.081.
    """
    table = places(300)
    i, j, d = road_like_pairs(table, neighbours=4, partners=2)
    path = write_pairs(tmp_path / "roads.csv", table.names, i, j, d)
    main(["fit", "--data.path", str(path), "--model.loss", "weighted_stress", "--data.gazetteer", "false",
          "--trainer.default_root_dir", str(tmp_path / "run"), *QUIET])  # fmt: skip
    log_dir = run_dir(tmp_path / "run")
    coords = read_coordinates(log_dir / "coordinates.csv")
    x = np.stack([coords[name] for name in table.names])
    fitted = np.linalg.norm(x[i] - x[j], axis=1)
    assert ((fitted - d) ** 2 / d**2).sum() < 1.09
    assert map_stress1(log_dir / "coordinates.csv", table) < 0.02  # every pair, known or not: 0.013
