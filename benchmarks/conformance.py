"""The conformance matrix as whole commands: each table kind x loss x geometry against an independent reference.

What it measures: for each generated table (``tests/reference_mds.py``: random places of the 48 contiguous
US states from the GeoNames cities of 15,000 people or more, seeded, never tuned to the package), each
loss and each geometry, the whole command a user would type with default options otherwise,

    python -m citymap_lightning fit --data.path FILE --model.loss L [--model.geometry G] \
        [--data.anchors ANCHORS] --trainer.default_root_dir TMPDIR

run as its own process. Its ``coordinates.csv`` is read back and its objective over the known pairs
computed here (numpy alone, in input units), against the minimum of the same objective found by the
reference minimiser (scipy's L-BFGS-B with analytic gradients from the true positions, classical MDS
of the shortest paths, a continuation course -> stress -> the loss, and SMACOF). The ratio is
``(package + floor) / (reference + floor)`` with ``floor = 1e-10`` times the objective of a map
collapsed to a point (``sum w d^4`` for the course, ``sum W d^2`` for stress-type losses): an exact
fit (latitude/longitude on a sphere) is 1.0, not noise over noise. Rotating or reflecting the map onto
geography (never scaling it) leaves every objective unchanged, and the course's normalised units
cancel in the ratio. Also recorded: the wall time, the exit status, whether stderr says
``did not converge``, the run's summary line, and a refusal's ``error:`` line.

Kinds: ``places`` (latitude/longitude), ``pairs`` (each place's 3 or 4 nearest neighbours plus 2 random
partners, great-circle km), ``holey`` (a full matrix with a third of its pairs empty), ``anchored`` (a
names-only full matrix, 10% of its places in an anchors CSV), ``eurodist`` (R's, 21 places, whatever the
size) and ``bigpairs`` (8 nearest + 8 random partners, the shape of the 3,000-place target). Anchored
places are held where the package put them, in the reference too. On a sphere the radius is the
Earth's for latitude/longitude inputs and anchors, else learned (as the package does by default).

    python benchmarks/conformance.py --size small             # 60 places, a quick check
    python benchmarks/conformance.py --size 500
    python benchmarks/conformance.py --size 3000              # the 3,000-place pair list (bigpairs)

It prints a markdown table and saves ``benchmarks/results/conformance_<size>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import reference_mds as ref  # noqa: E402

SIZES = {"small": 60, "500": 500, "3000": 3000}
KINDS = {
    "small": ["places", "pairs", "holey", "anchored", "eurodist"],
    "500": ["places", "pairs", "holey", "anchored", "eurodist"],
    "3000": ["bigpairs"],
}
"""The kinds measured at each size by default (at 3,000 only the pair list: its reference is O(pairs))."""
CURVED = {"places", "pairs"}
"""The kinds also measured in ``space`` and on the ``sphere``."""
FLOOR = 1e-10


def make_table(kind: str, n: int, seed: int) -> ref.Table:
    """The generated table of one kind."""
    if kind == "places":
        return ref.places_table(n, seed)
    if kind == "pairs":
        return ref.pairs_table(n, seed)
    if kind == "bigpairs":
        table = ref.pairs_table(n, seed, nearest=(8, 8), far=8)
        table.kind = "pairs"
        return table
    if kind == "holey":
        return ref.holey_table(n, seed)
    if kind == "matrix":
        return ref.matrix_table(n, seed)
    if kind == "anchored":
        return ref.anchored_table(n, seed)
    if kind == "eurodist":
        return ref.eurodist_table()
    raise ValueError(f"unknown kind {kind!r}")


def collapsed(loss: str, table: ref.Table, transform: str) -> float:
    """The objective of a map collapsed to a point: the scale the ratio's floor is taken from."""
    if transform != "ratio":
        return 1.0
    if loss == "course":
        w = np.ones_like(table.d) if table.w is None else table.w
        return float((w * table.d**4).sum())
    return float((ref.pair_weights(loss, table.d, table.w) * table.d**2).sum())


