"""Kruskal's stress-1, the one measure of fit every part of the package reports.

``stress1 = sqrt(sum w (dhat - d)^2 / sum w d^2)``: scale-free, 0 for a perfect map, comparable
across losses, starts and algorithms. :func:`stress1_sums` computes the two sums of a set of pairs,
:class:`Stress1` adds them up over batches (and over DDP ranks: its states are sums), and
:func:`stress1` is the value of one set of pairs at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchmetrics import Metric


def stress1_sums(fitted: Any, distances: Any, weights: Any = None, dims: Any = None) -> tuple[Any, Any]:
    """``sum w (dhat - d)^2`` and ``sum w d^2`` (over ``dims``; every axis by default). Tensors or arrays."""
    squared = (fitted - distances) ** 2
    norm = distances**2
    if weights is not None:
        squared, norm = weights * squared, weights * norm
    if isinstance(squared, np.ndarray):
        return squared.sum(axis=dims), norm.sum(axis=dims)
    return (squared.sum(dims), norm.sum(dims)) if dims is not None else (squared.sum(), norm.sum())


def from_sums(residual: Any, norm: Any) -> Any:
    """Stress-1 from its two sums."""
    return (residual / norm) ** 0.5


def stress1(fitted: Any, distances: Any, weights: Any = None, dims: Any = None) -> Any:
    """Stress-1 of ``fitted`` against ``distances`` (see the module's docstring)."""
    return from_sums(*stress1_sums(fitted, distances, weights, dims))


class Stress1(Metric):
    """Stress-1 of each of ``restarts`` maps, accumulated over batches of pairs; DDP adds the ranks' sums.

    ``update(residual, norm)`` takes a batch's ``sum w (dhat - d)^2`` (one per map) and ``sum w d^2``.
    """

    full_state_update = False

    def __init__(self, restarts: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("residual", default=torch.zeros(restarts, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("norm", default=torch.zeros(restarts, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, residual: torch.Tensor, norm: torch.Tensor) -> None:
        """Add one batch's sums (``norm``: one for all maps, or one per map when a transform makes it the map's own)."""
        self.residual += residual.detach().double().reshape(self.residual.shape).to(self.residual.device)
        self.norm += torch.broadcast_to(norm.detach().double().to(self.norm.device), self.norm.shape)

    def compute(self) -> torch.Tensor:
        """Stress-1 per map."""
        return from_sums(self.residual, self.norm.clamp_min(torch.finfo(torch.float64).tiny))
