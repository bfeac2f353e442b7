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


class Loss:
    """One loss: its per-pair term and weights, and what fits it. Register a subclass with :func:`register`.

    Stress-type losses (``squared = False``) are ``w * d^power * (dhat - d)^2`` summed over the known
    pairs: :meth:`pair_weights` gives ``w * d^power`` (pairs at distance 0 left out when ``power < 0``).
    The course objective (``squared = True``) compares squared distances, ``w (dhat^2 - d^2)^2``.

    Attributes:
        name: the value of ``--model.loss`` and the estimator's ``loss``.
        squared: compares squared distances (takes no transform, no pair batches, no Guttman step).
        power: the stress weights' exponent of the given distance (0, or negative for local losses).
        describe: a few words for the docs and messages.

    """

    name = ""
    squared = False
    power = 0.0
    describe = ""

    @property
    def local(self) -> bool:
        """Whether the weights favour near pairs (``power < 0``): its optimum trades raw stress-1 for them."""
        return self.power < 0

    @property
    def majorizable(self) -> bool:
        """Whether SMACOF's Guttman transform minimises it (every stress-type loss)."""
        return not self.squared

    def pair_weights(self, distances: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor | None:
        """The weights of each pair's ``(dhat - d)^2`` (``weights`` None means all ones, and may stay None)."""
        if self.power == 0:
            return weights
        weights = torch.ones_like(distances) if weights is None else weights
        safe = torch.where(distances > 0, distances, torch.ones_like(distances))
        return torch.where(distances > 0, weights * safe**self.power, torch.zeros_like(weights))

    def terms(self, fitted: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """Each pair's term, elementwise."""
        if self.squared:
            term = (fitted**2 - distances**2) ** 2
            return term if weights is None else weights * term
        weights = self.pair_weights(distances, weights)
        term = (fitted - distances) ** 2
        return term if weights is None else weights * term


REGISTRY: dict[str, Loss] = {}
"""Every loss by name, in registration order."""


def register(cls: type[Loss]) -> type[Loss]:
    """Add a loss class to :data:`REGISTRY` (a class decorator)."""
    REGISTRY[cls.name] = cls()
    return cls


@register
class Course(Loss):
    """The course's objective: ``w (dhat^2 - d^2)^2``; it weighs long distances most and settles the global shape."""

    name, squared, describe = "course", True, "squared distances (the course's objective)"


@register
class Stress(Loss):
    """Kruskal's raw stress ``w (dhat - d)^2``."""

    name, describe = "stress", "Kruskal's raw stress"


@register
class WeightedStress(Loss):
    """Raw stress with weights ``w / d^2``: the graph-drawing standard, relative error of every pair alike."""

    name, power, describe = "weighted_stress", -2.0, "raw stress with weights 1/d^2"


@register
class Sammon(Loss):
    """Sammon's stress, raw stress with weights ``w / d`` (the normalising constant left out): between the two."""

    name, power, describe = "sammon", -1.0, "Sammon's stress (weights 1/d)"


LOSSES = tuple(REGISTRY)
"""Loss names accepted by :func:`get`."""


def get(name: str) -> Loss:
    """The registered loss ``name``; a ValueError names the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")
    return REGISTRY[name]


def terms(name: str, fitted: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Each pair's term of the loss ``name``, elementwise (``weights`` None means all ones): see :class:`Loss`."""
    return get(name).terms(fitted, distances, weights)


def stress_weights(distances: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weights ``w / d^2`` of the weighted (local) stress; pairs at distance 0 are left out."""
    return REGISTRY["weighted_stress"].pair_weights(distances, weights)


def loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss ``name`` over whole symmetric matrices: half the sum of :func:`terms`, so each pair counts once."""
    loss = get(name)
    return lambda fitted, distances, weights: 0.5 * loss.terms(fitted, distances, weights).sum((-1, -2))


CDIST_LIMIT = 200
"""Up to this many places a flat map's loss goes through ``torch.cdist`` and autograd; above it, :func:`fused_loss`.

One evaluation with its gradient at 500 places: 0.83 ms fused against 1.42 ms through ``cdist`` (one thread),
0.46 against 0.66 ms (two); at 200 places 0.19 against 0.24 ms; at 36, 0.09 against 0.08 ms."""

WORKING_SET = 2**20
"""Elements per ``rows x n`` block of the fused computation (4 MB in float32: cache-sized, measured fastest)."""


def fused_loss(
    coords: torch.Tensor,
    distances: torch.Tensor,
    weights: torch.Tensor | None,
    loss: str,
    working_set: int = WORKING_SET,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and stress-1's numerator of flat maps, by blocks of rows, with an analytic gradient.

    Same values as ``loss_fn(loss)(pairwise_distances(coords), distances, weights)`` and
    ``sum w (dhat - d)^2``, but no ``n x n`` tensor is ever held: each block of rows computes its
    distances, its terms and its rows of the gradient, which is kept for the backward pass (every
    evaluation of a fit needs it). About 10 times faster than autograd through ``cdist`` at
    n = 5,000 and O(working_set) memory beyond the inputs. ``weights`` None means all ones.

    Returns ``(loss, residual)``, one value each per restart; only ``loss`` carries a gradient.
    """
    return _FusedLoss.apply(coords, distances, weights, loss, working_set)


def fused_city_residuals(
    coords: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor | None, working_set: int = WORKING_SET
) -> torch.Tensor:
    """``(restarts, n)``: each place's sum of ``w (dhat - d)^2`` over its pairs, by blocks of rows."""
    return _fused_terms(coords.detach(), distances, weights, "stress", working_set, gradient=False)[2]


class _FusedLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, coords, distances, weights, loss, working_set):  # type: ignore[no-untyped-def]
        value, residual, grad = _fused_terms(coords.detach(), distances, weights, loss, working_set, gradient=True)
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(residual)
        return value, residual

    @staticmethod
    def backward(ctx, grad_value, grad_residual):  # type: ignore[no-untyped-def]
        (grad,) = ctx.saved_tensors
        return grad * grad_value.reshape(-1, 1, 1).to(grad.dtype), None, None, None, None


def _fused_terms(
    x: torch.Tensor,
    distances: torch.Tensor,
    weights: torch.Tensor | None,
    loss: str,
    working_set: int,
    gradient: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss, residual and either the gradient ``(K, n, dim)`` or the per-place residuals ``(K, n)``.

    The gradient of ``0.5 sum w f(dhat, d)`` with respect to ``x_i`` is ``sum_j c_ij (x_i - x_j)``:
    ``c = 2 w (1 - d / dhat)`` for stress and ``c = 4 w (dhat^2 - d^2)`` for the course objective,
    so a block's rows of the gradient are ``rowsum(c) x_i - c @ x``.
    """
    restarts, n, _ = x.shape
    x = x - x.mean(1, keepdim=True)
    value = torch.zeros(restarts, dtype=torch.float64, device=x.device)
    residual = torch.zeros(restarts, dtype=torch.float64, device=x.device)
    out = torch.empty_like(x) if gradient else torch.empty(restarts, n, dtype=x.dtype, device=x.device)
    rows = max(1, working_set // (restarts * n))
    kind = get(loss)
    plain = not kind.squared and kind.power == 0  # its loss is the residual itself
    for start in range(0, n, rows):
        block = slice(start, min(n, start + rows))
        xs = x[:, block]
        fitted = _squared_block(xs, x)
        d, w = distances[block], None if weights is None else weights[block]
        # the coefficient's constant factor (4 or 2, a power of two: exact) is applied to the block's
        # (rows, dim) gradient instead of the (rows, n) coefficients: one pass over the block fewer
        if kind.squared:
            c = fitted - d * d
            wc = c if w is None else c.mul_(w)
            value += (wc * (fitted - d * d)).sum((-1, -2)).double()
            coefficient, factor = wc, 4.0
            r = fitted.sqrt_().sub_(d)
        else:
            fitted.sqrt_()
            r = fitted - d
            lw = kind.pair_weights(d, w)
            lr = r if lw is None else r * lw
            if not plain:
                value += (lr * r).sum((-1, -2)).double()
            # coincident points (dhat = 0) get no pull: r / 0 is inf or nan, set to 0 (autograd's subgradient)
            coefficient, factor = torch.div(lr, fitted).nan_to_num_(0.0, 0.0, 0.0), 2.0
        terms = r.square_() if w is None else r.square_().mul_(w)
        if gradient:
            out[:, block] = (coefficient.sum(-1, keepdim=True) * xs - torch.bmm(coefficient, x)).mul_(factor)
            total = terms.sum((-1, -2)).double()
        else:
            rowsums = terms.sum(-1)
            out[:, block] = rowsums
            total = rowsums.sum(-1).double()
        residual += total
        if plain:
            value += total
    return 0.5 * value, residual, out


def block_residuals(coords: torch.Tensor, start: int, distances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For the rows ``start ..`` of a flat map's matrix: each row's ``sum (dhat - d)^2`` and ``sum d^2``.

    ``coords`` is one map ``(n, dim)``; ``distances`` the block's given distances ``(rows, n)``.
    """
    fitted = _squared_block(coords[start : start + distances.shape[0]], coords)
    residual = fitted.sqrt_().sub_(distances).square_()
    return residual.sum(1), distances.square().sum(1)


def _squared_block(rows: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Squared distances ``(..., r, n)`` from ``rows (..., r, dim)`` to ``points (..., n, dim)``.

    Summed from coordinate differences, not the ``|a|^2 + |b|^2 - 2ab`` shortcut, whose float32
    rounding is large for close places.
    """
    squared = (rows[..., :, None, 0] - points[..., None, :, 0]).square_()
    for k in range(1, rows.shape[-1]):
        squared.add_((rows[..., :, None, k] - points[..., None, :, k]).square_())
    return squared


AUTO = "auto"
"""The default loss name: :func:`resolve_loss` says which loss it stands for."""


def resolve_loss(name: str, transform: str = "ratio") -> str:
    """The loss that ``auto`` stands for (an explicit name is kept as it is).

    The ratio transform keeps the course's objective (``course``), so the course is reproduced
    exactly; ``interval`` and ``ordinal`` fit disparities, which the course objective on squared
    distances cannot take: they get Kruskal's raw stress (``stress``).
    """
    if name != AUTO:
        return name
    return "course" if transform == "ratio" else "stress"
