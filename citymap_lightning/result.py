"""The fitted map: what a fit produces, in the input's units and the real frame, for files, callbacks and notebooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from citymap_lightning import align, geo
from citymap_lightning.tables import DistanceTable

if TYPE_CHECKING:
    from citymap_lightning.model import CityMap


@dataclass
class FittedMap:
    """A fitted map (the best restart), made by :meth:`CityMap.fitted_map <citymap_lightning.model.CityMap.fitted_map>`.

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
        located_by: ``input`` (latitude/longitude given), ``names`` (estimated from the places found
            in the gazetteer by name) or None (no real frame).
        km_per_unit: with ``names``, great-circle km per unit of the input (1.609 for miles; about
            0.77 for road km, whose detour factor is its inverse).
        position_error_km: each place's distance from its known position (NaN where unknown), after the alignment.

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

    def as_dict(self) -> dict[str, np.ndarray]:
        """``{name: position}``."""
        return dict(zip(self.names, self.coords, strict=True))


def aligned(model: CityMap, table: DistanceTable) -> tuple[np.ndarray, align.Orientation, np.ndarray | None]:
    """The best restart's coordinates in the input's unit in the real frame, the transform, and lat/lon."""
    coords, orientation, latlon, _ = _aligned(model, table)
    return coords, orientation, latlon


def _aligned(
    model: CityMap, table: DistanceTable
) -> tuple[np.ndarray, align.Orientation, np.ndarray | None, float | None]:
    """:func:`aligned`, and the km per input unit when the frame comes from names.

    Precedence of what fixes the frame: latitude/longitude in the input, then places found by name
    in the gazetteer (a flat 2-D map), then the course's rule, then the principal axes.
    """
    best = model.best_restart()
    scale = model.fitting.scale
    raw = model.coords[best].detach().cpu().double().numpy()
    geometry = model.hparams.geometry
    if geometry == "sphere":
        unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        orientation, latlon = align.orient_geometry(unit, table.names, table.latlon, geometry)
        return orientation.apply(unit) * float(model.radius[best].detach()) * scale, orientation, latlon, None
    coords = raw * scale
    located = table.located
    if table.latlon is None and located is not None and geometry == "plane" and coords.shape[1] == 2:
        truth, centre = align.true_plane(located.latlon)
        fit, km_per_unit = align.similarity(coords[located.places], truth)
        projected = km_per_unit * (fit.apply(coords) - fit.offset) + fit.offset  # km on the true plane
        latlon = geo.inverse_azimuthal_equidistant(projected, centre)
        # coordinates stay in the input's unit: rotated and reflected onto the real frame, centred
        orientation = align.Orientation(fit.rotation, coords.mean(axis=0), np.zeros(2))
        return orientation.apply(coords), orientation, latlon, km_per_unit
    orientation, latlon = align.orient_geometry(coords, table.names, table.latlon, geometry)
    return orientation.apply(coords), orientation, latlon, None


def fitted_map(model: CityMap, table: DistanceTable) -> FittedMap:
    """The result of ``model`` (its stress-1 as last computed) on ``table``."""
    coords, orientation, latlon, km_per_unit = _aligned(model, table)
    best = model.best_restart()
    located_by, error = None, None
    if latlon is not None and table.latlon is not None:
        located_by, error = "input", geo.haversine(latlon, table.latlon)
    elif latlon is not None and km_per_unit is not None:
        located_by, error = "names", np.full(table.n, np.nan)
        error[table.located.places] = geo.haversine(latlon[table.located.places], table.located.latlon)
    residuals = model.place_residuals().double()
    share = (residuals / residuals.sum().clamp_min(torch.finfo(torch.float64).tiny)).cpu().numpy()
    radius = model.radius
    return FittedMap(
        names=list(table.names),
        coords=coords,
        stress1=float(model.stress1[best]),
        place_share=share,
        geometry=model.hparams.geometry,
        unit=table.unit,
        radius=None if radius is None else float(radius[best].detach()) * model.fitting.scale,
        latlon=latlon,
        orientation=orientation,
        located_by=located_by,
        km_per_unit=km_per_unit,
        position_error_km=error,
    )
