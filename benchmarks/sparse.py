"""Whole-process benchmark of pair-list (sparse) inputs, against full matrices of the same places.

What it measures: for each size n, the n most populous places of 37 European countries (GeoNames;
``data/europe5000.csv``, above 5,000 ``data/generated/europe50000.csv``, above 50,000
``data/generated/europe_all.csv`` of 94,767 places, made by ``python scripts/make_datasets.py --large``;
the first n rows of the smallest file that has them) are turned into a pair list
``source,target,distance`` (great-circle km): each place's 8 nearest neighbours (a k-d tree on unit
vectors, no n x n matrix) plus 8 random partners (seed 0), each unordered pair once. For the sizes in
``--matrix-sizes`` the full n x n matrix CSV of the same places is written too. Inputs are cached in
``data/generated/`` (git-ignored). Each input is fitted by a whole process,

    python -m citymap_lightning fit --config configs/large.yaml --data.path FILE \
        --trainer.default_root_dir TMPDIR --trainer.enable_progress_bar false

timed from outside by ``/usr/bin/time`` (wall seconds, peak resident memory; psutil polling of the
process tree where ``/usr/bin/time`` is absent), with a per-run timeout; timeouts and failures are
recorded with the last lines of stderr. Stress-1 is computed here from the run's ``coordinates.csv``
(matched by name) against the great-circle distance of every pair up to 2,000 places, else of
1,000,000 random distinct pairs (seed 999): the package only sees the listed pairs, stress-1 is over
all pairs. Separately, the readers alone are timed in a fresh process (imports not counted):
``load_table`` of the ``--reader-size`` matrix CSV and of the pair list of the same places.

    python benchmarks/sparse.py --sizes 3000 20000 50000 94767 --matrix-sizes 3000 --reader-size 5000 \
        --repeats 1 --out benchmarks/results/sparse.json
    python benchmarks/sparse.py --sizes 1000 --matrix-sizes 1000 --reader-size 1000   # a quick check
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from citymap_lightning import geometry as geo

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "data" / "europe5000.csv", ROOT / "data" / "generated" / "europe50000.csv",
           ROOT / "data" / "generated" / "europe_all.csv"]  # fmt: skip
"""Places files, most populous first, each a superset of the one before."""
CONFIG = ROOT / "configs" / "large.yaml"
EXACT_STRESS_LIMIT = 2000
"""Up to this many places stress-1 is over every pair, above on :data:`STRESS_PAIRS` random pairs."""
STRESS_PAIRS = 1_000_000
FMT = "%.4f"
"""Distances are written to 0.1 m, in the pair lists and the matrices alike."""
TIME = Path("/usr/bin/time")
TAIL = 20

READER = r"""
import sys, time
from citymap_lightning.readers import load_table
t = time.perf_counter()
table = load_table(sys.argv[1])
seconds = time.perf_counter() - t
with open(sys.argv[2], "w") as f:
    f.write(f"{seconds} {table.n}")
"""


# --------------------------------------------------------------------------------------------- data


def places(n: int) -> tuple[list[str], np.ndarray, Path]:
    """Names and ``(n, 2)`` latitude/longitude of the ``n`` most populous places, and the file they came from."""
    for source in SOURCES:
        if not source.exists():
            continue
        with open(source, encoding="utf-8") as f:
            rows = list(csv.reader(f))
        header = [h.strip().lower() for h in rows[0]]
        if len(rows) - 1 < n:
            continue
        i_name, i_lat, i_lon = header.index("name"), header.index("latitude"), header.index("longitude")
        names = [r[i_name] for r in rows[1 : n + 1]]
        latlon = np.array([[float(r[i_lat]), float(r[i_lon])] for r in rows[1 : n + 1]])
        if len(set(names)) != n:
            dups = [name for name, count in Counter(names).items() if count > 1]
            raise SystemExit(f"{source}: the first {n} names are not unique (e.g. {dups[:5]})")
        return names, latlon, source
    have = [f"{s} ({'present' if s.exists() else 'missing'})" for s in SOURCES]
    raise SystemExit(f"no places file has {n} rows: {', '.join(have)}; run python scripts/make_datasets.py --large")


def pair_indices(latlon: np.ndarray, k: int, partners: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unordered pairs ``i < j``: each place's ``k`` nearest neighbours and ``partners`` random others, once each."""
    n = len(latlon)
    u = geo.to_unit_vectors(latlon)  # chord length is monotone in great-circle distance
    kk = min(k + 1, n)
    _, nearest = cKDTree(u).query(u, k=kk)
    nearest = np.asarray(nearest).reshape(n, kk)
    rows = np.repeat(np.arange(n), kk)
    a, b = [rows], [nearest.ravel()]
    if partners and n > 1:
        rng = np.random.default_rng(seed)
        other = rng.integers(0, n - 1, size=(n, partners))
        other += other >= np.arange(n)[:, None]  # skip the place itself
        a.append(np.repeat(np.arange(n), partners))
        b.append(other.ravel())
    i, j = np.concatenate(a), np.concatenate(b)
    keep = i != j  # a place is its own nearest neighbour (or ties with an identical one)
    lo, hi = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
    key = np.unique(lo.astype(np.int64) * n + hi)
    return key // n, key % n