def run_package(args: list[str], timeout: float) -> dict:
    """One whole command; its status, wall time, stderr's verdicts and the run folder."""
    root = tempfile.mkdtemp(prefix="conformance_")
    command = [sys.executable, "-m", "citymap_lightning", "fit", *args, "--trainer.default_root_dir", root]
    command += ["--trainer.enable_progress_bar", "false"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
        code, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as stop:
        code, stdout, stderr = "timeout", str(stop.stdout or ""), str(stop.stderr or "")
    wall = time.perf_counter() - start
    text = stdout + "\n" + stderr
    summary = [line.strip() for line in text.splitlines() if " after " in line and "epoch" in line]
    errors = [line.strip() for line in stderr.splitlines() if line.startswith("error")]
    found = list(Path(root).rglob("coordinates.csv"))
    return {
        "exit": code,
        "wall_s": round(wall, 2),
        "did_not_converge": "did not converge" in stderr,
        "summary": summary[-1] if summary else None,
        "error": errors[0] if errors else None,
        "coordinates": str(found[0]) if found else None,
        "stderr_tail": stderr.strip().splitlines()[-3:] if code not in (0, "timeout") else [],
    }


def measure(table: ref.Table, path: Path, anchors: Path | None, loss: str, geometry: str, transform: str,
            timeout: float) -> dict:  # fmt: skip
    """One cell: the package's command, then the reference on the same problem, and their ratio."""
    args = ["--data.path", str(path), "--model.loss", loss]
    if geometry != "plane":
        args += ["--model.geometry", geometry]
    if transform != "ratio":
        args += ["--model.transform", transform]
    if anchors is not None:
        args += ["--data.anchors", str(anchors)]
    row: dict = {"kind": table.kind, "n": table.n, "pairs": int(len(table.i)), "loss": loss, "geometry": geometry,
                 "transform": transform, "anchors": len(table.anchors)}  # fmt: skip
    row.update(run_package(args, timeout))
    if row["exit"] != 0 or row["coordinates"] is None:
        row["status"] = "refused" if row["exit"] == 2 else "failed"
        return row
    coords = ref.read_coordinates(Path(row["coordinates"]), table.names)
    fixed = geometry == "sphere" and (table.latlon is not None and table.kind == "places" or table.anchors)
    radius = ref.EARTH_RADIUS_KM if fixed else None
    package = ref.objective(loss, coords, table.i, table.j, table.d, table.w, geometry, radius, transform)
    true = None if table.latlon is None else ref.true_start(table.latlon, geometry)
    held = {k: coords[k] for k in table.anchors} or None
    start = time.perf_counter()
    best = ref.reference_minimize(loss, table.n, table.i, table.j, table.d, table.w, geometry, radius, transform,
                                  true=true, anchors=held)  # fmt: skip
    floor = FLOOR * collapsed(loss, table, transform)
    row.update({
        "status": "ok",
        "objective": package,
        "reference": best.value,
        "ratio": (package + floor) / (best.value + floor),
        "reference_start": best.best_start,
        "reference_starts": best.starts,
        "reference_s": round(time.perf_counter() - start, 2),
    })  # fmt: skip
    if geometry == "sphere":
        row["radius"] = float(np.linalg.norm(coords, axis=1).mean())
        row["reference_radius"] = best.radius
    return row


def cells(kinds: list[str], losses: list[str], geometries: list[str], transforms: list[str]) -> list[tuple]:
    """The (kind, loss, geometry, transform) cells: plane for every kind, space and sphere on :data:`CURVED`."""
    out = []
    for kind in kinds:
        for geometry in geometries:
            if geometry != "plane" and kind not in CURVED:
                continue
            for loss in losses:
                for transform in transforms:
                    if loss == "course" and transform != "ratio":
                        continue
                    out.append((kind, loss, geometry, transform))
    return out


def markdown(rows: list[dict]) -> str:
    """The table of results."""
    lines = [
        "| kind | n | pairs | geometry | loss | transform | objective / reference | exit | not converged | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] == "ok":
            ratio = f"{r['ratio']:.4f}" + ("" if r["ratio"] <= 1.01 else " **over 1.01**")
        elif r["status"] == "refused":
            ratio = f"refused: `{r['error']}`"
        else:
            ratio = f"{r['status']}: {' / '.join(r.get('stderr_tail') or [])[:200]}"
        lines.append(
            f"| {r['kind']} | {r['n']} | {r['pairs']} | {r['geometry']} | {r['loss']} | {r['transform']} | {ratio} "
            f"| {r['exit']} | {'yes' if r['did_not_converge'] else 'no'} | {r['wall_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the matrix and save it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument("--kinds", nargs="+", help="default: by size (see KINDS)")
    parser.add_argument("--losses", nargs="+", default=list(ref.LOSSES))
    parser.add_argument("--geometries", nargs="+", default=["plane", "space", "sphere"])
    parser.add_argument("--transforms", nargs="+", default=["ratio"])
    parser.add_argument("--seed", type=int, default=0, help="the places and pairs drawn")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per command")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/conformance_<size>.json")
    args = parser.parse_args()
    n = SIZES[args.size]
    out = args.out or ROOT / "benchmarks" / "results" / f"conformance_{args.size}.json"
    rows = []
    tables: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory(prefix="conformance_data_") as folder:
        for kind, loss, geometry, transform in cells(args.kinds or KINDS[args.size], args.losses, args.geometries,
                                                     args.transforms):  # fmt: skip
            if kind not in tables:
                table = make_table(kind, n, args.seed)
                tables[kind] = (table, *ref.write_table(table, Path(folder) / kind))
            table, path, anchors = tables[kind]
            row = measure(table, path, anchors, loss, geometry, transform, args.timeout)
            rows.append(row)
            shown = f"{row['ratio']:.4f}" if row["status"] == "ok" else f"{row['status']} {row['error'] or ''}"
            print(f"{kind:9} {geometry:6} {loss:15} {transform:8} {shown}  {row['wall_s']} s", flush=True)
    print()
    print(markdown(rows))
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"size": args.size, "seed": args.seed, "machine": platform.platform(), "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"), "floor": FLOOR}  # fmt: skip
    for row in rows:
        row.pop("coordinates", None)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1), encoding="utf-8")
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
