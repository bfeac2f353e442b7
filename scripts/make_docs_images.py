"""Redraw the README's pictures (docs/*.png) from real runs of the command line, as a user would make them.

Each picture is a file a run writes (``map.png``, ``displacement.png``, ...), copied as it is: what the README
shows is what the command gives. The runs go to a temporary folder; each prints the lines of its log that
the README quotes (stress-1, the comparison's figures), to check the text against.

    python scripts/make_docs_images.py                       # every picture but the 50,000 places
    python scripts/make_docs_images.py eurodist france       # only these runs
    python scripts/make_docs_images.py japan400 drift        # the gallery's 400 places and drift arrows
    python scripts/make_docs_images.py --large europe50000   # needs scripts/make_datasets.py --large first
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DATA = ROOT / "data"
QUOTED = ("stress-1", "compared", "times the great-circle", "uncertainty", "radius")
"""Log lines worth printing: what the README's captions and figures quote."""


def noisy_europe(folder: Path) -> list[str]:
    """The course's 36 cities as a matrix with 5% log-normal noise, 15% for Reykjavik, Kiruna and Istanbul."""
    from citymap_lightning import geometry as geo
    from citymap_lightning import output
    from citymap_lightning.readers import load_table

    table = load_table(DATA / "europe36.csv")
    d = geo.distance_matrix(table.latlon)
    sigma = np.array([0.15 if name in ("Reykjavik", "Kiruna", "Istanbul") else 0.05 for name in table.names])
    level = np.sqrt((sigma[:, None] ** 2 + sigma[None, :] ** 2) / 2)
    z = np.triu(np.random.default_rng(0).standard_normal(d.shape), 1)
    path = output.write_matrix(folder / "noisy36.csv", table.names, table.names, d * np.exp(level * (z + z.T)))
    return ["--data.path", str(path), "--model.bootstrap", "50", "--model.loss", "stress"]


def hub_pulled(folder: Path) -> list[str]:
    """The README's built time-space map: 200 places pulled toward a fast hub, at 80 km/h (as in the tests)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_timespace import time_space, write_hours, write_positions

    names, latlon, _, hours = time_space(200)
    matrix = write_hours(folder / "hours.csv", names, hours)
    positions = write_positions(folder / "positions.csv", names, latlon)
    return ["--data.path", str(matrix), "--data.positions", str(positions), "--data.unit", "hours"]


def japan(n: int = 400) -> tuple[list[str], np.ndarray]:
    """Japan's ``n`` most populous places in the bundled gazetteer (one per name), as latitude/longitude."""
    import csv
    import gzip

    rows = []
    with gzip.open(ROOT / "citymap_lightning" / "gazetteer.tsv.gz", "rt", encoding="utf-8") as f:
        for row in list(csv.reader(f, delimiter="\t"))[1:]:
            if row[4] == "JP":
                rows.append((-int(row[3]), row[6], float(row[1]), float(row[2])))
    names, latlon = [], []
    for _, name, lat, lon in sorted(rows):
        if name not in names:
            names.append(name)
            latlon.append((lat, lon))
    return names[:n], np.array(latlon[:n])


def japan_places(folder: Path) -> list[str]:
    """400 Japanese places by latitude/longitude: the map of a crowded country (no paths, labels clear of the dots)."""
    from citymap_lightning import output

    names, latlon = japan()
    rows = [[name, f"{a:.5f}", f"{b:.5f}"] for name, (a, b) in zip(names, latlon, strict=True)]
    return ["--data.path", str(output.write_table(folder / "japan400.csv", ["name", "latitude", "longitude"], rows))]


def japan_names(folder: Path) -> list[str]:
    """The same 400 places as a names-only matrix of great-circle km: found by name, a nearly exact map whose
    displacements (tenths of a km on a 2,000 km map) are drawn magnified."""
    from citymap_lightning import geometry as geo
    from citymap_lightning import output

    names, latlon = japan()
    path = output.write_matrix(folder / "japan400_names.csv", names, names, geo.distance_matrix(latlon))
    return ["--data.path", str(path)]


