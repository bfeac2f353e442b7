"""Build the base map bundled with the package: Natural Earth's coastlines and country borders at 1:50m.

Reads ``countries-50m.json`` of the npm package ``world-atlas`` 2.0.2 (Natural Earth 4.1.0 as TopoJSON,
Admin 0 countries; https://www.naturalearthdata.com, public domain) and writes
``citymap_lightning/basemap.npz``: the polylines of every coastline (an arc of one country only) and every
land border (an arc two countries share), as longitude/latitude on TopoJSON's own grid of 0.0036 x 0.0017
degrees (about 400 x 190 m), delta-coded and deflated (about 0.3 MB). The TopoJSON is decoded here, with no
other package: arcs are lists of quantized, delta-coded points, and each country lists the arcs of its rings
(``~k`` for arc ``k`` reversed). The artificial edges of the data (the cut along the 180th meridian, the
line round the South Pole) are left out. The file is written byte for byte the same on every run.

    cd /tmp && npm pack world-atlas@2.0.2     # world-atlas-2.0.2.tgz (or its unpacked countries-50m.json)
    python scripts/make_basemap.py /tmp/world-atlas-2.0.2.tgz
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "citymap_lightning" / "basemap.npz"
MEMBER = "package/countries-50m.json"
SOURCE = (
    "Natural Earth 1:50m Admin 0 countries, version 4.1.0 (public domain, https://www.naturalearthdata.com), "
    "as TopoJSON in the npm package world-atlas 2.0.2 (countries-50m.json); coastlines are the arcs of one "
    "country, borders the arcs two countries share. Made with Natural Earth. Built by scripts/make_basemap.py."
)
MAX_STEP = 0.5
"""Degrees of longitude or latitude beyond which a segment gets points between its ends."""
COAST, BORDER = 0, 1
"""Values of the file's ``kind``: one per line."""


def read_topology(path: Path) -> dict:
    """The TopoJSON of ``countries-50m.json``, from the npm tarball or the file itself."""
    if path.suffix in (".tgz", ".gz"):
        with tarfile.open(path) as archive:
            return json.load(archive.extractfile(MEMBER))
    return json.loads(path.read_text(encoding="utf-8"))


def arc_owners(geometries: list[dict]) -> dict[int, set[int]]:
    """For each arc, the countries (their index) whose rings run along it."""
    owners: dict[int, set[int]] = {}

    def rings(geometry: dict) -> list[list[int]]:
        if geometry["type"] == "Polygon":
            return geometry["arcs"]
        if geometry["type"] == "MultiPolygon":
            return [ring for polygon in geometry["arcs"] for ring in polygon]
        return []

    for k, geometry in enumerate(geometries):
        for ring in rings(geometry):
            for arc in ring:
                owners.setdefault(arc if arc >= 0 else ~arc, set()).add(k)
    return owners


def artificial(q: np.ndarray, right: int) -> np.ndarray:
    """Which segments of a quantized line are no coast or border: along the 180th meridian, across it (from
    longitude 179.9 to -180, say: a short step east drawn as a line round the world), or round the pole."""
    x, y = q[:, 0], q[:, 1]
    meridian = ((x[:-1] == 0) | (x[:-1] == right)) & (x[1:] == x[:-1])
    across = np.abs(np.diff(x)) > right // 2
    pole = (y[:-1] == 0) & (y[1:] == 0)
    return meridian | across | pole


def densified(q: np.ndarray, step: tuple[int, int]) -> np.ndarray:
    """``q`` with points added along each segment longer than ``step`` (quantized) in x or y, on its straight
    line in longitude/latitude: a long border along a parallel then stays on it once projected."""
    pieces = [q[:1]]
    for a, b in zip(q[:-1], q[1:], strict=True):
        k = int(max(np.ceil(abs(b[0] - a[0]) / step[0]), np.ceil(abs(b[1] - a[1]) / step[1]), 1))
        t = np.arange(1, k + 1)[:, None] / k
        pieces.append(np.round(a + t * (b - a)).astype(np.int64))
    return np.concatenate(pieces)


def lines(topology: dict) -> tuple[list[np.ndarray], list[int]]:
    """The quantized polylines and their kinds: coastlines and borders, the data's artificial edges cut out."""
    geometries = topology["objects"]["countries"]["geometries"]
    owners = arc_owners(geometries)
    scale = topology["transform"]["scale"]
    right = round(360 / scale[0])  # the quantized x of longitude 180
    step = (round(MAX_STEP / scale[0]), round(MAX_STEP / scale[1]))
    out, kinds = [], []
    for k, arc in enumerate(topology["arcs"]):
        if k not in owners:
            continue
        q = np.cumsum(np.asarray(arc, dtype=np.int64), axis=0)
        for piece in pieces_without(q, np.flatnonzero(artificial(q, right))):
            out.append(densified(piece, step))
            kinds.append(BORDER if len(owners[k]) >= 2 else COAST)
    return out, kinds


def pieces_without(line: np.ndarray, cut: np.ndarray) -> list[np.ndarray]:
    """``line`` split where its segments ``cut`` are, those segments dropped."""
    starts = np.concatenate([[0], cut + 1])
    ends = np.concatenate([cut + 1, [len(line)]])
    return [line[a:b] for a, b in zip(starts, ends, strict=True) if b - a >= 2]


def write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` (deflated) whose bytes do not depend on when it was written."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="world-atlas-2.0.2.tgz (npm pack) or its countries-50m.json")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    topology = read_topology(args.source)
    polylines, kinds = lines(topology)
    order = np.argsort(kinds, kind="stable")  # coastlines first, then borders
    polylines = [polylines[k] for k in order]
    points = np.concatenate(polylines)
    deltas = np.diff(points, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))  # np.cumsum gives them back
    assert np.abs(deltas).max() < 2**31
    starts = np.cumsum([0] + [len(line) for line in polylines])
    write(args.out, {
        "source": np.array(SOURCE),
        "scale": np.asarray(topology["transform"]["scale"], dtype=np.float64),
        "translate": np.asarray(topology["transform"]["translate"], dtype=np.float64),
        "deltas": deltas.astype(np.int32),
        "starts": starts.astype(np.int64),
        "kind": np.asarray(kinds, dtype=np.int8)[order],
    })  # fmt: skip
    coast = int((np.asarray(kinds) == COAST).sum())
    print(f"wrote {args.out} ({args.out.stat().st_size // 1000} KB): {len(points):,} points, {coast} coastlines, "
          f"{len(kinds) - coast} borders")  # fmt: skip


if __name__ == "__main__":
    main()
