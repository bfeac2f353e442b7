"""The problem a fit solves, built and checked once: the table, a geometry, a loss, a transform, held places.

:func:`check_settings` refuses, in one line, the settings no solver can fit whatever the data (the
CLI calls it before reading any file); :func:`build` makes the :class:`Problem` of a table. The
solvers (:mod:`citymap_lightning.solvers`) take a problem and the current :class:`MapState`; neither
knows the LightningModule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from citymap_lightning import geometry, losses, starts, transforms
from citymap_lightning.errors import ConfigError
from citymap_lightning.tables import DistanceTable


def check_settings(
    num_places: int,
    geometry: str,
    dim: int | None,
    radius: float | str | None,
    loss: str,
    start: str,
    restarts: int,
    anneal_epochs: int,
    anneal_eps: float,
    transform: str,
    bootstrap: int,
) -> tuple[int, str]:
    """Refuse, in one line, settings that cannot work whatever the data; return the dim and the loss.

    ``dim`` None is the geometry's own; the loss ``auto`` is resolved (:func:`~citymap_lightning.losses.resolve_loss`).
    """
    if geometry not in _GEOMETRIES:
        raise ConfigError(f"unknown geometry {geometry!r}: expected one of {', '.join(_GEOMETRIES)}")
    if dim is None:
        dim = 2 if geometry == "plane" else 3
    if geometry == "sphere" and dim != 3:
        raise ConfigError(f"geometry 'sphere' places points by 3-D vectors; dim={dim} cannot be used")
    if isinstance(radius, str) and radius != "learn":
        raise ConfigError(f"radius {radius!r}: expected a number, learn, or nothing")
    if radius is not None and (geometry != "sphere" or (radius != "learn" and not radius > 0)):
        raise ConfigError("radius must be positive (or learn) and is only used with geometry 'sphere'")
    if transform not in transforms.TRANSFORMS:
        raise ConfigError(f"unknown transform {transform!r}: expected one of {', '.join(transforms.TRANSFORMS)}")
    if loss != losses.AUTO and loss not in losses.LOSSES:
        raise ConfigError(f"unknown loss {loss!r}: expected auto or one of {', '.join(losses.LOSSES)}")
    loss = losses.resolve_loss(loss, transform)
    if start not in starts.STARTS:
        raise ConfigError(f"unknown start {start!r}: expected one of {', '.join(starts.STARTS)}")
    if restarts < 1 or dim < 1 or num_places < 1:
        raise ConfigError("num_places, dim and restarts must be positive")
    if bootstrap < 0 or bootstrap == 1:
        raise ConfigError(f"bootstrap is {bootstrap}: give 0 (none) or at least 2 replicates (50 is usual)")
    if transform != "ratio" and losses.get(loss).squared:
        raise ConfigError(f"transform {transform!r} fits disparities by stress: the course objective compares "
                          "squared distances and takes no transform; use --model.loss stress (or auto)")  # fmt: skip
    if anneal_epochs < 1 or not 0 < anneal_eps <= 1:
        raise ConfigError("anneal_epochs must be positive and anneal_eps in (0, 1]")
    return dim, loss


_GEOMETRIES = geometry.GEOMETRIES


@dataclass
class Problem:
    """What is fitted: every solver reads it, none changes it.

    Attributes:
        table: the distances (dense, latitude/longitude or pairs), with anchors and positions.
        geometry: :class:`~citymap_lightning.geometry.Plane` or :class:`~citymap_lightning.geometry.Sphere`.
        loss: the registered :class:`~citymap_lightning.losses.Loss`.
        transform: ``ratio``, ``interval`` or ``ordinal`` (:mod:`citymap_lightning.transforms`).
        restarts: maps fitted at once, the best kept.
        bootstrap: replicate maps fitted beside them.
        anchored: the held places' indices and their positions in normalised units, or None.

    """

    table: DistanceTable
    geometry: geometry.Geometry
    loss: losses.Loss
    transform: str = "ratio"
    restarts: int = 1
    bootstrap: int = 0
    anchored: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def maps(self) -> int:
        """Maps fitted at once: the restarts and the bootstrap replicates."""
        return self.restarts + self.bootstrap

    @property
    def curved(self) -> bool:
        """Whether the geometry is the sphere (distances are great-circle, points are directions)."""
        return self.geometry.curved

    def pair_distances(self, state: MapState, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """``(maps, m)`` map distances of the pairs ``(i[k], j[k])`` (normalised units, with gradient)."""
        return self.geometry.pair_distances(state.coords, i, j, state.radius)

    def distances(self, state: MapState) -> torch.Tensor:
        """``(maps, n, n)`` map distances (float64 on the sphere)."""
        return self.geometry.distances(state.coords, state.radius)


@dataclass
class MapState:
    """The maps as they stand at one step, and what a solver needs of the run around it.

    Attributes:
        coords: ``(maps, n, dim)`` the coordinates (the LightningModule's parameter, in normalised units).
        radius: ``(maps,)`` the sphere's radius in normalised units, or None.
        epoch: the current epoch; ``step``: the optimiser steps taken (evaluations are cached per step).
        best: the index of the best restart, as last evaluated.
        world_size: the number of DDP processes; ``reduce`` sums a tensor over them.
        logging: whether this step's values are logged (the solver then computes them).
        stress1: ``(maps,)`` each map's stress-1 as last computed.
        gradient: whether the step follows the loss's gradient (not Guttman transforms, which move by their own rule).

    """

    coords: torch.Tensor
    radius: torch.Tensor | None = None
    epoch: int = 0
    step: int = 0
    best: int = 0
    world_size: int = 1
    reduce: Callable[[torch.Tensor], torch.Tensor] = field(default=lambda x: x)
    logging: bool = False
    stress1: torch.Tensor | None = None
    gradient: bool = True

    @property
    def device(self) -> torch.device:
        """Where the coordinates are."""
        return self.coords.device


@dataclass
class StepResult:
    """What a solver's training step gives back: the loss to differentiate and what the model logs.

    Attributes:
        loss: the scalar whose gradient the step follows (summed over the maps).
        stress1: ``(maps,)`` each map's stress-1 at this step, when ``state.logging`` (else None).
        logs: the step's values by TensorBoard tag (``train/loss`` among them), when logged; a tensor of
            one value per map is logged for the best restart.
        shown: the tags also shown on the progress bar.

    """

    loss: torch.Tensor
    stress1: torch.Tensor | None = None
    logs: dict[str, Any] = field(default_factory=dict)
    shown: tuple[str, ...] = ("train/loss", "train/stress1")


def build(settings: Any, table: DistanceTable, shape: geometry.Geometry | None = None) -> Problem:
    """The problem of ``table`` under the model's ``settings`` (its hparams, already checked) in the geometry ``shape``.

    ``shape`` None is the settings' own geometry.
    """
    shape = shape or geometry.of(settings["geometry"], settings.get("dim"), settings.get("radius"))
    return Problem(
        table=table,
        geometry=shape,
        loss=losses.get(settings["loss"]),
        transform=settings.get("transform", "ratio"),
        restarts=settings.get("restarts", 1),
        bootstrap=settings.get("bootstrap", 0),
    )
