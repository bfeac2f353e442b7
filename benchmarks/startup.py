"""The 36-city default ``fit``, whole, against a bare torch script doing the same fit (issue 21's start-up target).

    python benchmarks/startup.py                 # 3 runs of each, alternating; results/startup.json
    python benchmarks/startup.py --repeats 5

The command is ``python -m citymap_lightning fit`` with every default (``data/europe36.csv``, the
course objective, L-BFGS, a ceiling of 60 epochs and its convergence test), in a fresh process, its
outputs in a temporary folder. The bare script (``--bare OUT.csv`` runs it) is the issue's:

- reads ``data/europe36.csv`` with ``csv`` and computes the haversine distances in float64 (radius
  6371.0088 km), then float32;
- seeds torch with 0 and starts from ``randn(n, 2) * D.mean()``;
- runs ``torch.optim.LBFGS(line_search_fn="strong_wolfe", tolerance_grad=0, tolerance_change=0)``
  (20 iterations a step) for 60 steps on ``((cdist(X, X)**2 - D**2)**2).sum() / 2 / (D**4).sum()``;
- writes ``name,x,y`` to a CSV.

Both run alternately, ``--repeats`` times each, as whole processes timed from outside (wall
seconds); the fit's own time is the command's ``hp/wall_time_s`` (from the start of the fit to its
end, read from its TensorBoard file) and the script's loop. The ratio of the medians of the whole
processes is the target's (at most 2). ``-X importtime`` of the command is summarised too: the
seconds each package's modules take to import. The bare script runs on torch's default threads, as
the issue writes it: on a machine whose cores other work uses, its many small steps then wait on
each other (``benchmarks/threads.py``), so the load average is recorded with the figures, and the
same script on one thread (``OMP_NUM_THREADS=1``) is timed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EUROPE = ROOT / "data" / "europe36.csv"
RESULTS = ROOT / "benchmarks" / "results" / "startup.json"
TARGET = 2.0
"""At most this many times the bare script's wall time (issue 21)."""


def bare(out: Path) -> None:
    """The bare torch script: the course objective by L-BFGS, 60 steps, on the 36 cities; prints its fit time."""
    import csv
    import math

    import torch

    with open(EUROPE, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1:]
    names = [r[0] for r in rows]
    lat = torch.tensor([math.radians(float(r[1])) for r in rows], dtype=torch.float64)
    lon = torch.tensor([math.radians(float(r[2])) for r in rows], dtype=torch.float64)
    a = (torch.sin((lat[:, None] - lat[None]) / 2) ** 2
         + torch.cos(lat[:, None]) * torch.cos(lat[None]) * torch.sin((lon[:, None] - lon[None]) / 2) ** 2)  # fmt: skip
    d = (2 * 6371.0088 * torch.asin(torch.sqrt(a.clamp(0, 1)))).float()
    started = time.perf_counter()
    torch.manual_seed(0)
    x = (torch.randn(len(names), 2) * d.mean()).requires_grad_()
    optimizer = torch.optim.LBFGS([x], line_search_fn="strong_wolfe", tolerance_grad=0, tolerance_change=0)
    norm = (d**4).sum()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = ((torch.cdist(x, x) ** 2 - d**2) ** 2).sum() / 2 / norm
        loss.backward()
        return loss

    for _ in range(60):
        optimizer.step(closure)
    fit_s = time.perf_counter() - started
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "x", "y"])
        writer.writerows(
            [name, f"{p[0]:.6f}", f"{p[1]:.6f}"] for name, p in zip(names, x.detach().tolist(), strict=True)
        )
    print(json.dumps({"fit_s": fit_s, "loss": float(closure())}))


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds of a whole process (started to exited) and its stdout; a failure stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout


def fit_seconds(root: Path) -> tuple[float | None, int | None]:
    """The command's own fit time (``hp/wall_time_s``) and epochs (``hp/epochs``), from its TensorBoard file."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (log_dir,) = [p.parent for p in root.rglob("config.yaml")]
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    wall = events.Scalars("hp/wall_time_s")[-1].value if "hp/wall_time_s" in tags else None
    epochs = int(events.Scalars("hp/epochs")[-1].value) if "hp/epochs" in tags else None
    return wall, epochs


def import_times(python: str, code: Path) -> list[tuple[str, float]]:
    """Seconds the command spends importing each package (its modules' own times summed), largest first."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [python, "-X", "importtime", "-m", "citymap_lightning", "fit", "--trainer.default_root_dir", tmp,
                "--trainer.enable_progress_bar", "false"]  # fmt: skip
        done = subprocess.run(argv, cwd=code, capture_output=True, text=True)
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            name = match.group(2).split(".")[0]
            totals[name] = totals.get(name, 0.0) + int(match.group(1)) / 1e6
    return sorted(totals.items(), key=lambda item: -item[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bare", type=Path, help="run the bare script, writing its coordinates here")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--code", type=Path, default=ROOT, help="the checkout whose citymap_lightning runs (before/after)"
    )
    args = parser.parse_args()
    if args.bare:
        bare(args.bare)
        return
    python = sys.executable
    env_note = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    runs: dict[str, list[dict]] = {"citymap": [], "bare": [], "bare_1_thread": []}
    load = [os.getloadavg()[0]]
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            wall, _ = timed([python, "-m", "citymap_lightning", "fit", "--trainer.default_root_dir", tmp,
                             "--trainer.enable_progress_bar", "false"], args.code)  # fmt: skip
            fit_s, epochs = fit_seconds(Path(tmp))
            runs["citymap"].append({"wall_s": round(wall, 3), "fit_s": fit_s and round(fit_s, 3), "epochs": epochs})
            for name, env in (("bare", None), ("bare_1_thread", {"OMP_NUM_THREADS": "1"})):
                wall, out = timed([python, str(Path(__file__).resolve()), "--bare", str(Path(tmp) / "bare.csv")],
                                  ROOT, env)  # fmt: skip
                reported = json.loads(out.strip().splitlines()[-1])
                runs[name].append({"wall_s": round(wall, 3), "fit_s": round(reported["fit_s"], 3), "epochs": 60})
        print(f"run {repeat + 1}: " + ", ".join(f"{name} {rows[-1]}" for name, rows in runs.items()))
        load.append(os.getloadavg()[0])
    median = {tool: statistics.median(r["wall_s"] for r in rows) for tool, rows in runs.items()}
    median_fit = {tool: statistics.median(r["fit_s"] or 0.0 for r in rows) for tool, rows in runs.items()}
    ratio = median["citymap"] / median["bare"]
    ratio_1 = median["citymap"] / median["bare_1_thread"]
    imports = import_times(python, args.code)
    print(
        f"median wall: citymap {median['citymap']:.2f} s, bare {median['bare']:.2f} s: {ratio:.2f}x (target {TARGET})"
    )
    print(f"against the bare script on one thread ({median['bare_1_thread']:.2f} s): {ratio_1:.2f}x")
    print(f"median fit: citymap {median_fit['citymap']:.2f} s, bare {median_fit['bare']:.2f} s")
    print("slowest imports: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in imports[:8]))
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "code": str(args.code), "env": env_note,
        "load_average": [round(x, 2) for x in load],
        "repeats": args.repeats, "runs": runs, "median_wall_s": median, "median_fit_s": median_fit,
        "ratio": round(ratio, 3), "ratio_1_thread": round(ratio_1, 3), "target": TARGET,
        "imports_s": {k: round(v, 3) for k, v in imports[:15]},
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
