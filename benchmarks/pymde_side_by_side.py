"""Side by side with PyMDE on a road-shaped pair list: whole processes, alternating, stress-1 over the known pairs.

PyMDE environment (its own venv: PyPI's torchvision does not load beside the CPU torch 2.13,
``operator torchvision::nms does not exist``, and pymde imports torchvision only for its dataset downloads):

    python3 -m venv /work/pymde-venv
    /work/pymde-venv/bin/pip install torch==2.13.0                  # the CPU wheel in /opt/wheels
    /work/pymde-venv/bin/pip install numpy scipy matplotlib         # pymde imports matplotlib at start-up
    /work/pymde-venv/bin/pip install --no-deps pymde==0.3.0         # without torchvision (and requests, unused)
    mkdir /work/pymde-venv/lib/python3.11/site-packages/torchvision  # a stub: `import torchvision` only
    touch /work/pymde-venv/lib/python3.11/site-packages/torchvision/__init__.py
    /work/pymde-venv/bin/python -c "import pymde; print(pymde.__version__)"   # 0.3.0

What runs, each as its own process, timed from outside (wall seconds around the subprocess, peak resident
memory of the process tree polled every 0.2 s, as ``benchmarks/road.py``'s ``run``):

* pymde: reads the CSV (csv + numpy), maps names to indices and fits exactly what
  ``pymde.preserve_distances`` builds for given distances, over the known pairs only:
  ``pymde.MDE(n, 2, edges, pymde.losses.Quadratic(d_km), pymde.Centered(), device="cpu").embed(...)``
  (L-BFGS from PyMDE's random start), then writes ``name,x,y``. ``--pymde-max-iter/--pymde-eps/--pymde-memory``
  go to ``embed`` (PyMDE's defaults: 300, 1e-5, 10); ``--pymde-init spectral`` starts from PyMDE's
  spectral embedding of the pair graph (``pymde.quadratic.spectral``), scaled to the distances.
  ``--pymde-dtype``: float64 by default, the setup that reaches PyMDE's best stress-1 here; PyMDE's own
  float32 stalls (50,000 places: stress-1 0.00840 after 300 or 2,000 iterations, seeds 0 and 1, memory 10
  or 30; 0.00435 in float64, converged in 199 iterations; the reference minimum 0.004348); its spectral
  start was worse (0.0115 in float32).
* citymap: ``python -m citymap_lightning fit --config configs/large.yaml --data.path FILE ...``; its
  ``coordinates.csv`` is read back.

Stress-1 = sqrt(sum (dhat - d)^2 / sum d^2) over the known pairs, computed here. citymap's map is in km and
is not rescaled. PyMDE's Quadratic loss on km distances also gives km: its stress-1 is given raw
(``stress1``) and after the optimal uniform scale s = sum(dhat d) / sum(dhat^2) (``stress1_scaled``); the
ratios use the raw one. Where ``data/generated/<stem>_stress_reference.json`` exists (``benchmarks/road.py``),
the reference minimum's stress-1 is recorded too.

    python benchmarks/pymde_side_by_side.py --data data/generated/asia_road50000.csv \
        [--repeats 1] [--tools citymap pymde] [--busy 0] [--out benchmarks/results/pymde_50000.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from road import measure  # noqa: E402  (the whole-process timing both benchmarks share)

ROOT = Path(__file__).resolve().parent.parent
PYMDE_PYTHON = Path("/work/pymde-venv/bin/python")
CITYMAP_PYTHON = ROOT / ".venv" / "bin" / "python"
CONFIG = ROOT / "configs" / "large.yaml"

PYMDE_WORKER = r"""
import csv, json, sys, time
import numpy as np
import torch
import pymde

path, out, max_iter, eps, memory, init, seed, dtype = sys.argv[1:9]
torch.set_default_dtype(getattr(torch, dtype))  # PyMDE's own is float32 (--pymde-dtype float32)
t0 = time.perf_counter()
index, src, dst, dist = {}, [], [], []
with open(path, newline="", encoding="utf-8") as f:
    rows = csv.reader(f)
    next(rows)
    for a, b, v in rows:
        src.append(index.setdefault(a, len(index)))
        dst.append(index.setdefault(b, len(index)))
        dist.append(float(v))
