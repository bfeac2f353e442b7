"""Where named places are: a bundled GeoNames gazetteer, matched by name, ties broken by the distances.

A table of distances between named places (a road atlas's table, ``eurodist``) says nothing about
north or east, but the names do. :func:`match` looks each name up (case, accents and punctuation
folded; English and other Latin-script exonyms such as Lyons, Marseilles, Cologne and Munich
included). A name may say where it is: ``City, Region`` or ``City (Region)`` (a first-level
division of any country: a prefecture, state, province, region..., by GeoNames' name, loosely:
``Sendai (Miyagi)``, ``Sakai, Osaka-fu``, ``Kagoshima Prefecture``; or the postal abbreviation of a US
state, Canadian province or Australian state: ``Bendigo, VIC``), ``City, Country`` (name or ISO
code) or ``City (Country)``, and several of them (``Sendai (Kagoshima, JP)``). A qualifier that is
none of these is said, with the closest region of the name's candidates, and not used.

Where a name still has several candidates (Paris, France and Paris, Texas), it takes the one whose
great-circle distances to the unambiguous places agree best with the table's distances (read
through one monotone curve, so km, miles, travel times or ranks alike; over the shortest paths of
known pairs in a sparse table, and its own known pairs with its partners); without distances, the
one in the country (and region) most other matches share, then the most populous. The map is then
fitted onto the matched places by a robust similarity
(:func:`citymap_lightning.align.robust_similarity`): a wrong match is left out, never moves the map.

The gazetteer is ``gazetteer.tsv.gz`` and ``regions.tsv``, built offline by
``scripts/make_gazetteer.py`` from GeoNames (CC BY 4.0): cities of 15,000 people or more, and the
names of their first-level divisions (``admin1CodesASCII``).
"""

from __future__ import annotations

import difflib
import gzip
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from citymap_lightning import align
from citymap_lightning import geometry as geo
from citymap_lightning.tables import DistanceTable

PATH = Path(__file__).resolve().parent / "gazetteer.tsv.gz"
"""The bundled gazetteer."""
REGIONS = Path(__file__).resolve().parent / "regions.tsv"
"""Countries and their first-level divisions (the postal abbreviations of the US, Canada and Australia's), which
may qualify a name."""

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

DIVISION_WORDS = frozenset(
    "prefecture ken fu to do state province provincia provincie estado region regiao county oblast krai kray "
    "district department departement departamento governorate municipality territory parish division voivodeship "
    "canton wilaya wilayah muhafazat republic okrug of de del do da des la".split()
)
"""Words that say what kind of division a region is (``Kagoshima Prefecture``, ``Miyagi-ken``, ``Ogun State``,
``Estado de Jalisco``): left out at either end when a qualifier is matched, on both sides."""


@lru_cache(maxsize=2**16)
def region_key(text: str) -> str:
    """A region's name reduced for matching: folded, without the words that say what kind of division it is.

    ``Kagoshima Prefecture``, ``Kagoshima-ken`` and ``kagoshima`` all give ``kagoshima``; a name made of such
    words only is kept whole.
    """
    words = fold(text).split()
    while len(words) > 1 and words[-1] in DIVISION_WORDS:
        words.pop()
    while len(words) > 1 and words[0] in DIVISION_WORDS:
        words.pop(0)
    return " ".join(words)


def _spellings(text: str) -> set[str]:
    """The keys a qualifier is looked up under: folded, without spaces, and without division words."""
    folded, loose = fold(text), region_key(text)
    return {k for k in (folded, folded.replace(" ", ""), loose, loose.replace(" ", "")) if k}


