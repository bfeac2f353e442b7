"""The fitted map: what a fit produces, in the input's units and the real frame, for files, callbacks and notebooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from citymap_lightning import align
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

    def as_dict(self) -> dict[str, np.ndarray]:
        """``{name: position}``."""
        return dict(zip(self.names, self.coords, strict=True))


def aligned(model: CityMap, table: DistanceTable) -> tuple[np.ndarray, align.Orientation, np.ndarray | None]:
    """The best restart's coordinates in the input's unit in the real frame, the transform, and lat/lon."""
    best = model.best_restart()
    scale = model.fitting.scale
    raw = model.coords[best].detach().cpu().double().numpy()
    geometry = model.hparams.geometry
    if geometry == "sphere":
        unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        orientation, latlon = align.orient_geometry(unit, table.names, table.latlon, geometry)
        return orientation.apply(unit) * float(model.radius[best].detach()) * scale, orientation, latlon
    orientation, latlon = align.orient_geometry(raw * scale, table.names, table.latlon, geometry)
    return orientation.apply(raw * scale), orientation, latlon


def fitted_map(model: CityMap, table: DistanceTable) -> FittedMap:
    """The result of ``model`` (its stress-1 as last computed) on ``table``."""
    coords, orientation, latlon = aligned(model, table)
    best = model.best_restart()
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
    )