n = len(index)
i, j = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
edges = torch.from_numpy(np.stack([np.minimum(i, j), np.maximum(i, j)], 1))
deviations = torch.tensor(dist)  # km, in the default dtype
t1 = time.perf_counter()
pymde.seed(int(seed))
mde = pymde.MDE(n_items=n, embedding_dim=2, edges=edges, distortion_function=pymde.losses.Quadratic(deviations),
                constraint=pymde.Centered(), device="cpu")
X = None
if init == "spectral":
    X = pymde.quadratic.spectral(n, 2, edges, torch.ones(len(edges)), device="cpu")
    dh = (X[edges[:, 0]] - X[edges[:, 1]]).norm(dim=1)
    X = X * (dh * deviations).sum() / (dh * dh).sum()
x = mde.embed(X=X, max_iter=int(max_iter), eps=float(eps), memory_size=int(memory), verbose=False)
t2 = time.perf_counter()
x = x.detach().cpu().numpy().astype(np.float64)
names = list(index)
with open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["name", "x", "y"])
    for name, (a, b) in zip(names, x):
        w.writerow([name, repr(float(a)), repr(float(b))])
s = mde.solve_stats
print(json.dumps({"read_s": round(t1 - t0, 2), "fit_s": round(t2 - t1, 2),
                  "iterations": len(s.average_distortions), "average_distortion": float(s.average_distortions[-1]),
                  "residual_norm": float(s.residual_norms[-1])}))
"""


def read_pairs(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    index: dict[str, int] = {}
    src, dst, dist = [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        next(rows)
        for a, b, v in rows:
            src.append(index.setdefault(a, len(index)))
            dst.append(index.setdefault(b, len(index)))
            dist.append(float(v))
    return list(index), np.array(src), np.array(dst), np.array(dist)


def read_map(path: Path, names: list[str]) -> np.ndarray:
    """``name,x,y[,...]`` as an n x 2 array in the order of ``names``."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        header = next(rows)
        ix, iy = header.index("x"), header.index("y")
        by_name = {r[0]: (float(r[ix]), float(r[iy])) for r in rows}
    return np.array([by_name[name] for name in names])


def stress1(x: np.ndarray, i, j, d) -> tuple[float, float, float]:
    """Stress-1 raw, stress-1 after the optimal uniform scale, and that scale."""
    dhat = np.linalg.norm(x[i] - x[j], axis=1)
    s = float((dhat * d).sum() / (dhat * dhat).sum())
    dd = float((d * d).sum())
    raw = float(np.sqrt(((dhat - d) ** 2).sum() / dd))
    scaled = float(np.sqrt(((s * dhat - d) ** 2).sum() / dd))
    return raw, scaled, s


def run_pymde(data: Path, work: Path, args) -> dict:
    out = work / "pymde_coordinates.csv"
    cmd = [str(PYMDE_PYTHON), "-c", PYMDE_WORKER, str(data), str(out), str(args.pymde_max_iter),
           str(args.pymde_eps), str(args.pymde_memory), args.pymde_init, str(args.seed), args.pymde_dtype]  # fmt: skip
    row = measure(cmd, work, args.timeout)
    lines = row.pop("lines")
    if row["exit"] == 0 and out.exists():
        row.update(json.loads(lines[-1]))
        row["coords"] = out
    else:
        row["tail"] = lines[-5:]
    return row


def run_citymap(data: Path, work: Path, args) -> dict:
    cmd = [str(CITYMAP_PYTHON), "-m", "citymap_lightning", "fit", "--config", str(CONFIG), "--data.path", str(data),
           "--trainer.default_root_dir", str(work), "--trainer.enable_progress_bar", "false"]  # fmt: skip
    row = measure(cmd, work, args.timeout)
    lines = row.pop("lines")
    row["summary"] = next((x.strip() for x in reversed(lines) if "converge" in x and "stress-1" in x), "")
    coords = sorted(work.glob("lightning_logs/version_*/coordinates.csv"))
    if row["exit"] == 0 and coords:
        row["coords"] = coords[-1]
    else:
        row["tail"] = lines[-5:]
    return row


