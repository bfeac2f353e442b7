"""The estimator in a notebook, anchored places, and new places put on a fitted map.

Three measurements, each on GeoNames places of ``data/europe5000.csv`` (a random sample, seed 0):

1. ``MDS(metric="precomputed").fit_transform(D)`` timed in-process (best of 3 after a warm-up fit of each table),
   on the course's 36 cities and on 500 places, beside scikit-learn's ``MDS`` (classical start,
   ``n_init=1``) and s_gd2's ``mds_direct`` on the same matrix; stress-1 of each against the optimum
   (the lowest stress-1 any run reached, including a long L-BFGS run of ours).
2. Anchors: the 500 places as a names-and-distances matrix, with 30 of them anchored by their true
   latitude/longitude (``fit --data.anchors``), for several draws of the anchors, with raw and
   with weighted stress: the anchors' largest error and the other 470's median error, against the
   free fit's (same loss) after the best rigid alignment onto the true positions (the azimuthal
   equidistant projection about their centre).
3. New places: ``fit`` on 450 of the places, ``predict`` the other 50 from a matrix of their
   distances to the 450; their median error (after the best rigid alignment of the 450 onto the
   truth) against their median error in a fit of all 500.

    python benchmarks/estimator.py                 # writes benchmarks/results/estimator.json
    python benchmarks/estimator.py --busy 2        # 1. only, citymap and s_gd2 taking turns beside two busy-loop
    python benchmarks/estimator.py --busy 0        #   processes (or none), 5 calls each: results/estimator_busy.json

``--busy`` records the load average as the busy loops started and ended, ``threads.others_load()``
(what the thread policy reads), each call's seconds and the load as each tool's first and last call began.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from citymap_lightning import MDS, align, output
from citymap_lightning import geometry as geo
from citymap_lightning.metrics import stress1 as stress1_of

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "europe5000.csv"
REFERENCE = ROOT / "data" / "optim4ai_distances.npy"  # the course's 36 x 36 matrix, bundled


def places(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    with open(DATA, encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    pick = np.random.default_rng(seed).choice(len(rows), n, replace=False)
    return [rows[k][0] for k in pick], np.array([[float(rows[k][1]), float(rows[k][2])] for k in pick])


def stress1(x: np.ndarray, d: np.ndarray) -> float:
    i, j = np.triu_indices(len(d), 1)
    return float(stress1_of(np.linalg.norm(x[i] - x[j], axis=1), d[i, j], np.ones(len(i))))


def estimator_speed(repeats: int, tools: list[str] | None = None, optimum: bool = True) -> list[dict]:
    """Each tool on each table ``repeats`` times, the tools taking turns (side by side, at the same moments).

    ``seconds`` is the best call (issue 21: in-process, best of 3 after one warm-up call); the median
    and every call's seconds are kept too, and the load average (1 minute) as the first and last call began.
    """
    import s_gd2
    from sklearn.manifold import MDS as SklearnMDS

    names, latlon = places(500)
    cases = {"course 36": np.load(REFERENCE), "500 places": geo.distance_matrix(latlon)}
    rows = []
    for label, d in cases.items():
        i, j = np.triu_indices(len(d), 1)
        every = {
            "citymap MDS": lambda d=d: MDS(metric="precomputed").fit_transform(d),
            "scikit-learn MDS": lambda d=d: SklearnMDS(
                metric="precomputed", init="classical_mds", n_init=1, random_state=0
            ).fit_transform(d),  # fmt: skip
            "s_gd2 mds_direct": lambda d=d, i=i, j=j: s_gd2.mds_direct(
                len(d), d[i, j], w=np.ones(len(i)), random_seed=0
            ),  # fmt: skip
        }
        chosen = {tool: fn for tool, fn in every.items() if tools is None or tool in tools}
        for fn in chosen.values():  # warm-up: imports, first Trainer, and one call of each tool on each table
            fn()
        # the optimum: a long L-BFGS run of ours (3,000 epochs; without it, the lowest stress-1 of the tools)
        lowest = stress1(MDS(metric="precomputed", max_iter=3000, eps=0).fit_transform(d), d) if optimum else np.inf
        times: dict[str, list[float]] = {tool: [] for tool in chosen}
        loads: dict[str, list[float]] = {tool: [] for tool in chosen}
        out: dict[str, np.ndarray] = {}
        for _ in range(repeats):
            for tool, fn in chosen.items():
                loads[tool].append(os.getloadavg()[0])
                start = time.perf_counter()
                out[tool] = fn()
                times[tool].append(time.perf_counter() - start)
        found = [{"data": label, "tool": tool, "seconds": round(min(times[tool]), 4),
                  "median_seconds": round(float(np.median(times[tool])), 4),
                  "all_seconds": [round(t, 4) for t in times[tool]], "stress1": stress1(out[tool], d),
                  "load_average": [round(loads[tool][0], 2), round(loads[tool][-1], 2)]}
                 for tool in chosen]  # fmt: skip
        lowest = min([lowest] + [f["stress1"] for f in found])
        for f in found:
            f["over_optimum"] = round(f["stress1"] / lowest - 1, 5)
            f["optimum"] = lowest
            print(f, flush=True)
        rows += found
    return rows


def busy_loops(count: int) -> list[subprocess.Popen]:
    """``count`` processes spinning on a core each, as other users' work on a shared machine."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def others_load(threads) -> float | None:
    """What the thread policy reads (None for a package before it read the load)."""
    reading = getattr(threads, "others_load", None)
    return None if reading is None else round(reading(), 2)