def delayed(folder: Path) -> list[str]:
    """The time-space table of 200 places in hours, each place's departures slower by up to half an hour (an
    asymmetric table, averaged by --data.symmetrize), with their positions: drift arrows on a north-up map."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_timespace import time_space, write_hours, write_positions

    names, latlon, _, hours = time_space(200)
    outbound = np.random.default_rng(3).uniform(0, 0.5, len(names))
    matrix = write_hours(folder / "hours.csv", names, hours, outbound)
    positions = write_positions(folder / "positions.csv", names, latlon)
    return ["--data.path", str(matrix), "--data.symmetrize", "true", "--data.positions", str(positions),
            "--data.unit", "hours"]  # fmt: skip


@dataclass
class Run:
    """One fit: its arguments (or a function that writes its input and gives them) and the pictures it gives."""

    args: list[str] | Callable[[Path], list[str]]
    pictures: dict[str, str]
    large: bool = False


RUNS = {
    "europe36": Run([], {"map.png": "europe36_map.png", "shepard.png": "europe36_shepard.png",
                         "city_error.png": "europe36_city_error.png"}),
    "eurodist": Run(["--data.path", str(DATA / "eurodist.csv")],
                    {"map.png": "eurodist_map.png", "displacement.png": "eurodist_displacement.png",
                     "distortion.png": "eurodist_distortion.png"}),
    "france": Run(["--data.path", str(DATA / "france_hours.csv"), "--data.positions",
                   str(DATA / "france_positions.csv"), "--map.max_trajectories", "40"],  # no paths: the coast reads
                  {"displacement.png": "france_displacement.png", "distortion.png": "france_distortion.png",
                   "map.png": "timespace_coastlines.png"}),  # the coastlines carried onto the map of hours
    "timespace": Run(hub_pulled, {"displacement.png": "timespace_displacement.png",
                                  "distortion.png": "timespace_distortion.png"}),
    "uncertainty": Run(noisy_europe, {"map.png": "uncertainty_map.png"}),
    "japan400": Run(japan_places, {"map.png": "japan400_map.png"}),
    "japan400_names": Run(japan_names, {"displacement.png": "japan400_displacement.png"}),
    "drift": Run(delayed, {"drift.png": "drift_legend.png"}),
    "europe5000": Run(["--config", str(ROOT / "configs" / "large.yaml"), "--data.path", str(DATA / "europe5000.csv")],
                      {"map.png": "europe5000_map.png"}),
    "world200": Run(["--config", str(ROOT / "configs" / "sphere.yaml"), "--model.radius", "learn",
                     "--data.path", str(DATA / "world200.csv")], {"map.png": "world200_sphere.png"}),
    "europe50000": Run(["--config", str(ROOT / "configs" / "large.yaml"), "--data.path",
                        str(DATA / "generated" / "europe50000.csv")],
                       {"city_error.png": "europe50000_map.png"}, large=True),  # the caption's colours: the error
}  # fmt: skip


def fit(name: str, run: Run, scratch: Path) -> None:
    """Run the fit in a fresh interpreter, print the quoted log lines, copy its pictures into docs/."""
    folder = scratch / name
    folder.mkdir()
    args = run.args(folder) if callable(run.args) else run.args
    command = [sys.executable, "-m", "citymap_lightning", "fit", *args, "--trainer.default_root_dir", str(folder),
               "--trainer.enable_progress_bar", "false", "--map.html", "false"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {name}: the fit failed (status {done.returncode}):\n{done.stdout[-2000:]}")
    for line in done.stdout.splitlines():
        if any(word in line for word in QUOTED):
            print(f"  {name}: {line}")
    (log_dir,) = [p.parent for p in folder.rglob("config.yaml")]
    for written, picture in run.pictures.items():
        shutil.copyfile(log_dir / written, DOCS / picture)
        print(f"wrote {DOCS / picture} ({(DOCS / picture).stat().st_size // 1000} KB)")


def main(argv: list[str] | None = None) -> None:
    """Run the chosen fits (all but the large ones by default) one after the other."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help=f"which of {', '.join(RUNS)} (default: all but the large)")
    parser.add_argument("--large", action="store_true", help="also the runs on data/generated/ (minutes)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.runs if name not in RUNS]
    if unknown:
        parser.error(f"no run called {', '.join(unknown)}: choose among {', '.join(RUNS)}")
    chosen = args.runs or [name for name, run in RUNS.items() if args.large or not run.large]
    with tempfile.TemporaryDirectory() as scratch:
        for name in chosen:
            fit(name, RUNS[name], Path(scratch))


if __name__ == "__main__":
    main()
