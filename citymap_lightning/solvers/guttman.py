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

from citymap_lightning.solvers.base import DirectStep


def laplacian(weights: torch.Tensor) -> torch.Tensor:
    """``(maps, n, n)`` weighted Laplacians ``V = diag(W 1) - W`` of ``(maps, n, n)`` symmetric weights."""
    return torch.diag_embed(weights.sum(-1)) - weights


def laplacian_inverse(weights: torch.Tensor) -> torch.Tensor:
    """``(maps, n, n)`` Moore-Penrose inverses of the weighted Laplacians of ``(maps, n, n)`` symmetric weights."""
    n = weights.shape[-1]
    v = laplacian(weights)
    ones = torch.full((n, n), 1.0 / n, dtype=weights.dtype, device=weights.device)
    return torch.linalg.inv(v + ones) - ones


class GuttmanStep(DirectStep):
    """``iterations`` Guttman transforms per step of every map in ``coords`` ``(maps, n, dim)``.

    With ``fixed`` places (anchors) the transform is the majorising function's minimum over the
    free places alone, the fixed ones held: ``X_f <- V_ff^-1 (B(X) X - V_fa X_a)_f``. ``V_ff`` is
    invertible when every free place is joined to a fixed one through known pairs.

    Args:
        params: the model's parameters; the first is the coordinates.
        distances: ``(n, n)`` target distances (0 where unknown).
        weights: ``(maps, n, n)`` each map's pair weights (0 where unknown or left out).
        iterations: Guttman transforms per optimiser step.
        fixed: indices of places that do not move, or None.

    """

    def __init__(
        self,
        params: Any,
        distances: torch.Tensor,
        weights: torch.Tensor,
        iterations: int = 10,
        fixed: torch.Tensor | None = None,
    ) -> None:
        super().__init__(params)
        self.delta = distances.double()
        self.weights = weights.double()
        self.iterations = iterations
        self.free = self.fixed = None
        if fixed is None or len(fixed) == 0:
            self.inverse = laplacian_inverse(self.weights)
            return
        n = self.weights.shape[-1]
        mask = torch.ones(n, dtype=torch.bool)
        mask[fixed.cpu()] = False
        self.free, self.fixed = mask.nonzero().squeeze(1), (~mask).nonzero().squeeze(1)
        v_free = laplacian(self.weights)[:, self.free]
        self.inverse = torch.linalg.inv(v_free[:, :, self.free])
        self.coupling = v_free[:, :, self.fixed]

    def needs_gradient(self, world_size: int) -> bool:
        """Guttman transforms move by the distances alone: the loss is only logged."""
        return False

    def move(self) -> None:
        """Move every map by ``iterations`` Guttman transforms."""
        coords = self.param_groups[0]["params"][0]
        x = coords.detach().double()
        delta, weights, inverse = (t.to(x.device) for t in (self.delta, self.weights, self.inverse))
        if self.free is not None:
            free, fixed, coupling = (t.to(x.device) for t in (self.free, self.fixed, self.coupling))
        for _ in range(self.iterations):
            d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
            ratio = torch.where(d > 0, delta / d.clamp_min(1e-300), torch.zeros_like(d))
            b = -weights * ratio
            b = b - torch.diag_embed(b.sum(-1))
            if self.free is None:
                x = inverse @ (b @ x)
                continue
            moved = (b @ x)[:, free] - coupling @ x[:, fixed]
            x = x.clone()
            x[:, free] = inverse @ moved
        coords.copy_(x.to(coords.dtype))