def busy_speed(busy: int, repeats: int, out: Path) -> None:
    """:func:`estimator_speed` of citymap and s_gd2 beside ``busy`` busy-loop processes; appended to ``out``."""
    import torch
    from threadpoolctl import threadpool_info

    from citymap_lightning import threads

    others = busy_loops(busy)
    try:
        time.sleep(2.0 if busy else 0.0)  # the loops running before the first call
        before = {
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "others_load": others_load(threads),
        }
        rows = estimator_speed(repeats, ["citymap MDS", "s_gd2 mds_direct"], optimum=False)
        after = {"load_average": [round(v, 2) for v in os.getloadavg()], "others_load": others_load(threads)}
    finally:
        for process in others:
            process.kill()
            process.wait()
    speed = {r["data"]: {} for r in rows}
    for r in rows:
        speed[r["data"]][r["tool"]] = r
    ratios = {data: {"seconds": round(t["citymap MDS"]["seconds"] / t["s_gd2 mds_direct"]["seconds"], 3),
                     "median_seconds": round(t["citymap MDS"]["median_seconds"]
                                             / t["s_gd2 mds_direct"]["median_seconds"], 3),
                     "stress1": round(t["citymap MDS"]["stress1"] / t["s_gd2 mds_direct"]["stress1"], 5)}
              for data, t in speed.items()}  # fmt: skip
    run = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "busy": busy, "cpus": os.cpu_count(), "nice": os.nice(0),
        "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "blas_threads": sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}),
        "package": str(Path(threads.__file__).parent), "before": before, "after": after,
        "citymap_over_s_gd2": ratios, "rows": rows,
    }  # fmt: skip
    print(json.dumps({k: run[k] for k in ("busy", "before", "after", "citymap_over_s_gd2")}))
    runs = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps([*runs, run], indent=1) + "\n", encoding="utf-8")
    print(f"appended to {out}")


def write_matrix(path: Path, names: list[str], d: np.ndarray, rows: list[int], cols: list[int]) -> Path:
    """The rows ``rows`` and columns ``cols`` of ``d`` as a matrix CSV."""
    return output.write_matrix(path, [names[r] for r in rows], [names[c] for c in cols], d[np.ix_(rows, cols)])


def cli(*args: str) -> Path:
    """Run the CLI; the run's folder."""
    root = Path(args[args.index("--trainer.default_root_dir") + 1])
    subprocess.run([sys.executable, "-m", "citymap_lightning", *args, "--trainer.enable_progress_bar", "false"],
                   check=True, capture_output=True, cwd=root.parent)  # fmt: skip
    return sorted((root / "lightning_logs").glob("version_*"))[-1]


def read_coordinates(path: Path) -> dict[str, np.ndarray]:
    with open(path, encoding="utf-8") as f:
        return {r[0]: np.array([float(v) for v in r[1:]]) for r in list(csv.reader(f))[1:]}


def read_geojson(path: Path) -> dict[str, np.ndarray]:
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    return {f["properties"]["name"]: np.array(f["geometry"]["coordinates"][::-1]) for f in features}


def rigid_errors(coords: dict[str, np.ndarray], names: list[str], latlon: np.ndarray, on: list[str]) -> np.ndarray:
    """km errors of ``names`` after the rigid alignment of the places ``on`` onto their true projected positions."""
    index = {n: k for k, n in enumerate(names)}
    truth, centre = align.true_plane(latlon)
    fit = align.procrustes(np.array([coords[n] for n in on]), truth[[index[n] for n in on]])
    moved = fit.apply(np.array([coords[n] for n in names]))
    return geo.haversine(geo.inverse_azimuthal_equidistant(moved, centre), latlon)


COMMON = ("--model.loss", "stress", "--data.gazetteer", "false", "--trainer.max_epochs", "200")
LOSSES = ("stress", "weighted_stress")
"""Anchored fits are measured with raw stress and with weighted stress, each against the free fit of the same loss."""


