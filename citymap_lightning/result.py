"""The fitted map: what a fit produces, in the input's units and the real frame, for files, callbacks and notebooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from citymap_lightning import align, comparison, uncertainty
from citymap_lightning import geometry as geo

if TYPE_CHECKING:
    from citymap_lightning.problem import MapState, Problem


@dataclass
class FittedMap:
    """A fitted map (the best restart), made by :func:`fitted_map` from the problem and the maps, without the model.

    Attributes:
        names: place names, in input order.
        coords: ``(n, dim)`` positions in the input's unit; a 2-D map has x east and y north, origin at
            the centroid (see :mod:`citymap_lightning.align`); a sphere's are 3-D points at its radius.
        stress1: Kruskal's stress-1 over the known pairs (or the fit's fixed sample of them).
        place_share: ``(n,)`` each place's share of the squared residuals (sums to 1).
        geometry: ``plane``, ``space`` or ``sphere``.
        unit: the input's unit when known (``km`` for latitude/longitude), else "".
        radius: the sphere's radius in the input's unit (None for flat geometries).
        latlon: ``(n, 2)`` latitude/longitude of the fitted places where the real frame is known, else None.
        orientation: the transform from the fit's own coordinates (times the scale) to ``coords``.
        located_by: ``anchors`` (the anchors' frame), ``input`` (latitude/longitude given), ``positions``
            (rotated onto the real positions given to compare with, scaled onto them for latitude/longitude), ``names``
            (estimated from the places found in the gazetteer by name) or None (no real frame).
        km_per_unit: with ``names``, great-circle km per unit of the input (1.609 for miles; about
            0.77 for road km, whose detour factor is its inverse).
        position_error_km: each place's distance from its known position (NaN where unknown), after the alignment.
        frame: how points of the map become latitude/longitude, where the real frame is known.
        replicates: ``(K, n, 2)`` bootstrap replicates moved onto ``coords`` by Procrustes (no scaling),
            when the fit had them (see :mod:`citymap_lightning.uncertainty`).
        matches: for a flat map of places found by name, which matches the frame was fitted on and how
            far each lies from where the map puts it (see :func:`citymap_lightning.align.frame_from_names`).
        geonames: for places found by name, each place's ``geonameid``, ``region`` and ``country`` as text
            ("" where its name was not found), as ``coordinates.csv`` and the GeoParquet have them.

    """

    names: list[str]
    coords: np.ndarray
    stress1: float
    place_share: np.ndarray
    geometry: str
    unit: str
    radius: float | None
    latlon: np.ndarray | None
    orientation: align.Orientation
    located_by: str | None = None
    km_per_unit: float | None = None
    position_error_km: np.ndarray | None = None
    frame: align.GeoFrame | None = None
    replicates: np.ndarray | None = None
    matches: align.NamesFrame | None = None
    geonames: dict[str, list[str]] | None = None

    def to_latlon(self, coords: np.ndarray) -> np.ndarray | None:
        """Latitude/longitude of points in this map's frame (new places), or None where the frame is unknown."""
        return None if self.frame is None else self.frame.latlon(np.asarray(coords, dtype=np.float64))

    def as_dict(self) -> dict[str, np.ndarray]:
        """``{name: position}``."""
        return dict(zip(self.names, self.coords, strict=True))

    def to_geopandas(self) -> Any:
        """A GeoDataFrame of the places: lon/lat points (EPSG:4326) in a real frame, else x/y without CRS.

        Needs geopandas (the ``geo`` extra); see :func:`citymap_lightning.geodata.to_geodataframe`.
        """
        from citymap_lightning import geodata

        return geodata.to_geodataframe(self)


@dataclass
class Aligned:
    """A fit in the real frame: coordinates in the input's unit, the transform, and what the frame knows."""

    coords: np.ndarray
    orientation: align.Orientation
    latlon: np.ndarray | None = None
    km_per_unit: float | None = None
    frame: align.GeoFrame | None = None
    matches: align.NamesFrame | None = None


def aligned(problem: Problem, state: MapState, scale: float) -> Aligned:
    """The best restart in the real frame, with the km per input unit when the frame comes from names.

    Precedence of what fixes the frame: anchors (nothing is aligned: the fit is in their frame),
    latitude/longitude in the input, real positions, places found by name in the gazetteer (a flat 2-D map), the
    course's rule, the principal axes. Real positions (``--data.positions``) rotate and reflect the map
    onto them, never scale it.
    """
    table, best = problem.table, state.best
    raw = state.coords[best].detach().cpu().double().numpy()
    geometry, flat_2d = problem.geometry.name, problem.geometry.name == "plane" and raw.shape[1] == 2
    placed = table.anchors
    identity = align.Orientation(np.eye(raw.shape[1]), np.zeros(raw.shape[1]), np.zeros(raw.shape[1]))
    if problem.curved:
        unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        if placed is not None:
            orientation, latlon, frame = identity, geo.from_unit_vectors(unit), align.GeoFrame()
        else:
            orientation, latlon, frame = align.orient_geometry(unit, table.names, table.latlon, geometry)
        coords = orientation.apply(unit) * float(state.radius[best].detach()) * scale
        return Aligned(coords, orientation, latlon, frame=frame)
    coords = raw * scale
    if placed is not None:
        frame = None if placed.centre is None else align.GeoFrame(placed.centre)
        return Aligned(coords, identity, None if frame is None else frame.latlon(coords), frame=frame)
    positions = table.positions
    if table.latlon is None and positions is not None and flat_2d:
        orientation = comparison.frame(coords, positions)  # rotated and reflected onto them, in the input's unit
        out = orientation.apply(coords)
        frame = comparison.geo_frame(out, positions)
        if frame is None:
            return Aligned(out, orientation)
        return Aligned(out, orientation, frame.latlon(out), frame.km_per_unit, frame)
    located = table.located
    if table.latlon is None and located is not None and flat_2d:
        matches = align.frame_from_names(coords, located.places, located.latlon)
        if not matches.enough:  # too few matches agree with the map: they cannot say where north is
            orientation = align.orient(coords, table.names)
            return Aligned(orientation.apply(coords), orientation, matches=matches)
        out = matches.orientation.apply(coords)  # in the input's unit: rotated and reflected onto the real frame
        frame = matches.frame
        return Aligned(out, matches.orientation, frame.latlon(out), frame.km_per_unit, frame, matches)
    orientation, latlon, frame = align.orient_geometry(coords, table.names, table.latlon, geometry)
    return Aligned(orientation.apply(coords), orientation, latlon, frame=frame)


def fitted_map(problem: Problem, state: MapState, scale: float, residuals: torch.Tensor) -> FittedMap:
    """The best restart of the maps ``state`` (stress-1 as last computed), fitted to ``problem`` at ``scale``.

    ``residuals`` is each place's sum of squared residuals in the best restart.
    """
    table = problem.table
    found = aligned(problem, state, scale)
    latlon, km_per_unit = found.latlon, found.km_per_unit
    best = state.best
    located_by, error = None, None
    if table.anchors is not None:
        located_by = "anchors"
        if table.latlon is not None and latlon is not None:
            error = geo.haversine(latlon, table.latlon)
        elif latlon is not None:
            error = np.full(table.n, np.nan)
            error[table.anchors.index] = geo.haversine(latlon[table.anchors.index], table.anchors.latlon)
    elif latlon is not None and table.latlon is not None:
        located_by, error = "input", geo.haversine(latlon, table.latlon)
    elif latlon is not None and table.positions is not None and found.matches is None:
        located_by, error = "positions", np.full(table.n, np.nan)
        if table.positions.latlon is not None:
            error[table.positions.index] = geo.haversine(latlon[table.positions.index], table.positions.latlon)
    elif latlon is not None and km_per_unit is not None:
        located_by, error = "names", np.full(table.n, np.nan)
        kept = found.matches.kept  # a match left out of the alignment has no known position
        error[table.located.places[kept]] = found.matches.km[kept]
    replicates = None
    if problem.bootstrap and found.coords.shape[1] == 2:
        raw = state.coords[problem.restarts :].detach().cpu().double().numpy() * scale
        replicates = uncertainty.aligned_replicates(found.coords, raw)
    residuals = residuals.double()
    share = (residuals / residuals.sum().clamp_min(torch.finfo(torch.float64).tiny)).cpu().numpy()
    radius = state.radius
    return FittedMap(
        names=list(table.names),
        coords=found.coords,
        stress1=float(state.stress1[best]),
        place_share=share,
        geometry=problem.geometry.name,
        unit=table.unit,
        radius=None if radius is None else float(radius[best].detach()) * scale,
        latlon=latlon,
        orientation=found.orientation,
        located_by=located_by,
        km_per_unit=km_per_unit,
        position_error_km=error,
        frame=found.frame,
        replicates=replicates,
        matches=found.matches,
        geonames=None if table.located is None else table.located.columns(table.n),
    )
