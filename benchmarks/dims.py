"""The ``dims`` subcommand on GeoNames places: where the elbow falls for European and for world-wide distances.

Runs ``python -m citymap_lightning dims`` (raw stress, 100 epochs, 5 random replicates) on 300
random places of ``data/europe5000.csv`` and on ``data/world200.csv``, and records ``dims.csv``,
the drop ratios and the wall time of each whole command.

    python benchmarks/dims.py        # writes benchmarks/results/dims.json
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def run(data: Path, folder: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "citymap_lightning", "dims", "--data.path", str(data),
                    "--model.loss", "stress", "--trainer.max_epochs", "100", "--trainer.enable_progress_bar", "false",
                    "--trainer.default_root_dir", str(folder)], check=True, capture_output=True)  # fmt: skip
    seconds = time.perf_counter() - start
    (path,) = folder.rglob("dims.csv")
    with open(path, encoding="utf-8") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    s = np.array([r["stress1"] for r in rows])
    drops = np.maximum(s[:-1] - s[1:], 1e-3 * (s[0] - s[-1]))  # as the elbow does: a rise or rounding is no drop
    return {"data": data.name, "seconds": round(seconds, 1), "rows": rows,
            "drop_1_2_over_2_3": float(drops[0] / drops[1]),
            "drop_2_3_over_3_4": float(drops[1] / drops[2])}  # fmt: skip


def main() -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with open(ROOT / "data" / "europe5000.csv", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        pick = np.random.default_rng(0).choice(len(rows) - 1, 300, replace=False) + 1
        europe = tmp / "europe300.csv"
        with open(europe, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([rows[0]] + [rows[k] for k in pick])
        for data in (europe, ROOT / "data" / "world200.csv"):
            results.append(run(data, tmp / data.stem))
            print(json.dumps(results[-1]))
    out = ROOT / "benchmarks" / "results" / "dims.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
