"""Whole-run benchmark of this project against the peers on the same places CSV.

Each run is a separate Python process, timed from outside (wall time and peak memory through
``/usr/bin/time``), alternating between the tools; stress-1 is computed by this script from each
tool's output against the great-circle distances. Peers come from the optional extra:
``pip install -e ".[bench]"`` (scikit-learn, s_gd2). This project runs ``configs/large.yaml``
(one full-matrix batch up to 5,000 places, pair batches above); ``citymap-pairs`` forces pair
batches at any size, and ``citymap-ddp`` runs them under DDP with 2 CPU processes. Sizes above
5,000 come from ``data/generated/europe50000.csv`` (``python scripts/make_datasets.py --large``);
there stress-1 is computed on 1,000,000 random pairs.

    python benchmarks/peers.py --sizes 500 2000 5000 --repeats 3
    python benchmarks/peers.py --sizes 50000 --repeats 1 --tools citymap
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from citymap_lightning import geometry as geo
from citymap_lightning.readers import load_table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "europe5000.csv"
LARGE = ROOT / "data" / "generated" / "europe50000.csv"
LIMITS = {"sklearn": 2000, "classical": 10000, "s_gd2": 20000}
"""Largest n given to each peer: beyond them the n x n matrix (s_gd2: its condensed vector and
weights, 20 GB at 50,000) does not fit this machine's memory, or the run takes hours."""

PEER = r"""
import csv, sys
import numpy as np
with open(sys.argv[2], encoding="utf-8") as f:
    rows = list(csv.reader(f))[1:]
lat, lon = np.radians(np.array([[float(r[1]), float(r[2])] for r in rows])).T
h = (np.sin((lat[:, None] - lat[None]) / 2) ** 2
     + np.cos(lat[:, None]) * np.cos(lat[None]) * np.sin((lon[:, None] - lon[None]) / 2) ** 2)
d = 2 * 6371.0088 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
tool = sys.argv[1]
if tool == "s_gd2":
    import s_gd2
    i, j = np.triu_indices(len(d), 1)  # the condensed vector, in the order s_gd2 expects
    x = s_gd2.mds_direct(len(d), d[i, j], w=np.ones(len(i)), random_seed=0)
elif tool == "sklearn":
    from sklearn.manifold import MDS
    x = MDS(n_components=2, dissimilarity="precomputed", n_init=1, random_state=0).fit_transform(d)
elif tool == "classical":
    n = len(d)
    b = -0.5 * (d**2 - (d**2).mean(0) - (d**2).mean(1)[:, None] + (d**2).mean())
    values, vectors = np.linalg.eigh(b)
    x = vectors[:, -2:] * np.sqrt(np.clip(values[-2:], 0, None))
np.save(sys.argv[3], np.asarray(x, dtype=np.float64))
"""


def subset(n: int, folder: Path) -> Path:
    """The ``n`` most populous places (of the bundled 5,000, or of the generated 50,000) as a CSV."""
    source = DATA if n <= 5000 else LARGE
    path = folder / f"europe{n}.csv"
    with open(source, encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows[: n + 1])
    return path


def stress1(x: np.ndarray, latlon: np.ndarray) -> float:
    """Stress-1 against great-circle distances: over every pair up to 20,000 places, else 1,000,000 random pairs."""
    n = len(x)
    if n <= 20000:
        i, j = np.triu_indices(n, 1)
    else:
        i, j = np.random.default_rng(999).integers(0, n, size=(2, 1_000_000))
        i, j = i[i != j], j[i != j]
    d = geo.haversine(latlon[i], latlon[j])
    fitted = np.linalg.norm(x[i] - x[j], axis=1)
    return float(np.sqrt(((fitted - d) ** 2).sum() / (d**2).sum()))


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of a whole process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", out.name, *command], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        wall, kb = out.read().split()[-2:]
    return float(wall), float(kb) / 1024


def run(tool: str, path: Path, work: Path) -> tuple[float, float, np.ndarray]:
    if tool.startswith("citymap"):
        root = work / tool
        shutil.rmtree(root, ignore_errors=True)
        config = str(ROOT / "configs" / "large.yaml")
        ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
        pairs = ["--data.full_batch_limit", "0"]
        extra = {"citymap-ddp": [*ddp, *pairs], "citymap-pairs": pairs}.get(tool, [])
        wall, mb = timed([sys.executable, "-m", "citymap_lightning", "fit", "--config", config,
                          "--data.path", str(path), "--trainer.default_root_dir", str(root),
                          "--trainer.enable_progress_bar", "false", *extra])  # fmt: skip
        (coords,) = root.rglob("coordinates.csv")
        with open(coords, encoding="utf-8") as f:
            x = np.array([[float(v) for v in row[1:3]] for row in list(csv.reader(f))[1:]])
        return wall, mb, x
    out = work / f"{tool}.npy"
    wall, mb = timed([sys.executable, "-c", PEER, tool, str(path), str(out)])
    return wall, mb, np.load(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tools", nargs="+", default=["citymap", "s_gd2", "sklearn", "classical"],
                        help="citymap, citymap-pairs, citymap-ddp, s_gd2, sklearn, classical")  # fmt: skip
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in args.sizes:
            path = subset(n, work)
            latlon = load_table(path).latlon
            tools = [t for t in args.tools if n <= LIMITS.get(t, n)]
            times: dict[str, list[tuple[float, float, float]]] = {t: [] for t in tools}
            for _ in range(args.repeats):
                for tool in tools:  # alternating, so that a busy moment hurts every tool alike
                    wall, mb, x = run(tool, path, work)
                    times[tool].append((wall, mb, stress1(x, latlon)))
            ours = statistics.median(t[0] for t in times.get("citymap", [(float("nan"),)]))
            for tool, rows in times.items():
                wall = statistics.median(r[0] for r in rows)
                result = {"n": n, "tool": tool, "wall_s": round(wall, 2), "peak_mb": round(max(r[1] for r in rows)),
                          "stress1": round(statistics.median(r[2] for r in rows), 5),
                          "citymap_time_ratio": round(ours / wall, 2)}  # fmt: skip
                results.append(result)
                print(json.dumps(result), flush=True)
    print("\n| n | tool | median wall (s) | peak memory (MB) | stress-1 | citymap time / tool time |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['n']} | {r['tool']} | {r['wall_s']} | {r['peak_mb']} | {r['stress1']} | {r['citymap_time_ratio']} |"
        )


if __name__ == "__main__":
    main()
