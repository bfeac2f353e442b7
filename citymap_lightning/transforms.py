"""Transforms of the given values into disparities: what the map's distances should be (smacof's ``type``).

- ``ratio``: the given values are distances (the default; the losses of :mod:`citymap_lightning.losses`).
- ``interval``: each given value is ``a + b * dhat`` (``dhat`` the map distance): travel times with a
  fixed cost ``a``. The loss is the share of the given values' variance the line leaves,
  ``min over a, b of sum w (t - a - b dhat)^2 / sum w (t - mean t)^2``: the least-squares line of
  the given values on the map distances, whose noise is in the given values (the other way round,
  as smacof regresses, the slope shrinks with the noise and ``a`` came out 30% low on travel times
  with 5% noise). The line is a closed form, recomputed at every step, so the loss stays one
  function of the coordinates, which any optimiser, L-BFGS included, can minimise; it does not
  change when the map is scaled, and a map collapsed to a point leaves all of the variance (1).
  The disparities are ``(t - a) / b``.
- ``ordinal``: only the order of the given values counts (ratings, ranks). The disparities are the
  isotonic regression of the map distances on that order (pool-adjacent-violators,
  ``scipy.optimize.isotonic_regression``), with the primary approach to ties (tied values may come
  in any order); each disparity is the mean of its block of map distances, so gradients flow.

The ordinal loss is normalised by the map's own distances, as in smacof (Kruskal's stress-1 against
the disparities): ``sum w (dhat - disparity)^2 / sum w dhat^2``; it does not change when the map is
scaled, so the map cannot collapse to a point. Both report stress-1 against the disparities.
"""

from __future__ import annotations

import numpy as np
import torch

TRANSFORMS = ("ratio", "interval", "ordinal")
"""Values of ``model.transform``."""


def disparities(kind: str, fitted: torch.Tensor, given: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(restarts, m)`` disparities of ``m`` pairs from map distances ``(restarts, m)`` and given values ``(m,)``.

    They depend on ``fitted`` (with gradient): the transform is refitted to the map each time.
    """
    if kind == "interval":
        a, b = interval_line(fitted, given, weights)
        return (given[None, :] - a[:, None]) / b[:, None]
    if kind == "ordinal":
        return torch.stack([_isotonic(f, given, weights) for f in fitted])
    raise ValueError(f"transform {kind!r} has no disparities: expected interval or ordinal")


def interval_line(
    fitted: torch.Tensor, given: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per restart, the weighted least-squares ``a, b`` of ``given ~ a + b * fitted``."""
    total = weights.sum().clamp_min(torch.finfo(weights.dtype).tiny)
    mean_t = (weights * given).sum() / total
    mean_f = (weights * fitted).sum(-1, keepdim=True) / total
    centred = fitted - mean_f
    b = (weights * centred * (given - mean_t)).sum(-1) / (weights * centred**2).sum(-1).clamp_min(1e-300)
    return mean_t - b * mean_f[:, 0], b


def _isotonic(fitted: torch.Tensor, given: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Disparities of one map: block means of its distances, blocks from the isotonic regression on the given order."""
    from scipy.optimize import isotonic_regression

    f = fitted.detach().cpu().double().numpy()
    order = np.lexsort((f, given.detach().cpu().double().numpy()))  # ties ordered by the map: the primary approach
    w = weights.detach().cpu().double().numpy()[order]
    blocks = isotonic_regression(f[order], weights=w).blocks
    block = torch.from_numpy(np.repeat(np.arange(len(blocks) - 1), np.diff(blocks))).to(fitted.device)
    index = torch.from_numpy(order).to(fitted.device)
    wf = (weights * fitted)[index]
    sums = torch.zeros(len(blocks) - 1, dtype=fitted.dtype, device=fitted.device).index_add(0, block, wf)
    counts = torch.zeros_like(sums).index_add(0, block, weights[index].to(fitted.dtype)).clamp_min(1e-300)
    out = torch.empty_like(fitted)
    out[index] = (sums / counts)[block]
    return out


def stress_terms(
    kind: str, fitted: torch.Tensor, given: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss per restart (see the module), and stress-1's two sums against the disparities (detached)."""
    if kind == "interval":
        a, b = interval_line(fitted, given, weights)
        left = (weights * (given[None, :] - a[:, None] - b[:, None] * fitted) ** 2).sum(-1)
        total = weights.sum().clamp_min(1e-300)
        spread = (weights * (given - (weights * given).sum() / total) ** 2).sum().clamp_min(1e-300)
        target = ((given[None, :] - a[:, None]) / b[:, None]).detach()
        loss = left / spread
    else:
        target = disparities(kind, fitted, given, weights)
        loss = None
    residual = (weights * (fitted - target) ** 2).sum(-1)
    norm = (weights * fitted**2).sum(-1)
    return (residual / norm.clamp_min(1e-300) if loss is None else loss), residual.detach(), norm.detach()
