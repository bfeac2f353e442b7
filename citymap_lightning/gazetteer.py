"""Where named places are: a bundled GeoNames gazetteer, matched by name, ties broken by the distances.

A table of distances between named places (a road atlas's table, ``eurodist``) says nothing about
north or east, but the names do. :func:`match` looks each name up (case, accents and punctuation
folded; English and other Latin-script exonyms such as Lyons, Marseilles, Cologne and Munich
included); where a name has several candidates (Paris, France and Paris, Texas), it takes the one
whose great-circle distances to the other matched places agree best with the table. The map is
then fitted onto the matched places by a similarity (rotation, reflection, scale and translation):
north up, east right, and the scale tells the distances' unit or detour factor.

The gazetteer is ``gazetteer.tsv.gz``, built offline by ``scripts/make_gazetteer.py`` from GeoNames
(CC BY 4.0) cities of 15,000 people or more.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from citymap_lightning import geo
from citymap_lightning.tables import DistanceTable

PATH = Path(__file__).resolve().parent / "gazetteer.tsv.gz"
"""The bundled gazetteer."""

MIN_MATCHES = 3
"""Fewest matched, non-collinear places that fix a frame."""


def fold(name: str) -> str:
    """A name reduced for matching: accents removed, case folded, punctuation and spaces collapsed."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"\([^)]*\)", " ", text)  # "Paris (France)"
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


@dataclass
class Gazetteer:
    """Cities by folded name: ``index[key]`` lists rows of ``latlon``, ``population``, ``names``, ``country``."""

    latlon: np.ndarray
    population: np.ndarray
    names: list[str]
    country: list[str]
    index: dict[str, list[int]]


@lru_cache(maxsize=1)
def load(path: Path = PATH) -> Gazetteer:
    """The bundled gazetteer (read once per process, about 0.3 s)."""
    latlon, population, names, country, index = [], [], [], [], {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        next(f)
        for row, line in enumerate(f):
            _, lat, lon, pop, cc, name, alternates = line.rstrip("\n").split("\t")
            latlon.append((float(lat), float(lon)))
            population.append(int(pop))
            names.append(name)
            country.append(cc)
            keys = {fold(name)} | {fold(a) for a in alternates.split("|") if a}
            for key in keys:
                index.setdefault(key, []).append(row)
    return Gazetteer(np.array(latlon), np.array(population, dtype=np.int64), names, country, index)


@dataclass
class Match:
    """Places of a table found in the gazetteer.

    Attributes:
        places: indices (in the table) of the matched places.
        latlon: their latitude/longitude.
        labels: the gazetteer's name and country of each, e.g. ``Lyon (FR)``.
        unmatched: names not found, or whose distances contradicted every candidate.
        by_distance: whether ties were broken (and matches checked) by the table's distances.

    """

    places: np.ndarray
    latlon: np.ndarray
    labels: list[str]
    unmatched: list[str]
    by_distance: bool = True


REFERENCES = 50
"""Most places whose distances are used to break ties and check matches (the most populous unambiguous ones)."""


def match(table: DistanceTable, gazetteer: Gazetteer | None = None, by_distance: bool = True) -> Match:
    """Look the table's names up; break ties, and drop contradicted matches, by the table's own distances.

    Reference places are up to :data:`REFERENCES` names with a single candidate. Each name with
    several candidates takes the one whose great-circle distances to the references, times the
    table's median ratio of given to great-circle distance, best agree with the table; a match whose
    distances still disagree by more than a factor e^0.5 (median) is dropped as unmatched. Without
    ``by_distance`` (values not proportional to distance: ranks, times with a fixed cost), each name
    takes its most populous candidate.
    """
    gazetteer = gazetteer or load()
    keys = [fold(name) for name in table.names]  # names that are numbers (places called 0..n-1) match nothing
    candidates = [[] if not re.search(r"[^\W\d_]", key) else gazetteer.index.get(key, []) for key in keys]
    choice = np.array([max(c, key=lambda r: gazetteer.population[r]) if c else -1 for c in candidates])
    found = np.flatnonzero(choice >= 0)
    unique = np.array([p for p in found if len(candidates[p]) == 1], dtype=np.int64)
    pool = unique if len(unique) >= MIN_MATCHES else found
    refs = pool[np.argsort(-gazetteer.population[choice[pool]], kind="stable")][:REFERENCES]
    if len(refs) >= 2 and by_distance:
        columns = table.columns(refs)  # (n, refs): the given distances to the references
        ratio = _ratio(columns[refs], gazetteer.latlon[choice[refs]], gazetteer.latlon[choice[refs]])
        if np.isfinite(ratio):
            ref_latlon = gazetteer.latlon[choice[refs]]
            for p in found:
                if len(candidates[p]) > 1:
                    rows = np.array(candidates[p])
                    scores = _disagreement(columns[[p] * len(rows)], gazetteer.latlon[rows], ref_latlon, ratio)
                    choice[p] = rows[int(np.argmin(scores))]
            scores = _disagreement(columns[found], gazetteer.latlon[choice[found]], ref_latlon, ratio)
            choice[found[scores > 0.5]] = -1
    places = np.flatnonzero(choice >= 0)
    return Match(
        places=places,
        latlon=gazetteer.latlon[choice[places]].reshape(-1, 2),
        labels=[f"{gazetteer.names[r]} ({gazetteer.country[r]})" for r in choice[places]],
        unmatched=[table.names[p] for p in np.flatnonzero(choice < 0)],
        by_distance=by_distance,
    )


def _great_circle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` great-circle km."""
    return geo.haversine(a[:, None, :], b[None, :, :])


def _ratio(given: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The median ratio of given distance to great-circle km over the usable pairs."""
    true = _great_circle(a, b)
    usable = np.isfinite(given) & (given > 0) & (true > 0)
    return float(np.median(given[usable] / true[usable])) if usable.any() else float("nan")


def _disagreement(given: np.ndarray, latlon: np.ndarray, ref_latlon: np.ndarray, ratio: float) -> np.ndarray:
    """Per row: median ``|log(given / (ratio * great-circle))|`` to the references (0 where nothing compares)."""
    true = _great_circle(latlon, ref_latlon) * ratio
    usable = np.isfinite(given) & (given > 0) & (true > 0)
    logs = np.where(usable, np.abs(np.log(np.where(usable, given, 1.0) / np.where(usable, true, 1.0))), np.nan)
    out = np.full(len(given), 0.0)
    some = usable.any(axis=1)
    out[some] = np.nanmedian(logs[some], axis=1)
    return out


def non_collinear(latlon: np.ndarray) -> bool:
    """At least 3 places that span a plane (not all on one great-circle line)."""
    if len(latlon) < MIN_MATCHES:
        return False
    xy = geo.azimuthal_equidistant(latlon, geo.spherical_centre(latlon))
    singular = np.linalg.svd(xy - xy.mean(axis=0), compute_uv=False)
    return bool(singular[-1] > 1e-3 * singular[0])
