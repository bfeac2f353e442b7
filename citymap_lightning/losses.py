"""Loss functions and fit metrics: pure tensor functions, no Lightning.

Every function takes ``coords`` of shape ``(restarts, n, dim)`` (one map per restart) and the
target ``distances`` of shape ``(n, n)``, and returns one value per restart. ``weights`` (same
shape as ``distances``, 0 where a pair is unknown) multiplies each pair's term; pairs are counted
once each (``i < j``), and the diagonal never counts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LOSSES = ("course", "stress", "weighted_stress")
"""Loss names accepted by :func:`loss_fn`."""


def pairwise_distances(coords: torch.Tensor) -> torch.Tensor:
    """``(restarts, n, n)`` Euclidean distances between the points of each map.

    Uses ``torch.cdist`` without its matrix-multiply shortcut, which in float32 leaves errors of
    about 3e-4 relative on the diagonal: far more than the residuals this problem ends with.
    """
    return torch.cdist(coords, coords, compute_mode="donot_use_mm_for_euclid_dist")


def _upper(weights: torch.Tensor) -> torch.Tensor:
    """Weights with the diagonal and lower triangle zeroed, so each pair counts once."""
    return torch.triu(weights, diagonal=1)


def course_objective(coords: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The course's objective: sum over pairs of ``w (|x_i - x_j|^2 - d_ij^2)^2``.

    Squared distances are differentiable everywhere (no square root at coinciding points), which
    is what makes the course's random start near the origin safe.
    """
    diff = coords[:, :, None, :] - coords[:, None, :, :]
    sq = (diff * diff).sum(-1)
    return (_upper(weights) * (sq - distances**2) ** 2).sum((-1, -2))


def raw_stress(coords: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Kruskal's raw stress: sum over pairs of ``w (|x_i - x_j| - d_ij)^2``."""
    fitted = pairwise_distances(coords)
    return (_upper(weights) * (fitted - distances) ** 2).sum((-1, -2))


def stress_weights(distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weights ``w / d^2`` of the weighted (local) stress; pairs at distance 0 are left out."""
    safe = torch.where(distances > 0, distances, torch.ones_like(distances))
    return torch.where(distances > 0, weights / safe**2, torch.zeros_like(weights))


def weighted_stress(coords: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Raw stress with weights ``1/d^2``, the graph-drawing standard that favours local accuracy."""
    return raw_stress(coords, distances, stress_weights(distances, weights))


def loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss function called ``name`` (one of :data:`LOSSES`)."""
    table = {"course": course_objective, "stress": raw_stress, "weighted_stress": weighted_stress}
    if name not in table:
        raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")
    return table[name]


def stress1(coords: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Kruskal's stress-1, ``sqrt(sum w (dhat - d)^2 / sum w d^2)``: scale-free, 0 for a perfect map."""
    upper = _upper(weights)
    fitted = pairwise_distances(coords)
    return torch.sqrt((upper * (fitted - distances) ** 2).sum((-1, -2)) / (upper * distances**2).sum())


def city_stress(coords: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Each city's share of the residual: ``(restarts, n)``, summing to 1 over the cities of a map.

    A pair's squared residual is split evenly between its two cities.
    """
    w = weights * (1 - torch.eye(weights.shape[-1], dtype=weights.dtype, device=weights.device))
    fitted = pairwise_distances(coords)
    per_city = (w * (fitted - distances) ** 2).sum(-1)
    return per_city / per_city.sum(-1, keepdim=True).clamp_min(torch.finfo(per_city.dtype).tiny)
