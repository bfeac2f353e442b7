"""Bootstrap ellipses on GeoNames places (issue #13's targets).

200 random places of ``data/europe5000.csv``; each pair's great-circle distance gets multiplicative
log-normal noise with the root mean square of its two places' noise levels: 5% for 180 places, 15%
for 20. ``fit --model.bootstrap 50`` (raw stress), beside the same command without bootstrap:

- coverage: the share of places whose true position (moved into the map's frame by the best
  similarity fit of the main map onto the true projected positions) lies inside its 95% ellipse;
- the 20 noisier places' median semi-major axis against the others';
- the whole command's wall time against the single fit's (median of ``--repeats``).

    python benchmarks/bootstrap.py          # writes benchmarks/results/bootstrap.json
"""

from __future__ import annotations

import argparse
import csv
import json
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


def run(path: Path, folder: Path, *extra: str) -> tuple[Path, float]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "citymap_lightning", "fit", "--data.path", str(path),
                    "--model.loss", "stress", "--data.gazetteer", "false", "--trainer.enable_progress_bar", "false",
                    "--trainer.default_root_dir", str(folder), *extra], check=True, capture_output=True)  # fmt: skip
    seconds = time.perf_counter() - start
    return sorted((folder / "lightning_logs").glob("version_*"))[-1], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    names, latlon = places(200, seed=7)
    d = geo.distance_matrix(latlon)
    rng = np.random.default_rng(2)
    sigma = np.full(len(names), 0.05)
    sigma[:20] = 0.15
    level = np.sqrt((sigma[:, None] ** 2 + sigma[None, :] ** 2) / 2)
    z = np.triu(rng.standard_normal(d.shape), 1)
    noisy = d * np.exp(level * (z + z.T))
    every = list(range(len(names)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = write_matrix(tmp / "noisy.csv", names, noisy, every, every)
        times = {"bootstrap": [], "single": []}
        for k in range(args.repeats):
            boot_dir, seconds = run(path, tmp / f"boot{k}", "--model.bootstrap", "50")
            times["bootstrap"].append(seconds)
            times["single"].append(run(path, tmp / f"single{k}")[1])
        coords = read_coordinates(boot_dir / "coordinates.csv")
        with open(boot_dir / "uncertainty.csv", encoding="utf-8") as f:
            table = {r["name"]: r for r in csv.DictReader(f)}
    x = np.array([coords[n] for n in names])
    truth, _ = align.true_plane(latlon)
    fit, scale = align.similarity(x, truth)
    in_map = ((truth - fit.offset) @ fit.rotation.T) / scale + fit.centre  # the truth in the map's frame
    inside = []
    for k, name in enumerate(names):
        row = table[name]
        major, minor, angle = float(row["semi_major"]), float(row["semi_minor"]), np.radians(float(row["angle_deg"]))
        u = np.array([np.cos(angle), np.sin(angle)])
        offset = in_map[k] - x[k]
        inside.append((offset @ u / major) ** 2 + (offset @ np.array([-u[1], u[0]]) / max(minor, 1e-12)) ** 2 <= 1)
    semi = np.array([float(table[n]["semi_major"]) for n in names])
    result = {
        "coverage": float(np.mean(inside)),
        "median_semi_major_noisy_km": float(np.median(semi[:20])),
        "median_semi_major_others_km": float(np.median(semi[20:])),
        "seconds_bootstrap": float(np.median(times["bootstrap"])),
        "seconds_single": float(np.median(times["single"])),
    }
    result["noisy_over_others"] = result["median_semi_major_noisy_km"] / result["median_semi_major_others_km"]
    result["time_ratio"] = result["seconds_bootstrap"] / result["seconds_single"]
    print(json.dumps(result, indent=1))
    out = ROOT / "benchmarks" / "results" / "bootstrap.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
