"""Model distances, loss functions and fit metrics: pure tensor functions, no Lightning.

Distances come as ``fitted`` of shape ``(restarts, n, n)`` (one matrix per restart, from
:func:`pairwise_distances` or :func:`geodesic_distances`) against the target ``distances`` of shape
``(n, n)``. ``weights`` (symmetric, same shape as ``distances``, 0 where a pair is unknown)
multiplies each pair's term. Each pair counts once: the sums run over the whole symmetric matrix
and are halved, which costs no ``triu`` copy of an ``n x n`` matrix per call; the diagonal's terms
are 0. Every function returns one value per restart.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LOSSES = ("course", "stress", "weighted_stress")
"""Loss names accepted by :func:`loss_fn`."""


def pairwise_distances(coords: torch.Tensor) -> torch.Tensor:
    """``(restarts, n, n)`` Euclidean distances between the points of each map ``(restarts, n, dim)``.

    Uses ``torch.cdist`` without its matrix-multiply shortcut, which in float32 leaves errors of
    about 3e-4 relative on the diagonal: far more than the residuals this problem ends with.
    """
    return torch.cdist(coords, coords, compute_mode="donot_use_mm_for_euclid_dist")


def geodesic_distances(coords: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """``(restarts, n, n)`` great-circle distances between unnormalised 3-D vectors on a sphere.

    Each point is its vector's direction, so there is no singular parameterisation. The angle is
    ``atan2(|u x v|, u . v)`` in float64: ``arccos`` has an infinite gradient for close points and
    float32 rounds nearby cities together. ``radius`` is a scalar or one value per restart.
    """
    u = coords.double()
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    a, b = u[:, :, None, :], u[:, None, :, :]
    # the cross product by components: torch.linalg.cross on expanded tensors is ~40x slower here
    cx = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    cy = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    cz = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    sine = (cx * cx + cy * cy + cz * cz).clamp_min(1e-300).sqrt()
    cosine = u @ u.transpose(-1, -2)
    radius = torch.as_tensor(radius, dtype=torch.float64, device=coords.device).reshape(-1, 1, 1)
    return radius * torch.atan2(sine, cosine)


def course_objective(fitted: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The course's objective: sum over pairs of ``w (|x_i - x_j|^2 - d_ij^2)^2``."""
    return 0.5 * (weights * (fitted**2 - distances**2) ** 2).sum((-1, -2))


def raw_stress(fitted: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Kruskal's raw stress: sum over pairs of ``w (|x_i - x_j| - d_ij)^2``."""
    return 0.5 * (weights * (fitted - distances) ** 2).sum((-1, -2))


def stress_weights(distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weights ``w / d^2`` of the weighted (local) stress; pairs at distance 0 are left out."""
    safe = torch.where(distances > 0, distances, torch.ones_like(distances))
    return torch.where(distances > 0, weights / safe**2, torch.zeros_like(weights))


def weighted_stress(fitted: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Raw stress with weights ``1/d^2``, the graph-drawing standard that favours local accuracy."""
    return raw_stress(fitted, distances, stress_weights(distances, weights))


def loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss function called ``name`` (one of :data:`LOSSES`)."""
    table = {"course": course_objective, "stress": raw_stress, "weighted_stress": weighted_stress}
    if name not in table:
        raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")
    return table[name]


def stress1(fitted: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Kruskal's stress-1, ``sqrt(sum w (dhat - d)^2 / sum w d^2)``: scale-free, 0 for a perfect map."""
    return torch.sqrt((weights * (fitted - distances) ** 2).sum((-1, -2)) / (weights * distances**2).sum())


def city_stress(fitted: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Each city's share of the residual: ``(restarts, n)``, summing to 1 over the cities of a map.

    A pair's squared residual is split evenly between its two cities.
    """
    per_city = (weights * (fitted - distances) ** 2).sum(-1)
    return per_city / per_city.sum(-1, keepdim=True).clamp_min(torch.finfo(per_city.dtype).tiny)