def version(python: Path, code: str) -> str:
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return result.stdout.strip() or f"unavailable: {result.stderr.strip().splitlines()[-1:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "generated" / "asia_road50000.csv")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tools", nargs="+", choices=["citymap", "pymde"], default=["citymap", "pymde"])
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/pymde_<n>.json")
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes running beside the runs")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--pymde-max-iter", type=int, default=300)
    parser.add_argument("--pymde-eps", type=float, default=1e-5)
    parser.add_argument("--pymde-memory", type=int, default=10)
    parser.add_argument("--pymde-init", choices=["random", "spectral"], default="random")
    parser.add_argument("--pymde-dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--seed", type=int, default=0, help="pymde.seed")
    args = parser.parse_args()

    data = args.data.resolve()
    names, i, j, d = read_pairs(data)
    n = len(names)
    out = args.out or ROOT / "benchmarks" / "results" / f"pymde_{n}.json"
    dd = float((d * d).sum())
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    record = {
        "machine": f"{platform.node()} {os.cpu_count()} cores",
        "commit": commit.stdout.strip(),
        "uncommitted": subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.split("\n")[:-1],  # the citymap run uses the working tree
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "data": str(data),
        "n": n,
        "pairs": len(d),
        "busy": args.busy,
        "repeats": args.repeats,
        "pymde_version": version(PYMDE_PYTHON, "import pymde; print(pymde.__version__)"),
        "pymde_torch": version(PYMDE_PYTHON, "import torch; print(torch.__version__)"),
        "citymap_torch": version(CITYMAP_PYTHON, "import torch; print(torch.__version__)"),
        "pymde_setup": {
            "max_iter": args.pymde_max_iter,
            "eps": args.pymde_eps,
            "memory_size": args.pymde_memory,
            "init": args.pymde_init,
            "dtype": args.pymde_dtype,
            "seed": args.seed,
            "loss": "Quadratic (km)",
            "constraint": "Centered",
        },  # fmt: skip
        "citymap_command": f"python -m citymap_lightning fit --config {CONFIG.relative_to(ROOT)}",
        "runs": [],
    }
    reference = data.with_name(f"{data.stem}_stress_reference.json")
    if reference.exists():
        record["reference_stress1"] = float(np.sqrt(json.loads(reference.read_text())["objective"] / dd))
    print(f"{n} places, {len(d)} pairs: {data}", flush=True)

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        for repeat in range(args.repeats):
            tools = args.tools if repeat % 2 == 0 else args.tools[::-1]  # alternating
            for tool in tools:
                with tempfile.TemporaryDirectory() as tmp:
                    row = {"tool": tool, "repeat": repeat, "load_before": [round(v, 2) for v in os.getloadavg()]}
                    row.update((run_citymap if tool == "citymap" else run_pymde)(data, Path(tmp), args))
                    coords = row.pop("coords", None)
                    if coords is not None:
                        raw, scaled, s = stress1(read_map(coords, names), i, j, d)
                        row["stress1"] = float(f"{raw:.7g}")
                        if tool == "pymde":
                            row["stress1_scaled"], row["scale"] = float(f"{scaled:.7g}"), float(f"{s:.7g}")
                print(json.dumps(row), flush=True)
                record["runs"].append(row)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(record, indent=1))
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()

    def median(tool: str, key: str) -> float | None:
        values = [r[key] for r in record["runs"] if r["tool"] == tool and r.get(key) is not None]
        return statistics.median(values) if values else None

    print(f"\n{n} places, {len(d)} pairs, busy {args.busy}, median of {args.repeats}, commit {record['commit']}")
    if "reference_stress1" in record:
        print(f"reference minimum stress-1: {record['reference_stress1']:.7f}")
    print("\n| tool | wall (s) | peak (MB) | stress-1 | citymap/tool time | citymap/tool stress-1 |")
    print("|---|---|---|---|---|---|")
    ct, cs = median("citymap", "wall_s"), median("citymap", "stress1")
    for tool in args.tools:
        t, m, s = median(tool, "wall_s"), median(tool, "peak_mb"), median(tool, "stress1")
        label = "citymap large.yaml" if tool == "citymap" else f"pymde {record['pymde_version']} {args.pymde_dtype}"
        stress = "-" if s is None else f"{s:.7f}"
        if tool == "pymde" and median(tool, "stress1_scaled") is not None:
            stress += f" raw ({median(tool, 'stress1_scaled'):.7f} scaled)"
        ratio_t = f"{ct / t:.2f}" if ct and t else "-"
        ratio_s = f"{cs / s:.4f}" if cs and s else "-"
        print(f"| {label} | {t} | {m} | {stress} | {ratio_t} | {ratio_s} |")


if __name__ == "__main__":
    main()
