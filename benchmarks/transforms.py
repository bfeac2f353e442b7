"""Interval and ordinal transforms on GeoNames places (issue #13's targets), against the ratio fit of the same data.

- Travel times ``t = 20 + d / 1.5`` minutes (``d`` great-circle km) with 5% multiplicative noise
  (symmetric), for 300 random places of ``data/europe5000.csv``, as a matrix CSV, raw stress:
  ``a`` of the interval fit, and each fit's median position error after the best similarity fit
  (rotation, reflection, scale, translation) onto the places' true projected positions; beside
  them the noise floor (a ratio fit of ``d * noise``, the same noise without the intercept) and
  four other samples of places and noise.
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

from citymap_lightning import align
from citymap_lightning import geometry as geo

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


def travel_times(seed: int, noise_seed: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """300 places, their great-circle km, the noise factors, and the noisy travel times ``(20 + d / 1.5) * noise``."""
    names, latlon = places(300, seed=seed)
    d = geo.distance_matrix(latlon)
    rng = np.random.default_rng(noise_seed)
    noise = np.exp(0.05 * rng.standard_normal(d.shape))
    noise = np.sqrt(noise * noise.T)
    times = (20 + d / 1.5) * noise
    np.fill_diagonal(times, 0.0)
    return names, latlon, d, noise, times


def main() -> None:
    names, latlon, d, noise, times = travel_times(3, 1)
    results: dict = {"travel_times": {}, "sqrt": {}, "travel_times_other_samples": []}
    every = list(range(len(names)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        times_csv = write_matrix(tmp / "times.csv", names, times, every, every)
        # the noise floor of raw stress: a ratio fit of the distances with the same noise and no
        # intercept (d * noise), what a fit that knew a and b would reach, less the noise on a itself
        floor_csv = write_matrix(tmp / "floor.csv", names, d * noise, every, every)
        coords, _, _ = fit(floor_csv, "ratio", tmp / "floor")
        results["travel_times"]["noise floor"] = {
            "median_error_km": float(np.median(similarity_errors(coords, names, latlon)))
        }
        print("noise floor", results["travel_times"]["noise floor"])
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
        for seed in (10, 11, 12, 13):  # other samples of places and noise, raw stress
            other_names, other_latlon, _, _, other_times = travel_times(seed, seed + 1)
            path = write_matrix(tmp / f"times{seed}.csv", other_names, other_times, every, every)
            row = {"seed": seed}
            for transform in ("ratio", "interval"):
                coords, _, _ = fit(path, transform, tmp / f"times{seed}_{transform}")
                errors = similarity_errors(coords, other_names, other_latlon)
                row[f"{transform}_median_error_km"] = float(np.median(errors))
            row["ratio_over_interval"] = round(row["ratio_median_error_km"] / row["interval_median_error_km"], 3)
            results["travel_times_other_samples"].append(row)
            print(row)
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