def anchors(folder: Path, draws: int) -> list[dict]:
    names, latlon = places(500)
    d = geo.distance_matrix(latlon)
    matrix = write_matrix(folder / "d500.csv", names, d, list(range(500)), list(range(500)))
    rows = []
    for loss in LOSSES:
        common = (*COMMON, "--model.loss", loss)  # the later option wins
        free_dir = cli("fit", "--data.path", str(matrix), *common, "--trainer.default_root_dir",
                       str(folder / f"free_{loss}"))  # fmt: skip
        free_coords = read_coordinates(free_dir / "coordinates.csv")
        free = rigid_errors(free_coords, names, latlon, names)
        for draw in range(draws):
            chosen = np.random.default_rng(100 + draw).choice(500, 30, replace=False)
            path = folder / f"anchors{draw}.csv"
            with open(path, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["name", "latitude", "longitude"])
                writer.writerows([names[k], *latlon[k]] for k in chosen)
            run = cli("fit", "--data.path", str(matrix), "--data.anchors", str(path), *common,
                      "--trainer.default_root_dir", str(folder / f"anchored{draw}_{loss}"))  # fmt: skip
            found = read_geojson(run / "coordinates.geojson")
            error = geo.haversine(np.array([found[n] for n in names]), latlon)
            others = np.setdiff1d(np.arange(500), chosen)
            row = {
                "loss": loss, "draw": draw, "anchors_max_error_km": float(error[chosen].max()),
                "others_median_error_km": float(np.median(error[others])),
                "free_fit_others_median_error_km": float(np.median(free[others])),
            }  # fmt: skip
            row["ratio"] = round(row["others_median_error_km"] / row["free_fit_others_median_error_km"], 3)
            # what a user without anchors would do: the free map moved rigidly onto the 30 known positions only
            on_anchors = rigid_errors(free_coords, names, latlon, [names[k] for k in chosen])
            row["free_fit_on_anchors_others_median_error_km"] = float(np.median(on_anchors[others]))
            row["ratio_to_free_fit_on_anchors"] = round(
                row["others_median_error_km"] / row["free_fit_on_anchors_others_median_error_km"], 3
            )
            print(row)
            rows.append(row)
    return rows


def new_places(folder: Path) -> dict:
    names, latlon = places(500)
    d = geo.distance_matrix(latlon)
    fitted, new = list(range(450)), list(range(450, 500))
    whole = write_matrix(folder / "d500.csv", names, d, list(range(500)), list(range(500)))
    part = write_matrix(folder / "d450.csv", names, d, fitted, fitted)
    extra = write_matrix(folder / "new50.csv", names, d, new, fitted)
    all_dir = cli("fit", "--data.path", str(whole), *COMMON, "--trainer.default_root_dir", str(folder / "all"))
    fit_dir = cli("fit", "--data.path", str(part), *COMMON, "--trainer.default_root_dir", str(folder / "part"))
    start = time.perf_counter()
    pred_dir = cli("predict", "--ckpt_path", str(fit_dir / "checkpoints" / "last.ckpt"), "--data.path", str(extra),
                   "--trainer.default_root_dir", str(folder / "pred"))  # fmt: skip
    seconds = time.perf_counter() - start
    fitted_names, new_names = [names[k] for k in fitted], [names[k] for k in new]
    in_all = rigid_errors(read_coordinates(all_dir / "coordinates.csv"), names, latlon, names)[new]
    coords = {**read_coordinates(fit_dir / "coordinates.csv"), **read_coordinates(pred_dir / "coordinates.csv")}
    placed = rigid_errors(coords, names, latlon, fitted_names)[new]
    row = {
        "new_places": len(new_names), "predict_command_seconds": round(seconds, 2),
        "median_error_placed_km": float(np.median(placed)), "median_error_in_fit_of_all_km": float(np.median(in_all)),
    }  # fmt: skip
    row["ratio"] = round(row["median_error_placed_km"] / row["median_error_in_fit_of_all_km"], 3)
    print(row)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "estimator.json"))
    parser.add_argument("--busy", type=int, default=None, metavar="N",
                        help="only the speed of citymap against s_gd2, beside N busy-loop processes (0: as the machine "
                             "is); each run is appended to results/estimator_busy.json")  # fmt: skip
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.busy is not None:
        busy_speed(args.busy, max(args.repeats, 5), ROOT / "benchmarks" / "results" / "estimator_busy.json")
        return
    results = {"estimator": estimator_speed(args.repeats)}
    with tempfile.TemporaryDirectory() as tmp:
        results["anchors"] = anchors(Path(tmp), args.draws)
        results["new_places"] = new_places(Path(tmp))
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
