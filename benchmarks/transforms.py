"""Interval and ordinal transforms on GeoNames places (issue #13's targets), against the ratio fit of the same data.

- Travel times ``t = 20 + d / 1.5`` minutes (``d`` great-circle km) with 5% multiplicative noise
  (symmetric), for 300 random places of ``data/europe5000.csv``, as a matrix CSV, raw stress:
  ``a`` of the interval fit, and each fit's median position error after the best similarity fit
  (rotation, reflection, scale, translation) onto the places' true projected positions.
- ``sqrt(d)`` for the same places: the ordinal and the ratio fit's stress-1 against the true
  distances, after the best similarity fit (the map's distances scaled by the best factor).

    python benchmarks/transforms.py        # writes benchmarks/results/transforms.json
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from citymap_lightning import align, geo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from estimator import places, read_coordinates, write_matrix  # noqa: E402


def fit(path: Path, transform: str, folder: Path, loss: str = "stress") -> tuple[dict[str, np.ndarray], str, float]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "citymap_lightning", "fit", "--data.path", str(path),
                          "--model.loss", loss, "--model.transform", transform, "--data.gazetteer", "false",
                          "--trainer.max_epochs", "100", "--trainer.enable_progress_bar", "false",
                          "--trainer.default_root_dir", str(folder)],
                         check=True, capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - start
    (coordinates,) = folder.rglob("coordinates.csv")
    return read_coordinates(coordinates), out.stdout + out.stderr, seconds


def similarity_errors(coords: dict[str, np.ndarray], names: list[str], latlon: np.ndarray) -> np.ndarray:
    truth, _ = align.true_plane(latlon)
    x = np.array([coords[n] for n in names])
    fit, scale = align.similarity(x, truth)
    return np.linalg.norm(scale * (x - fit.centre) @ fit.rotation + fit.offset - truth, axis=1)


def stress1_after_similarity(coords: dict[str, np.ndarray], names: list[str], d: np.ndarray) -> float:
    x = np.array([coords[n] for n in names])
    i, j = np.triu_indices(len(names), 1)
    fitted, true = np.linalg.norm(x[i] - x[j], axis=1), d[i, j]
    scale = (fitted * true).sum() / (fitted * fitted).sum()
    return float(np.sqrt(((scale * fitted - true) ** 2).sum() / (true**2).sum()))


def main() -> None:
    names, latlon = places(300, seed=3)
    d = geo.distance_matrix(latlon)
    rng = np.random.default_rng(1)
    noise = np.exp(0.05 * rng.standard_normal(d.shape))
    noise = np.sqrt(noise * noise.T)
    times = (20 + d / 1.5) * noise
    np.fill_diagonal(times, 0.0)
    results: dict = {"travel_times": {}, "sqrt": {}}
    every = list(range(len(names)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        times_csv = write_matrix(tmp / "times.csv", names, times, every, every)
        for loss in ("stress", "weighted_stress"):  # the targets are raw stress; weighted beside them
            for transform in ("ratio", "interval"):
                coords, log, seconds = fit(times_csv, transform, tmp / f"times_{transform}_{loss}", loss)
                errors = similarity_errors(coords, names, latlon)
                row = {"median_error_km": float(np.median(errors)), "seconds": seconds}
                found = re.search(r"given = ([-0-9.e]+) \+ ([-0-9.e]+) x map distance", log)
                if found:
                    row["a"], row["b"] = float(found.group(1)), float(found.group(2))
                key = transform if loss == "stress" else f"{transform} ({loss})"
                results["travel_times"][key] = row
                print(key, row)
        sqrt_csv = write_matrix(tmp / "sqrt.csv", names, np.sqrt(d), every, every)
        for transform in ("ratio", "ordinal"):
            coords, _, seconds = fit(sqrt_csv, transform, tmp / f"sqrt_{transform}")
            row = {"stress1_true_distances": stress1_after_similarity(coords, names, d), "seconds": seconds,
                   "median_error_km": float(np.median(similarity_errors(coords, names, latlon)))}  # fmt: skip
            results["sqrt"][transform] = row
            print(transform, row)
    out = ROOT / "benchmarks" / "results" / "transforms.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