@dataclass
class Gazetteer:
    """Cities by folded name: ``index[key]`` lists the rows (of ``latlon``, ``names``, ``country``...) a name may be.

    ``qualifiers`` maps a folded country or region name or code (``al``, ``alabama``, ``fr``,
    ``france``, ``usa``, ``miyagi``) to the regions it may mean (``al`` is Alabama and Albania);
    ``abbreviations`` gives the postal abbreviation of a US, Canadian or Australian region
    (``("CA", "02")`` is ``BC``); ``region_names`` the GeoNames name of every region and country
    (``("JP", "24")`` is ``Miyagi``); ``bracketed`` the rows whose own name holds a bracket, by that name
    folded with it (``frankfurt oder``); ``geonameid`` each row's GeoNames id.
    """

    latlon: np.ndarray
    population: np.ndarray
    names: list[str]
    country: list[str]
    index: dict[str, list[int]]
    admin1: list[str]
    qualifiers: dict[str, set[Region]]
    abbreviations: dict[Region, str]
    region_names: dict[Region, str] = field(default_factory=dict)
    bracketed: dict[str, list[int]] = field(default_factory=dict)
    geonameid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def label(self, row: int) -> str:
        """What a row is called in messages and GeoJSON: ``Lyon (FR)``, ``Springfield (US-IL)``."""
        region = self.abbreviations.get((self.country[row], self.admin1[row]))
        return f"{self.names[row]} ({self.country[row]}{'-' + region if region else ''})"

    def region(self, row: int) -> str:
        """A row's first-level division by GeoNames' name (``Miyagi``), "" where GeoNames names none."""
        return self.region_names.get((self.country[row], self.admin1[row]), "")

    def describe(self, row: int) -> str:
        """A row with its region and country: ``Sendai (Kagoshima, JP)``, ``Lyon (Auvergne-Rhône-Alpes, FR)``."""
        return f"{self.names[row]} ({', '.join(filter(None, (self.region(row), self.country[row])))})"


