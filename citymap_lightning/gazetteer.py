"""Where named places are: a bundled GeoNames gazetteer, matched by name, ties broken by the distances.

A table of distances between named places (a road atlas's table, ``eurodist``) says nothing about
north or east, but the names do. :func:`match` looks each name up (case, accents and punctuation
folded; English and other Latin-script exonyms such as Lyons, Marseilles, Cologne and Munich
included). A name may say where it is: ``City, ST`` (a US state, Canadian province or Australian
state or territory, by abbreviation or name), ``City, Country`` (name or ISO code) or
``City (Country)``. Where a name still has several candidates (Paris, France and Paris, Texas), it
takes the one whose great-circle distances to the other matched places rank as the table's
distances do; without distances, the one in the country (and state) most other matches share,
then the most populous. The map is then fitted onto the matched places by a robust similarity
(:func:`citymap_lightning.align.robust_similarity`): a wrong match is left out, never moves the map.

The gazetteer is ``gazetteer.tsv.gz`` and ``regions.tsv``, built offline by
``scripts/make_gazetteer.py`` from GeoNames (CC BY 4.0) cities of 15,000 people or more.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from citymap_lightning import align
from citymap_lightning import geometry as geo
from citymap_lightning.tables import DistanceTable

PATH = Path(__file__).resolve().parent / "gazetteer.tsv.gz"
"""The bundled gazetteer."""
REGIONS = Path(__file__).resolve().parent / "regions.tsv"
"""Countries, and the states and provinces of the US, Canada and Australia, that may qualify a name."""

MIN_MATCHES = 3
"""Fewest matched, non-collinear places that fix a frame."""
FIX_FRAME = (
    "give the places' latitude/longitude (a places CSV: name,latitude,longitude) or hold 3 or more of them "
    "at known positions with --data.anchors"
)
"""What a user can do when names do not fix the map's frame."""

COUNTRY_ALIASES = {
    "US": ("USA", "U.S.", "U.S.A.", "United States of America", "America"),
    "GB": ("UK", "U.K.", "Britain", "Great Britain", "England", "Scotland", "Wales", "Northern Ireland"),
    "NL": ("Holland", "Netherlands"), "KR": ("Korea", "Republic of Korea"), "CZ": ("Czech Republic",),
    "CI": ("Cote d'Ivoire",), "MK": ("Macedonia",), "MM": ("Burma",), "SZ": ("Swaziland",),
    "TL": ("East Timor",), "VA": ("Vatican City",), "PS": ("Palestine",), "CD": ("DR Congo", "DRC"),
    "AE": ("UAE",), "RU": ("Russian Federation",), "IR": ("Persia",), "CV": ("Cape Verde",),
}  # fmt: skip
"""Other names of countries, beyond GeoNames' (``regions.tsv``)."""


@lru_cache(maxsize=2**20)
def fold(name: str) -> str:
    """A name reduced for matching: accents removed, case folded, punctuation and spaces collapsed.

    Kept per name: matching folds each of a table's names three times (200,000 names: 8.5 s profiled).
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"\([^)]*\)", " ", text)  # "Paris (France)"
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


Region = tuple[str, str]
"""``(country, admin1)``; admin1 is "" for a whole country."""


@dataclass
class Gazetteer:
    """Cities by folded name: ``index[key]`` lists the rows (of ``latlon``, ``names``, ``country``...) a name may be.

    ``qualifiers`` maps a folded country or region name or code (``al``, ``alabama``, ``fr``,
    ``france``, ``usa``) to the regions it may mean (``al`` is Alabama and Albania); ``abbreviations``
    gives the postal abbreviation of a US, Canadian or Australian region (``("CA", "02")`` is ``BC``).
    """

    latlon: np.ndarray
    population: np.ndarray
    names: list[str]
    country: list[str]
    index: dict[str, list[int]]
    admin1: list[str]
    qualifiers: dict[str, set[Region]]
    abbreviations: dict[Region, str]

    def label(self, row: int) -> str:
        """What a row is called in messages and GeoJSON: ``Lyon (FR)``, ``Springfield (US-IL)``."""
        region = self.abbreviations.get((self.country[row], self.admin1[row]))
        return f"{self.names[row]} ({self.country[row]}{'-' + region if region else ''})"


@lru_cache(maxsize=1)
def load(path: Path = PATH, regions: Path = REGIONS) -> Gazetteer:
    """The bundled gazetteer (read once per process, about 0.3 s)."""
    latlon, population, names, country, admin1, index = [], [], [], [], [], {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        next(f)
        for row, line in enumerate(f):
            _, lat, lon, pop, cc, a1, name, alternates = line.rstrip("\n").split("\t")
            latlon.append((float(lat), float(lon)))
            population.append(int(pop))
            names.append(name)
            country.append(cc)
            admin1.append(a1)
            keys = {fold(name)} | {fold(a) for a in alternates.split("|") if a}
            for key in keys:
                index.setdefault(key, []).append(row)
    qualifiers: dict[str, set[Region]] = {}
    abbreviations: dict[Region, str] = {}
    with regions.open(encoding="utf-8") as f:
        next(f)
        for line in f:
            cc, a1, abbreviation, name = line.rstrip("\n").split("\t")
            spellings = [abbreviation, name] + ([cc, *COUNTRY_ALIASES.get(cc, ())] if not a1 else [])
            for spelling in spellings:
                for key in {fold(spelling), fold(spelling).replace(" ", "")}:
                    qualifiers.setdefault(key, set()).add((cc, a1))
            if a1:
                abbreviations[(cc, a1)] = abbreviation
    return Gazetteer(
        np.array(latlon), np.array(population, dtype=np.int64), names, country, index, admin1, qualifiers,
        abbreviations,
    )  # fmt: skip


def as_text(label: str) -> str:
    """A label as prose: ``Birmingham (GB)`` reads ``Birmingham, GB``."""
    return re.sub(r" \(([^()]*)\)$", r", \1", label)


def split_name(name: str) -> tuple[str, list[str]]:
    """A name's place and what qualifies it: ``Springfield, IL`` and ``Springfield (IL)`` give ``Springfield, [IL]``."""
    qualifiers: list[str] = []
    bracket = re.fullmatch(r"\s*(.*?)\s*\(([^()]*)\)\s*", name)
    if bracket and bracket.group(1):
        name, qualifiers = bracket.group(1), [bracket.group(2)]
    place, *rest = name.split(",")
    return place, [q for q in rest + qualifiers if q.strip()]