def shown(path: Path) -> str:
    """``path`` as the report records it: relative to the repository when inside it, so no machine's folder is named."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_atomic(path: Path, write) -> Path:
    """Write ``path`` through a temporary file in the same folder, so that an interrupted run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        write(f)
    os.replace(tmp, path)
    return path


def pair_csv(n: int, names: list[str], latlon: np.ndarray, args: argparse.Namespace) -> tuple[Path, int]:
    """The pair list CSV of the first ``n`` places (cached) and its number of pairs."""
    path = args.cache / f"pairs_{n}_k{args.neighbours}_r{args.partners}_s{args.seed}.csv"
    if path.exists() and not args.rebuild:
        with open(path, encoding="utf-8") as f:
            return path, sum(1 for _ in f) - 1
    i, j = pair_indices(latlon, args.neighbours, args.partners, args.seed)
    d = geo.haversine(latlon[i], latlon[j])

    def write(f) -> None:
        w = csv.writer(f)
        w.writerow(["source", "target", "distance"])
        w.writerows(zip([names[x] for x in i], [names[x] for x in j], [FMT % x for x in d], strict=True))

    return write_atomic(path, write), len(i)


def matrix_csv(n: int, names: list[str], latlon: np.ndarray, args: argparse.Namespace) -> Path:
    """The full ``n x n`` matrix CSV of the first ``n`` places (cached): empty corner and names, then name and row."""
    path = args.cache / f"matrix_{n}.csv"
    if path.exists() and not args.rebuild:
        return path

    def write(f) -> None:
        w = csv.writer(f)
        w.writerow(["", *names])
        for start in range(0, n, 500):  # blocks of rows: at most 500 x n distances held
            block = geo.haversine(latlon[start : start + 500, None, :], latlon[None, :, :])
            rows = np.arange(start, start + len(block))
            block[rows - start, rows] = 0.0
            w.writerows([names[r], *(FMT % v for v in row)] for r, row in zip(rows, block, strict=True))

    return write_atomic(path, write)


# ------------------------------------------------------------------------------------------ stress-1