@lru_cache(maxsize=1)
def load(path: Path = PATH, regions: Path = REGIONS) -> Gazetteer:
    """The bundled gazetteer (read once per process, about 0.3 s)."""
    latlon, population, names, country, admin1, ids, index, bracketed = [], [], [], [], [], [], {}, {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        next(f)
        for row, line in enumerate(f):
            geonameid, lat, lon, pop, cc, a1, name, alternates = line.rstrip("\n").split("\t")
            ids.append(int(geonameid))
            latlon.append((float(lat), float(lon)))
            population.append(int(pop))
            names.append(name)
            country.append(cc)
            admin1.append(a1)
            keys = {fold(name)} | {fold(a) for a in alternates.split("|") if a}
            for key in keys:
                index.setdefault(key, []).append(row)
            if "(" in name:
                bracketed.setdefault(_bracket_key(name), []).append(row)
    qualifiers: dict[str, set[Region]] = {}
    abbreviations: dict[Region, str] = {}
    region_names: dict[Region, str] = {}
    with regions.open(encoding="utf-8") as f:
        next(f)
        for line in f:
            cc, a1, abbreviation, name = line.rstrip("\n").split("\t")
            spellings = [abbreviation, name] + ([cc, *COUNTRY_ALIASES.get(cc, ())] if not a1 else [])
            for spelling in filter(None, spellings):
                for key in _spellings(spelling) if a1 else {fold(spelling), fold(spelling).replace(" ", "")}:
                    qualifiers.setdefault(key, set()).add((cc, a1))
            if a1 and abbreviation:
                abbreviations[(cc, a1)] = abbreviation
            region_names[(cc, a1)] = name
    return Gazetteer(
        np.array(latlon), np.array(population, dtype=np.int64), names, country, index, admin1, qualifiers,
        abbreviations, region_names, bracketed, np.array(ids, dtype=np.int64),
    )  # fmt: skip


def as_text(label: str) -> str:
    """A label as prose: ``Birmingham (GB)`` reads ``Birmingham, GB``."""
    return re.sub(r" \(([^()]*)\)$", r", \1", label)


def _bracket_key(name: str) -> str:
    """A name folded with what its brackets hold: ``Frankfurt (Oder)`` gives ``frankfurt oder``."""
    return fold(name.replace("(", " ").replace(")", " "))


def split_name(name: str) -> tuple[str, list[str]]:
    """A name's place and what qualifies it: ``Springfield, IL`` and ``Springfield (IL)`` give ``Springfield, [IL]``.

    A bracket may hold several, as the name's commas may: ``Sendai (Kagoshima, JP)`` gives ``Sendai, [Kagoshima, JP]``.
    """
    qualifiers: list[str] = []
    bracket = re.fullmatch(r"\s*(.*?)\s*\(([^()]*)\)\s*", name)
    if bracket and bracket.group(1):
        name, qualifiers = bracket.group(1), bracket.group(2).split(",")
    place, *rest = name.split(",")
    return place, [q.strip() for q in rest + qualifiers if q.strip()]


def qualifier_regions(qualifier: str, gazetteer: Gazetteer) -> set[Region] | None:
    """The regions a qualifier may mean (``Miyagi``, ``Miyagi-ken``, ``IL``, ``France``), None if it means none.

    Numbers in it (a GeoNames id, ``JP 1857910``) are no part of it.
    """
    words = [w for w in fold(qualifier).split() if not w.isdigit()]
    if not words:
        return None
    text = " ".join(words)
    found: set[Region] = set()
    for key in _spellings(text):
        found |= gazetteer.qualifiers.get(key, set())
    return found or None


@dataclass
class Reading:
    """How a name was read: the gazetteer rows it may be, and qualifiers not recognised (with the closest region).

    ``unknown``: ``(qualifier, hint)``, the hint ``did you mean Kagoshima?`` or "".
    """

    rows: list[int]
    unknown: list[tuple[str, str]] = field(default_factory=list)

    def said(self, name: str) -> str:
        """The name with what was not understood: ``Sendai (Kagoshma) (did you mean Kagoshima?)``."""
        hints = [h for _, h in self.unknown if h]
        if len(self.unknown) > 1 and hints:
            hints = [f"{q}: {h}" for q, h in self.unknown if h]
        return f"{name} ({'; '.join(hints)})" if hints else name


def read_name(name: str, gazetteer: Gazetteer) -> Reading:
    """The gazetteer rows a name may be, and what in it was not understood.

    A recognised qualifier (region, state, province, country) restricts the candidates to its regions
    (none left: no match, never one elsewhere). A bracket or comma that is part of a place's own name
    (``Frankfurt (Oder)``) is read as such. Any other qualifier is not used, and said with the closest
    region or country of the name's candidates (``Kagoshma``: did you mean Kagoshima?). A number in a
    qualifier that is the GeoNames id of a candidate picks it. A name not found whose last words are
    a qualifier is read as one (``Springfield IL``).
    """
    key = fold(name)
    if not re.search(r"[^\W\d_]", key):  # names that are numbers (places called 0..n-1) match nothing
        return Reading([])
    place, qualifiers = split_name(name)
    if not qualifiers:
        rows = gazetteer.index.get(key, [])
        words = key.split()
        for k in range(1, min(3, len(words) - 1) + 1) if not rows else ():
            allowed = qualifier_regions(" ".join(words[-k:]), gazetteer)
            rows = _within(gazetteer, gazetteer.index.get(" ".join(words[:-k]), []), [allowed]) if allowed else []
            if rows:
                break
        return Reading(rows)
    regions = [qualifier_regions(q, gazetteer) for q in qualifiers]
    unknown = [q for q, r in zip(qualifiers, regions, strict=True) if not r and not q.replace(" ", "").isdigit()]
    whole = gazetteer.bracketed.get(_bracket_key(name)) or gazetteer.index.get(fold(name.replace("(", ",")))
    if unknown and whole:  # the qualifier is part of the place's own name
        return Reading(list(whole))
    rows = gazetteer.index.get(fold(place), [])
    within = _within(gazetteer, rows, [r for r in regions if r])
    ids = {int(w) for q in qualifiers for w in fold(q).split() if w.isdigit()}
    chosen = [r for r in within if gazetteer.geonameid[r] in ids]
    if chosen:
        return Reading(chosen)
    return Reading(within, [(q, _suggestion(q, rows, gazetteer)) for q in unknown])


def _suggestion(qualifier: str, rows: list[int], gazetteer: Gazetteer) -> str:
    """``did you mean Kagoshima?``: the region or country of the name's candidates closest to an unknown qualifier.

    "" where none is close.
    """
    names: dict[str, str] = {}
    for r in rows:
        for region in ((gazetteer.country[r], gazetteer.admin1[r]), (gazetteer.country[r], "")):
            spelled = gazetteer.region_names.get(region)
            if spelled:
                names.setdefault(region_key(spelled), spelled)
    close = difflib.get_close_matches(region_key(qualifier), list(names), n=1, cutoff=0.6)
    return f"did you mean {names[close[0]]}?" if close else ""


def candidates(name: str, gazetteer: Gazetteer) -> list[int]:
    """The gazetteer rows a name may be (see :func:`read_name`)."""
    return read_name(name, gazetteer).rows


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
        geonameid: each matched place's GeoNames id (None where not known, as from an older checkpoint).
        regions: each matched place's first-level division by GeoNames' name (``Miyagi``; "" where none).
        countries: each matched place's country (ISO code).
        unknown: names with a qualifier that is no region or country, each with what it may have meant
            (``Sendai (Kagoshma) (did you mean Kagoshima?)``); the qualifier was not used.

    """

    places: np.ndarray
    latlon: np.ndarray
    labels: list[str]
    unmatched: list[str]
    by_distance: bool = True
    population: np.ndarray | None = None
    geonameid: np.ndarray | None = None
    regions: list[str] | None = None
    countries: list[str] | None = None
    unknown: list[str] = field(default_factory=list)

    def describe(self, k: int) -> str:
        """Match ``k`` with its region and country: ``Sendai (Kagoshima, JP)`` (the label where they are not known)."""
        if self.regions is None or self.countries is None:
            return as_text(self.labels[k])
        name = re.sub(r" \([^()]*\)$", "", self.labels[k])
        return f"{name} ({', '.join(filter(None, (self.regions[k], self.countries[k])))})"

    def columns(self, n: int) -> dict[str, list[str]]:
        """``geonameid``, ``region`` and ``country`` of ``n`` places, as text ("" where not found): output columns."""
        out = {key: [""] * n for key in ("geonameid", "region", "country")}
        for k, place in enumerate(np.asarray(self.places).tolist()):
            out["geonameid"][place] = "" if self.geonameid is None else str(int(self.geonameid[k]))
            out["region"][place] = "" if self.regions is None else self.regions[k]
            out["country"][place] = "" if self.countries is None else self.countries[k]
        return out


REFERENCES = 50
"""Most places whose distances are used to break ties (unambiguous ones, every k-th by population)."""
SHARED = 0.5
"""A country (or state) is preferred for ambiguous names when more than this share of the unambiguous matches has it."""
PASSES = 3
"""Rounds of choosing among same-named places: each round's choices are partners to the next round's."""
CALIBRATION_PAIRS = 200_000
"""Most pairs of unambiguous places and references that the curve from the table's distances to km is read from."""
ASTRAY = np.log(2.0)
"""A pair that disagrees by more than this (its great-circle km half or twice what the table says) is astray: a
reference whose pairs mostly are is a wrong match, and is not used."""
WORST = np.log(8.0)
"""Largest disagreement (log ratio of great-circle to expected km) one pair counts: a wrong reference counts no more."""


def match(table: DistanceTable, gazetteer: Gazetteer | None = None, by_distance: bool = True) -> Match:
    """Look the table's names up; break ties by the table's own distances, else by the other matches' country.

    Reference places are up to :data:`REFERENCES` names with a single candidate, large and small ones
    (every k-th by population). The table's distances are read as great-circle km through one monotone
    curve, the median km of the unambiguous places' pairs of like given distance (:func:`_curve`: the
    same for km, miles, travel times or ranks). Each name with several candidates takes the one whose
    great-circle distances agree best with what the table says, on two kinds of evidence:

    - its distances to the references; in a sparse table (a pair list) the shortest paths through the
      known pairs, which are longer than the straight line but keep its order far enough away, so that
      Sendai, Miyagi and Sendai, Kagoshima are told apart however few pairs each has;
    - in a sparse table, its own known pairs with places already placed (the unambiguous, then the
      chosen ones in later rounds, :data:`PASSES`): what tells apart same-named towns a few km apart.

    A reference, or a partner, most of whose own pairs disagree with the curve (:data:`ASTRAY`) is a
    wrong match (a unique name of another place) and is not heard. Without ``by_distance``, with fewer
    than 3 references, or where the distances cannot tell, it takes the candidate in the country that
    most unambiguous matches share (then the region most of them share), then the most populous.
    Wrong matches that remain are left out when the map is aligned
    (:func:`citymap_lightning.align.robust_similarity`).
    """
    gazetteer = gazetteer or load()
    readings = [read_name(name, gazetteer) for name in table.names]
    options = [reading.rows for reading in readings]
    keys = [fold(split_name(name)[0]) for name in table.names]
    preference = _preference(options, keys, gazetteer)
    options = [sorted(c, key=lambda r, p=p: preference(p, r), reverse=True) for p, c in enumerate(options)]
    choice = np.array([c[0] if c else -1 for c in options], dtype=np.int64)
    if by_distance:
        _by_distances(table, options, choice, gazetteer)
    places = np.flatnonzero(choice >= 0)
    rows = choice[places]
    return Match(
        places=places,
        latlon=gazetteer.latlon[rows].reshape(-1, 2),
        labels=[gazetteer.label(r) for r in rows],
        unmatched=[table.names[p] for p in np.flatnonzero(choice < 0)],
        by_distance=by_distance,
        population=gazetteer.population[rows],
        geonameid=gazetteer.geonameid[rows],
        regions=[gazetteer.region(r) for r in rows],
        countries=[gazetteer.country[r] for r in rows],
        unknown=[r.said(table.names[p]) for p, r in enumerate(readings) if r.unknown],
    )


def _by_distances(table: DistanceTable, options: list[list[int]], choice: np.ndarray, gazetteer: Gazetteer) -> None:
    """Choose (in ``choice``) among each ambiguous name's candidates by the table's distances; see :func:`match`.

    Vectorised over every candidate of every ambiguous name.
    """
    counts = np.array([len(c) for c in options], dtype=np.int64)
    unique = np.flatnonzero(counts == 1)
    ambiguous = np.flatnonzero(counts > 1)
    n_refs = REFERENCES if table.complete else min(REFERENCES, max(10, PATH_BUDGET // max(table.n, 1)))
    by_population = unique[np.argsort(-gazetteer.population[choice[unique]], kind="stable")]
    refs = by_population[:: max(1, len(unique) // n_refs)][:n_refs]  # large and small: a wrong match is often large
    if len(refs) < MIN_MATCHES or not len(ambiguous):
        return
    latlon = gazetteer.latlon
    columns = table.columns(refs) if table.complete else table.path_columns(refs)  # (n, refs)
    ref_latlon = latlon[choice[refs]]
    sample = unique[:: max(1, len(unique) * len(refs) // CALIBRATION_PAIRS)]
    sample_km = _great_circle(latlon[choice[sample]], ref_latlon)
    along = _curve(columns[sample], sample_km)
    if along is None:
        return
    # a reference matched wrongly (a unique name of another place) disagrees with most others: it is left out
    agree = np.nanmedian(np.where(np.isfinite(columns[sample]), _errors(along, columns[sample], sample_km), np.nan), 0)
    if (agree <= ASTRAY).sum() >= MIN_MATCHES:
        refs, columns, ref_latlon, sample_km = (refs[agree <= ASTRAY], columns[:, agree <= ASTRAY],
                                                ref_latlon[agree <= ASTRAY], sample_km[:, agree <= ASTRAY])  # fmt: skip
        along = _curve(columns[sample], sample_km) or along
    # every candidate of every ambiguous name, each name's in the order of preference
    per_name = counts[ambiguous]
    start = np.full(table.n, -1, dtype=np.int64)
    start[ambiguous] = np.cumsum(per_name) - per_name
    owner = np.repeat(ambiguous, per_name)
    rows = np.array([r for p in ambiguous for r in options[p]], dtype=np.int64)
    rank = np.arange(len(rows)) - start[owner]
    score = _disagreement(along, columns[owner], _great_circle_blocks(latlon[rows], ref_latlon))
    if table.complete or table.n_known_pairs > DIRECT_LIMIT:  # the references' distances are the known pairs
        _choose(choice, owner, rows, rank, score)
        return
    i, j, d, _ = table.known_values()
    i, j, d = np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([d, d])  # both ways
    found = (counts[i] > 0) & (counts[j] > 0) & (i != j) & np.isfinite(d) & (d > 0)
    i, j, d = i[found], j[found], d[found]
    both = (counts[i] == 1) & (counts[j] == 1)
    near = _curve(d[both], geo.haversine(latlon[choice[i[both]]], latlon[choice[j[both]]])) or along
    mine = counts[i] > 1  # an ambiguous name's pairs, once per candidate of it
    per = counts[i[mine]]
    candidate = np.repeat(start[i[mine]], per) + np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)
    partner, given = np.repeat(j[mine], per), np.repeat(d[mine], per)
    for _ in range(PASSES):  # the partners' choices of the last round
        # a partner most of whose own pairs are astray is a wrong match (a unique name of another place): not heard
        astray = _errors(near, d, geo.haversine(latlon[choice[i]], latlon[choice[j]])) > ASTRAY
        heard = (np.bincount(i, astray, minlength=table.n) <= 0.5 * np.bincount(i, minlength=table.n))[partner]
        error = _errors(near, given, geo.haversine(latlon[rows[candidate]], latlon[choice[partner]]))
        total = np.bincount(candidate, np.where(heard, error, 0.0), minlength=len(rows))
        number = np.maximum(np.bincount(candidate, heard, minlength=len(rows)), 1)
        before = choice[ambiguous].copy()
        _choose(choice, owner, rows, rank, score + total / number)
        if np.array_equal(choice[ambiguous], before):
            break


DIRECT_LIMIT = 2_000_000
"""Most known pairs whose distances are read one by one; a table with more (a matrix with a few empty cells) is read
through the references' shortest paths alone, which are then its known distances nearly everywhere."""
PATH_BUDGET = 500_000
"""Places times references of shortest paths that a sparse table's references may cost: 50 references up to 10,000
places, then fewer, 10 at least (each costs a Dijkstra search over the whole table)."""


def _choose(choice: np.ndarray, owner: np.ndarray, rows: np.ndarray, rank: np.ndarray, score: np.ndarray) -> None:
    """Each ambiguous name's candidate (``rows``, by ``owner``) of least ``score``; of equals, the least ``rank``."""
    order = np.lexsort((rank, score, owner))
    first = np.ones(len(order), dtype=bool)
    first[1:] = owner[order[1:]] != owner[order[:-1]]
    choice[owner[order[first]]] = rows[order[first]]


Curve = tuple[np.ndarray, np.ndarray, float]
"""A monotone curve from the table's distances to great-circle km (sorted given values, sorted km), and the km
below which distances count alike (a small share of the typical pair's)."""


def _curve(given: np.ndarray, km: np.ndarray) -> Curve | None:
    """The monotone curve from given distances to great-circle km: the median km of pairs of like given distance.

    The pairs, sorted by given distance, are cut into bins of :data:`BIN` or more (200 bins at most); each bin's
    median given distance and median km are a point of the curve, made non-decreasing, from (0, 0). Medians keep
    it where most pairs are: the pairs of a wrong match (a place on another continent) are a minority in each
    bin. None with fewer than :data:`MIN_MATCHES` usable pairs (both positive and finite).
    """
    given, km = np.ravel(given), np.ravel(km)
    usable = np.isfinite(given) & (given > 0) & np.isfinite(km) & (km > 0)
    if usable.sum() < MIN_MATCHES:
        return None
    order = np.argsort(given[usable], kind="stable")
    xs, ys = given[usable][order], km[usable][order]
    bins = np.array_split(np.arange(len(xs)), max(1, min(200, len(xs) // BIN)))
    points_x = np.array([0.0] + [float(np.median(xs[b])) for b in bins])
    points_y = np.maximum.accumulate(np.array([0.0] + [float(np.median(ys[b])) for b in bins]))
    return points_x, points_y, max(0.5 * float(np.percentile(ys, 5)), 1e-9 * float(ys[-1]))


BIN = 15
"""Fewest pairs of a bin of the curve from given distances to km."""


def _errors(curve: Curve, given: np.ndarray, km: np.ndarray) -> np.ndarray:
    """Each pair's disagreement: the absolute log ratio of its km and the km the curve gives for ``given``.

    Both plus the curve's floor, at most :data:`WORST` (a NaN ``given`` is read as 0).
    """
    xs, ys, floor = curve
    expected = np.interp(np.where(np.isfinite(given), given, 0.0), xs, ys)
    return np.minimum(np.abs(np.log((km + floor) / (expected + floor))), WORST)


def _disagreement(curve: Curve, given: np.ndarray, km: np.ndarray) -> np.ndarray:
    """Each row's mean disagreement of ``km`` with ``given`` (the same shape) read through ``curve``; 0 if none known.

    The disagreement of a pair is the absolute log ratio of its great-circle km and the km the curve
    gives, both plus the curve's floor, at most :data:`WORST`.
    """
    usable = np.isfinite(given) & (given > 0)
    return np.where(usable, _errors(curve, given, km), 0.0).sum(axis=1) / np.maximum(usable.sum(axis=1), 1)


def _great_circle_blocks(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` great-circle km, a few million at a time."""
    step = max(1, 2_000_000 // max(len(b), 1))
    blocks = [_great_circle(a[k : k + step], b) for k in range(0, len(a), step)]
    return np.concatenate(blocks) if blocks else np.zeros((0, len(b)))


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
