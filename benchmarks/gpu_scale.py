"""The largest set on one GPU: every place of the benchmark countries (GeoNames cities500, about 95,000).

Runs the whole ``fit`` command with ``configs/large.yaml`` (pair batches at this size) on the GPU,
once per batch size given, and reports n, the GPU model, the whole command's wall time, the GPU's
peak memory (polled from nvidia-smi) and stress-1 on an independent random sample of 1,000,000
pairs, computed here from the written coordinates.csv against great-circle distances.

    python scripts/make_datasets.py --large          # writes data/generated/europe_all.csv
    python benchmarks/gpu_scale.py --data data/generated/europe_all.csv --out results/
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from citymap_lightning import geometry as geo  # noqa: E402


def read_rows(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    return [r[0] for r in rows], np.array([[float(r[1]), float(r[2])] for r in rows])


def sampled_stress1(coordinates: Path, places: Path, pairs: int = 1_000_000, seed: int = 999) -> float:
    """Stress-1 of a written map on ``pairs`` random pairs (a sample the fit never used)."""
    _, x = read_rows(coordinates)
    _, latlon = read_rows(places)
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(x), size=(2, pairs))
    keep = i != j
    i, j = i[keep], j[keep]
    d = geo.haversine(latlon[i], latlon[j])
    fitted = np.linalg.norm(x[i] - x[j], axis=1)
    return float(np.sqrt(((fitted - d) ** 2).sum() / (d**2).sum()))


class GpuMemory(threading.Thread):
    """The largest ``memory.used`` nvidia-smi reports while running (MiB)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.name, self.running = 0.0, "", True

    def run(self) -> None:
        while self.running:
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout  # fmt: skip
                name, used = out.strip().splitlines()[0].rsplit(",", 1)
                self.name, self.peak = name.strip(), max(self.peak, float(used))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                pass
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "generated" / "europe_all.csv")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16384])
    parser.add_argument("--accelerator", default="gpu")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names, _ = read_rows(args.data)
    results = []
    for batch in args.batch_sizes:
        root = Path(tempfile.gettempdir()) / f"citymap_gpu_{batch}"
        shutil.rmtree(root, ignore_errors=True)
        command = [sys.executable, "-m", "citymap_lightning", "fit", "--config", str(ROOT / "configs" / "large.yaml"),
                   "--data.path", str(args.data), "--data.batch_size", str(batch),
                   "--trainer.accelerator", args.accelerator, "--trainer.devices", "1",
                   "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"]  # fmt: skip
        memory = GpuMemory()
        memory.start()
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        memory.running = False
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-6000:], sep="\n")
            raise SystemExit(f"fit failed with status {done.returncode}")
        (coordinates,) = root.rglob("coordinates.csv")
        result = {
            "n": len(names),
            "batch_size": batch,
            "gpu": memory.name or args.accelerator,
            "wall_s": round(wall, 1),
            "gpu_peak_mib": memory.peak,
            "stress1_sampled_1e6": round(sampled_stress1(coordinates, args.data), 6),
        }
        print(json.dumps(result), flush=True)
        results.append(result)
        shutil.copy(coordinates.parent / "map.png", args.out / f"map_{len(names)}_{batch}.png")
    (args.out / "gpu_scale.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