def stress_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs up to :data:`EXACT_STRESS_LIMIT` places, else :data:`STRESS_PAIRS` distinct random pairs (seed 999)."""
    if n <= EXACT_STRESS_LIMIT:
        return np.triu_indices(n, 1)
    rng = np.random.default_rng(999)
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < STRESS_PAIRS:
        i = rng.integers(0, n, size=STRESS_PAIRS)
        j = (i + rng.integers(1, n, size=STRESS_PAIRS)) % n  # j != i
        cand = np.concatenate([keys, np.minimum(i, j) * n + np.maximum(i, j)])
        _, first = np.unique(cand, return_index=True)
        keys = cand[np.sort(first)]  # distinct, in the order drawn
    keys = keys[:STRESS_PAIRS]
    return keys // n, keys % n


def stress1(coords_csv: Path, names: list[str], latlon: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> float:
    """Stress-1 of the fitted ``coordinates.csv`` against the great-circle distances of ``pairs``."""
    with open(coords_csv, encoding="utf-8", newline="") as f:
        fitted = {row["name"]: (float(row["x"]), float(row["y"])) for row in csv.DictReader(f)}
    missing = [x for x in names if x not in fitted]
    if missing:
        raise ValueError(f"{len(missing)} places missing from {coords_csv} (e.g. {missing[:3]})")
    x = np.array([fitted[name] for name in names])
    i, j = pairs
    d = geo.haversine(latlon[i], latlon[j])
    dx = np.linalg.norm(x[i] - x[j], axis=1)
    return float(np.sqrt(((dx - d) ** 2).sum() / (d**2).sum()))


# ------------------------------------------------------------------------------------------- running


def _tree_rss(proc) -> int:
    """Resident bytes of a psutil process and its descendants (0 where it is gone)."""
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def timed(command: list[str], timeout: float, log: Path) -> dict:
    """Run ``command`` as a whole process: status, wall seconds, peak MB and (on failure) the tail of stderr."""
    use_time = TIME.exists()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out, open(log, "wb") as err:
        full = [str(TIME), "-f", "%e %M", "-o", out.name, *command] if use_time else command
        start = time.perf_counter()
        # a session of its own, so that a timeout ends the whole process group (time, python and any workers)
        proc = subprocess.Popen(full, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        peak = 0
        watcher = None
        if not use_time:
            import psutil

            watcher = psutil.Process(proc.pid)
        status = "ok"
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if watcher is not None:
                    peak = max(peak, _tree_rss(watcher))
                if time.perf_counter() - start > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    rc = proc.wait()
                    status = "timeout"
                    break
        wall = time.perf_counter() - start
        mb = None if use_time else peak / 2**20  # /usr/bin/time reports nothing for a killed run
        if use_time and status != "timeout":
            fields = out.read().split()
            try:
                wall, mb = float(fields[-2]), float(fields[-1]) / 1024
            except (IndexError, ValueError):
                pass
    result = {"status": status if rc == 0 or status == "timeout" else "failed", "rc": rc,
              "wall_s": round(wall, 2), "peak_mb": None if mb is None else round(mb)}  # fmt: skip
    if result["status"] != "ok":
        with open(log, encoding="utf-8", errors="replace") as f:
            result["stderr_tail"] = [line.rstrip("\n") for line in deque(f, TAIL)]
    return result


def fit(path: Path, work: Path, timeout: float) -> tuple[dict, Path | None]:
    """One ``citymap_lightning fit`` of ``path``: its timing and its ``coordinates.csv`` (None if none)."""
    root = work / "run"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    command = [sys.executable, "-m", "citymap_lightning", "fit", "--config", str(CONFIG), "--data.path", str(path),
               "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"]  # fmt: skip
    result = timed(command, timeout, work / "stderr.log")
    found = sorted(root.rglob("coordinates.csv"), key=lambda p: p.stat().st_mtime)
    if result["status"] == "ok" and not found:
        result["status"] = "failed"
        result["stderr_tail"] = ["no coordinates.csv written"]
    return result, (found[-1] if found else None)


def read_only(path: Path, timeout: float, work: Path) -> dict:
    """``load_table(path)`` alone, in a fresh process: seconds inside (imports not counted), wall and peak MB."""
    out = work / "reader.out"
    out.write_text("")
    result = timed([sys.executable, "-c", READER, str(path), str(out)], timeout, work / "stderr.log")
    text = out.read_text().split()
    if result["status"] == "ok" and len(text) == 2:
        result["read_s"] = round(float(text[0]), 3)
        result["n_read"] = int(text[1])
    return result


# ---------------------------------------------------------------------------------------------- main


def summarise(rows: list[dict]) -> dict:
    """Median wall and stress-1, largest peak over the repeats (over the successful ones when any)."""
    ok = [r for r in rows if r["status"] == "ok"]
    use = ok or rows
    stresses = [r["stress1"] for r in ok if r.get("stress1") is not None]
    return {
        "status": "ok" if ok else use[-1]["status"],
        "wall_s": round(statistics.median(r["wall_s"] for r in use), 2),
        "peak_mb": max((r["peak_mb"] for r in use if r["peak_mb"] is not None), default=None),
        "stress1": round(statistics.median(stresses), 6) if stresses else None,
        "runs": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 20000, 50000, 94767])
    parser.add_argument("--matrix-sizes", type=int, nargs="*", default=[3000], help="sizes also run as full matrices")
    parser.add_argument("--reader-size", type=int, default=5000, help="time load_table alone here (0: skip)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run before it is killed")
    parser.add_argument("--neighbours", type=int, default=8)
    parser.add_argument("--partners", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "generated", help="where inputs are written")
    parser.add_argument("--rebuild", action="store_true", help="rewrite cached inputs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sparse.json")
    args = parser.parse_args()

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    report: dict = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "git": {
            "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--", "citymap_lightning")),
        },
        "timing": str(TIME) if TIME.exists() else "psutil polling",
        "settings": {k: shown(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "results": [],
        "reader": [],
    }

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")

    with tempfile.TemporaryDirectory(prefix="citymap-sparse-") as tmp:
        work = Path(tmp)
        for n in args.sizes:
            names, latlon, source = places(n)
            t = time.perf_counter()
            pairs_path, n_pairs = pair_csv(n, names, latlon, args)
            inputs = [(f"pairs {n_pairs}", pairs_path)]
            if n in args.matrix_sizes:
                inputs.append(("matrix", matrix_csv(n, names, latlon, args)))
            print(f"n = {n} ({source.name}): inputs ready in {time.perf_counter() - t:.1f} s", flush=True)
            check = stress_pairs(n)
            runs: dict[str, list[dict]] = {label: [] for label, _ in inputs}
            for _ in range(args.repeats):
                for label, path in inputs:  # alternating, so that a busy moment hurts both alike
                    result, coords = fit(path, work, args.timeout)
                    if result["status"] == "ok" and coords is not None:
                        try:
                            result["stress1"] = stress1(coords, names, latlon, check)
                        except (ValueError, KeyError) as e:
                            result["status"], result["stderr_tail"] = "failed", [f"stress-1: {e}"]
                    runs[label].append(result)
                    print(json.dumps({"n": n, "input": label, **result}), flush=True)
            for label, path in inputs:
                summary = {"n": n, "input": label, "file": shown(path),
                           "n_pairs": n_pairs if label != "matrix" else None,
                           "stress1_pairs": "all" if n <= EXACT_STRESS_LIMIT else STRESS_PAIRS,
                           **summarise(runs[label])}  # fmt: skip
                report["results"].append(summary)
            save()

        if args.reader_size:
            n = args.reader_size
            names, latlon, _ = places(n)
            for label, path in [
                ("matrix", matrix_csv(n, names, latlon, args)),
                ("pairs", pair_csv(n, names, latlon, args)[0]),
            ]:
                disk = round(path.stat().st_size / 2**20, 1)
                result = {"n": n, "input": label, "file": shown(path), "mb_on_disk": disk,
                          **read_only(path, args.timeout, work)}  # fmt: skip
                report["reader"].append(result)
                print(json.dumps(result), flush=True)
            save()

    # the ratio pair wall / matrix wall where a size has both
    matrix_wall = {r["n"]: r["wall_s"] for r in report["results"] if r["input"] == "matrix" and r["status"] == "ok"}
    for r in report["results"]:
        ok = r["input"] != "matrix" and r["status"] == "ok" and r["n"] in matrix_wall
        r["pairs_over_matrix_wall"] = round(r["wall_s"] / matrix_wall[r["n"]], 2) if ok else None
    save()

    def cell(v, fmt: str = "{}") -> str:
        return "" if v is None else fmt.format(v)

    print("\n| n | input | wall (s) | peak memory (MB) | stress-1 | pair wall / matrix wall |")
    print("|---|---|---|---|---|---|")
    for r in report["results"]:
        wall = f"{r['wall_s']}" if r["status"] == "ok" else f"{r['status']} after {r['wall_s']}"
        stress = cell(r["stress1"], "{:.6f}") + ("" if r["stress1_pairs"] == "all" else " (1e6 pairs)")
        ratio = cell(r["pairs_over_matrix_wall"])
        print(f"| {r['n']} | {r['input']} | {wall} | {cell(r['peak_mb'])} | {stress} | {ratio} |")
    if report["reader"]:
        print("\n| n | reader input | MB on disk | load_table (s) | process wall (s) | peak memory (MB) |")
        print("|---|---|---|---|---|---|")
        for r in report["reader"]:
            inside = cell(r.get("read_s")) if r["status"] == "ok" else r["status"]
            print(f"| {r['n']} | {r['input']} | {r['mb_on_disk']} | {inside} | {r['wall_s']} | {cell(r['peak_mb'])} |")
    for what, rows in (("fit", report["results"]), ("reader", report["reader"])):
        for r in rows:
            if r["status"] != "ok":
                tail = next((x.get("stderr_tail") for x in reversed(r.get("runs", [r])) if x.get("stderr_tail")), [])
                print(
                    f"\n{what}, n = {r['n']}, {r['input']}: {r['status']}; last stderr lines:\n  "
                    + "\n  ".join(tail[-8:])
                )
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
