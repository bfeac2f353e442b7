"""Every known pair in every step: one fixed batch, so any optimiser works (L-BFGS by default).

The batch is the table's own full form: the ``n x n`` matrix of a dense or latitude/longitude table
(the loss through ``torch.cdist`` and autograd up to ``losses.CDIST_LIMIT`` places, above that the
fused blockwise loss with its analytic gradient), or the list of known pairs of a sparse table
(memory O(pairs), whatever the number of places). The evaluation is chosen once, at set-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from citymap_lightning import losses, metrics, transforms
from citymap_lightning.errors import ConfigError
from citymap_lightning.fitting.base import Batch, Fitting, RankFn, robust_norm
from citymap_lightning.tables import DistanceTable

if TYPE_CHECKING:
    from citymap_lightning.model import CityMap


class FullBatch(Fitting):
    """One batch holding every known pair, normalised by the Frobenius norm of the distances (the course's)."""

    name = "full"

    def __init__(self, table: DistanceTable) -> None:
        super().__init__(table)
        batch = table.full_batch()
        d = batch["distances"]
        self.pairs = "i" in batch
        self._terms = self._pair_terms if self.pairs else self._matrix_terms
        self.transform = "ratio"
        # the course's normalisation: the Frobenius norm of the symmetric matrix (each pair twice)
        self.scale = robust_norm(d) * (2**0.5 if self.pairs else 1.0)
        normalised = (d / self.scale).float()
        self.batch: Batch = {**batch, "distances": normalised}
        w = batch.get("weights")
        if w is None:  # a complete unweighted matrix: the sum of d^2 is 1 by the choice of scale
            self.batch["norm"] = torch.tensor(1.0, dtype=torch.float64)
        else:
            self.batch["weights"] = w.float()
            self.batch["norm"] = (normalised.double().square() * w).sum()

    def describe(self) -> str:
        form = f"all {self.table.n_known_pairs} known pairs" if self.pairs else "the full matrix"
        return f"one batch of {form}"

    def setup(self, hparams: Any) -> None:
        """With an interval or ordinal transform, the batch becomes the list of known pairs.

        Their disparities are refitted to the whole map at every step.
        """
        transform = hparams.get("transform", "ratio")
        if transform == self.transform:
            return
        self.transform = transform
        i, j, d, w = self.table.known_values()
        normalised = torch.from_numpy(d / self.scale).float()
        self.batch = {
            "i": torch.from_numpy(i), "j": torch.from_numpy(j), "distances": normalised,
            "weights": torch.from_numpy(w).float(), "norm": torch.tensor(1.0, dtype=torch.float64),
        }  # fmt: skip
        self.pairs, self._terms = True, self._transform_terms

    def configure_optimizer(self, model: CityMap) -> torch.optim.Optimizer:
        """L-BFGS with a strong-Wolfe line search and no early stopping tolerances (Adam 0.1 for restarts).

        The course objective ends near 1.2e-8 in normalised units, below which torch's default
        tolerances (1e-7 on the gradient, 1e-9 on the change) stop some seeds early. With several
        restarts the default is Adam (lr 0.1): one L-BFGS line search would couple the restarts.
        """
        if model.hparams.restarts > 1:
            return torch.optim.Adam(model.parameters(), lr=0.1)
        return torch.optim.LBFGS(
            model.parameters(),
            lr=1.0,
            max_iter=5,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )

    def check_optimizers(self, model: CityMap, optimizers: list[torch.optim.Optimizer]) -> None:
        restarts = model.hparams.restarts
        if restarts > 1 and any(isinstance(o, torch.optim.LBFGS) for o in optimizers):
            raise ConfigError(
                f"restarts={restarts} needs a first-order optimiser: L-BFGS's single line search "
                "would couple the restarts; use e.g. --optimizer Adam --optimizer.lr 0.1 --trainer.max_epochs 400"
            )

    def train_loader(self, rank: RankFn) -> DataLoader:
        """The one batch, every epoch."""
        return self.evaluation_loader()

    def evaluation_loader(self) -> DataLoader:
        return DataLoader([self.batch], batch_size=None)

    def evaluation_batches(self) -> Iterator[Batch]:
        yield self.batch

    def _inputs(self, model: CityMap, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        dtype = torch.float64 if model.hparams.geometry == "sphere" else model.coords.dtype
        w = batch.get("weights")
        return batch["distances"].to(dtype), None if w is None else w.to(dtype)

    def _matrix_terms(self, model: CityMap, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and ``sum w (dhat - d)^2`` per restart over the matrix (each pair counted twice in the sum)."""
        d, w = self._inputs(model, batch)
        if model.hparams.geometry != "sphere" and d.shape[0] > losses.CDIST_LIMIT:
            return (*losses.fused_loss(model.coords, d, w, model.hparams.loss), batch["norm"])
        fitted = model.fitted_distances()
        loss = losses.loss_fn(model.hparams.loss)(fitted, d, w)
        return loss, metrics.stress1_sums(fitted.detach(), d, w, dims=(-1, -2))[0], batch["norm"]

    def _pair_terms(self, model: CityMap, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and ``sum w (dhat - d)^2`` per restart over the known pairs."""
        d, w = self._inputs(model, batch)
        fitted = model.pair_distances(batch["i"], batch["j"])
        loss = losses.terms(model.hparams.loss, fitted, d, w).sum(-1)
        return loss, metrics.stress1_sums(fitted.detach(), d, w, dims=-1)[0], batch["norm"]

    def _transform_inputs(self, model: CityMap, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Map distances, given values and the loss's weights of the known pairs (``w / d^2`` for weighted stress)."""
        d, w = self._inputs(model, batch)
        fitted = model.pair_distances(batch["i"], batch["j"]).double()  # the line's sums need double precision
        if model.hparams.loss == "weighted_stress":
            w = losses.stress_weights(d, w)
        return fitted, d.double(), w.double()

    def _transform_terms(self, model: CityMap, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stress-1 squared against the disparities (the loss), and its two sums, per restart."""
        return transforms.stress_terms(self.transform, *self._transform_inputs(model, batch))

    def batch_sums(self, model: CityMap, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self._terms(model, batch)[1:]

    def transform_line(self, model: CityMap) -> tuple[float, float] | None:
        """For ``interval``: ``a`` and ``b`` of ``given = a + b * map distance`` in the input's unit (best restart)."""
        if self.transform != "interval":
            return None
        batch = {k: v.to(model.device) for k, v in self.batch.items()}
        with torch.no_grad():
            fitted, d, w = self._transform_inputs(model, batch)
            a, b = transforms.interval_line(fitted[model.best_restart()][None], d, w)
        return float(self.scale * a[0]), float(b[0])

    def disparity_curve(self, model: CityMap) -> tuple[Any, Any] | None:
        """The fitted transform, given value against disparity (both in the input's unit), sorted; None for ratio."""
        if self.transform == "ratio":
            return None
        batch = {k: v.to(model.device) for k, v in self.batch.items()}
        with torch.no_grad():
            fitted, d, w = self._transform_inputs(model, batch)
            best = model.best_restart()
            target = transforms.disparities(self.transform, fitted[best : best + 1], d, w)[0]
        order = torch.argsort(d)
        return (d[order] * self.scale).cpu().numpy(), (target[order] * self.scale).cpu().numpy()

    def training_step(self, model: CityMap, batch: Batch) -> torch.Tensor:
        """Sum of the restarts' losses (they are independent); logs the best restart's loss and stress-1."""
        loss, residual, norm = self._terms(model, batch)
        total = loss.sum()
        if model.logging_step():
            model.check_finite(total)
            stress1 = metrics.from_sums(residual.detach().double(), norm.double()).float()
            model.record_stress1(stress1, loss.detach())
        return total

    def place_residuals(self, model: CityMap, restart: int) -> torch.Tensor:
        batch = {k: v.to(model.device) for k, v in self.batch.items()}
        d, w = self._inputs(model, batch)
        with torch.no_grad():
            if self.pairs:
                i, j = batch["i"], batch["j"]
                if self.transform != "ratio":
                    fitted, given, weights = self._transform_inputs(model, batch)
                    target = transforms.disparities(self.transform, fitted[restart : restart + 1], given, weights)
                    terms = weights * (fitted[restart] - target[0]).square()
                else:
                    terms = (model.pair_distances(i, j)[restart] - d).square()
                    terms = terms if w is None else w * terms
                places = torch.zeros(self.table.n, dtype=terms.dtype, device=terms.device)
                return places.index_add_(0, i, terms).index_add_(0, j, terms)
            coords = model.coords[restart : restart + 1].detach()
            if model.hparams.geometry != "sphere":
                return losses.fused_city_residuals(coords, d, w)[0]
            fitted = model.fitted_distances()[restart]
            return metrics.stress1_sums(fitted, d, w, dims=-1)[0]
