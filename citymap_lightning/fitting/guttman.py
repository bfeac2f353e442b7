"""SMACOF's Guttman transform as an optimiser: each map's step on its own, never raising its weighted raw stress.

For ``sigma(X) = sum_{i<j} w_ij (d_ij(X) - delta_ij)^2`` the update ``X <- V^+ B(X) X`` (``V`` the
weighted Laplacian, ``B(X)_ij = -w_ij delta_ij / d_ij(X)``) is the minimum of a majorising
function: the stress never rises, and no learning rate, line search or history couples the maps of
a batch. That is what bootstrap replicates need: ``K`` maps fitted together, each to its own
resampled weights, independent of the others and of the main map.
"""

from __future__ import annotations

from typing import Any

import torch

from citymap_lightning.fitting.base import DirectStep


def laplacian_inverse(weights: torch.Tensor) -> torch.Tensor:
    """``(maps, n, n)`` Moore-Penrose inverses of the weighted Laplacians of ``(maps, n, n)`` symmetric weights."""
    n = weights.shape[-1]
    v = torch.diag_embed(weights.sum(-1)) - weights
    ones = torch.full((n, n), 1.0 / n, dtype=weights.dtype, device=weights.device)
    return torch.linalg.inv(v + ones) - ones


class GuttmanStep(DirectStep):
    """``iterations`` Guttman transforms per step of every map in ``coords`` ``(maps, n, dim)``.

    Args:
        params: the model's parameters; the first is the coordinates.
        distances: ``(n, n)`` target distances (0 where unknown).
        weights: ``(maps, n, n)`` each map's pair weights (0 where unknown or left out).
        iterations: Guttman transforms per optimiser step.

    """

    def __init__(self, params: Any, distances: torch.Tensor, weights: torch.Tensor, iterations: int = 10) -> None:
        super().__init__(params)
        self.delta = distances.double()
        self.weights = weights.double()
        self.inverse = laplacian_inverse(self.weights)
        self.iterations = iterations

    def move(self) -> None:
        """Move every map by ``iterations`` Guttman transforms."""
        coords = self.param_groups[0]["params"][0]
        x = coords.detach().double()
        delta, weights, inverse = (t.to(x.device) for t in (self.delta, self.weights, self.inverse))
        for _ in range(self.iterations):
            d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
            ratio = torch.where(d > 0, delta / d.clamp_min(1e-300), torch.zeros_like(d))
            b = -weights * ratio
            b = b - torch.diag_embed(b.sum(-1))
            x = inverse @ (b @ x)
        coords.copy_(x.to(coords.dtype))