def candidates(name: str, gazetteer: Gazetteer) -> list[int]:
    """The gazetteer rows a name may be.

    A recognised qualifier (state, province, country) restricts the candidates to its regions (none
    left: no match, never one elsewhere); an unrecognised one is read as part of the name, then
    ignored. A name not found whose last words are a qualifier is read as one (``Springfield IL``).
    """
    key = fold(name)
    if not re.search(r"[^\W\d_]", key):  # names that are numbers (places called 0..n-1) match nothing
        return []
    place, qualifiers = split_name(name)
    regions = [
        gazetteer.qualifiers.get(fold(q)) or gazetteer.qualifiers.get(fold(q).replace(" ", "")) for q in qualifiers
    ]
    if qualifiers and all(regions):
        return _within(gazetteer, gazetteer.index.get(fold(place), []), regions)
    rows = gazetteer.index.get(key) or gazetteer.index.get(fold(place), [])
    words = key.split()
    for k in range(1, min(3, len(words) - 1) + 1) if not rows and not qualifiers else ():
        allowed = gazetteer.qualifiers.get(" ".join(words[-k:])) or gazetteer.qualifiers.get("".join(words[-k:]))
        rows = _within(gazetteer, gazetteer.index.get(" ".join(words[:-k]), []), [allowed]) if allowed else []
        if rows:
            break
    return rows


def _within(gazetteer: Gazetteer, rows: list[int], regions: list[set[Region]]) -> list[int]:
    """The rows that lie in one region of every set."""
    country, admin1 = gazetteer.country, gazetteer.admin1
    return [r for r in rows if all(any(country[r] == cc and a1 in ("", admin1[r]) for cc, a1 in ok) for ok in regions)]


@dataclass
class Match:
    """Places of a table found in the gazetteer.

    Attributes:
        places: indices (in the table) of the matched places.
        latlon: their latitude/longitude.
        labels: the gazetteer's name and country (and US, Canadian or Australian region) of each,
            e.g. ``Lyon (FR)``, ``Springfield (US-IL)``.
        unmatched: names not found.
        by_distance: whether ties were broken by the table's distances.
        population: each matched place's population in GeoNames (None where not known, as from a checkpoint):
            what makes a place well known, so the maps label the most populous first.

    """

    places: np.ndarray
    latlon: np.ndarray
    labels: list[str]
    unmatched: list[str]
    by_distance: bool = True
    population: np.ndarray | None = None


REFERENCES = 50
"""Most places whose distances are used to break ties (the most populous unambiguous ones)."""
SHARED = 0.5
"""A country (or state) is preferred for ambiguous names when more than this share of the unambiguous matches has it."""


def match(table: DistanceTable, gazetteer: Gazetteer | None = None, by_distance: bool = True) -> Match:
    """Look the table's names up; break ties by the table's own distances, else by the other matches' country.

    Reference places are up to :data:`REFERENCES` names with a single candidate. Each name with
    several candidates takes the one whose great-circle distances to the references rank most like
    the table's distances to them (Spearman's correlation: the same for km, miles, travel times or
    ranks, any transform that keeps the order). Without ``by_distance``, with fewer than 3 references,
    or where the distances cannot tell, it takes the candidate in the country that most unambiguous
    matches share (and, in the US, Canada or Australia, the state or province most of them share),
    then the most populous. Wrong matches that remain are left out when the map is aligned
    (:func:`citymap_lightning.align.robust_similarity`).
    """
    gazetteer = gazetteer or load()
    options = [candidates(name, gazetteer) for name in table.names]
    keys = [fold(split_name(name)[0]) for name in table.names]
    preference = _preference(options, keys, gazetteer)
    choice = np.array([max(c, key=lambda r, p=p: preference(p, r)) if c else -1 for p, c in enumerate(options)])
    found = np.flatnonzero(choice >= 0)
    unique = np.array([p for p in found if len(options[p]) == 1], dtype=np.int64)
    ambiguous = [p for p in found if len(options[p]) > 1]
    refs = unique[np.argsort(-gazetteer.population[choice[unique]], kind="stable")][:REFERENCES]
    if len(refs) >= MIN_MATCHES and ambiguous and by_distance:
        columns = table.columns(refs)  # (n, refs): the given distances to the references
        ref_latlon = gazetteer.latlon[choice[refs]]
        for p in ambiguous:
            rows = sorted(options[p], key=lambda r, p=p: preference(p, r), reverse=True)
            agreement = _rank_agreement(columns[p], _great_circle(gazetteer.latlon[rows], ref_latlon))
            if np.isfinite(agreement).any():
                choice[p] = rows[int(np.nanargmax(agreement))]  # the first (preferred) of equals
    places = np.flatnonzero(choice >= 0)
    return Match(
        places=places,
        latlon=gazetteer.latlon[choice[places]].reshape(-1, 2),
        labels=[gazetteer.label(r) for r in choice[places]],
        unmatched=[table.names[p] for p in np.flatnonzero(choice < 0)],
        by_distance=by_distance,
        population=gazetteer.population[choice[places]],
    )


def _preference(
    options: list[list[int]], keys: list[str], gazetteer: Gazetteer
) -> Callable[[int, int], tuple[bool, bool, bool, int]]:
    """A sort key of name ``p``'s candidate ``row``: preferred in the country most unambiguous matches share.

    Then a place called by that name (not an old or alternate name of another), in the region most
    of them share, the most populous.
    """
    countries = Counter(gazetteer.country[c[0]] for c in options if c and len({gazetteer.country[r] for r in c}) == 1)
    determined = sum(countries.values())
    country = next((cc for cc, k in countries.most_common(1) if k > SHARED * determined), None)
    regions = Counter(
        gazetteer.admin1[c[0]] for c in options
        if c and {(gazetteer.country[r], gazetteer.admin1[r]) for r in c} == {(country, gazetteer.admin1[c[0]])}
    )  # fmt: skip
    region = next((a1 for a1, k in regions.most_common(1) if k > SHARED * sum(regions.values())), None)

    def key(p: int, row: int) -> tuple[bool, bool, bool, int]:
        home = gazetteer.country[row] == country
        named = fold(gazetteer.names[row]) == keys[p]
        return home, named, home and gazetteer.admin1[row] == region, int(gazetteer.population[row])

    return key


def _rank_agreement(given: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Spearman's correlation of ``given`` (refs,) with each row of ``true`` (candidates, refs); NaN where < 3 pairs."""
    usable = np.isfinite(given) & (given > 0)
    if usable.sum() < MIN_MATCHES:
        return np.full(len(true), np.nan)
    a = _ranks(given[usable])
    b = np.apply_along_axis(_ranks, 1, true[:, usable])
    a, b = a - a.mean(), b - b.mean(axis=1, keepdims=True)
    spread = np.sqrt((a * a).sum() * (b * b).sum(axis=1))
    return np.where(spread > 0, (b @ a) / np.where(spread > 0, spread, 1.0), np.nan)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values``, ties given their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


NEAR_KM = 25.0
"""A place given by position is the gazetteer's place of its name when that lies within this distance."""
POPULATION_LIMIT = 20_000
"""Populations are looked up by name and position for up to this many places (labels choose among a few dozen)."""


def population_near(names: list[str], latlon: np.ndarray, gazetteer: Gazetteer | None = None) -> np.ndarray:
    """Each place's GeoNames population where a place of its name lies within :data:`NEAR_KM` of ``latlon``.

    For places given with their positions (latitude/longitude in the input, or positions compared with):
    their labels then go to the largest places, as for places found by name. NaN where none is near
    or the position is unknown (a NaN row).
    """
    gazetteer = gazetteer or load()
    out = np.full(len(names), np.nan)
    for k, name in enumerate(names):
        rows = candidates(name, gazetteer) if np.isfinite(latlon[k]).all() else []
        if not rows:
            continue
        km = _great_circle(gazetteer.latlon[rows], np.asarray(latlon[k : k + 1], dtype=np.float64))[:, 0]
        if km.min() <= NEAR_KM:
            out[k] = float(gazetteer.population[rows[int(np.argmin(km))]])
    return out


def _great_circle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` great-circle km."""
    return geo.haversine(a[:, None, :], b[None, :, :])


non_collinear = align.non_collinear
"""Whether found places can fix a frame: 3 or more, not on one great-circle line."""
