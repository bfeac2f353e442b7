"""New places put on a fitted map (``predict`` with a file of new places): the fitted places do not move.

Nothing is trained: the checkpoint's map is the model's coordinates, and :meth:`Placing.predict`
places each new place from its distances to the fitted ones (:func:`citymap_lightning.placing.place`)
in the fitted map's frame and unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader

from citymap_lightning import placing
from citymap_lightning.errors import ConfigError
from citymap_lightning.fitting.base import Batch, Fitting, RankFn
from citymap_lightning.placing import NewPlaces, Placement
from citymap_lightning.tables import DistanceTable

if TYPE_CHECKING:
    from citymap_lightning.model import CityMap


class Placing(Fitting):
    """Places ``new`` on the map of a checkpoint whose places are ``table``'s (which holds no distances)."""

    name = "placing"

    def __init__(self, table: DistanceTable, new: NewPlaces, scale: float) -> None:
        super().__init__(table)
        self.scale = scale
        self.new = new
        self.evaluation_size = 0
        self.placement: Placement | None = None

    def describe(self) -> str:
        return f"{len(self.new.names)} new places put on the fitted map of {self.table.n}"

    def configure_optimizer(self, model: CityMap) -> torch.optim.Optimizer:
        raise ConfigError(f"{self.new.source}: new places are put on a fitted map by predict, not fitted")

    def train_loader(self, rank: RankFn) -> DataLoader:
        raise ConfigError(f"{self.new.source}: new places are put on a fitted map by predict, not fitted")

    def evaluation_batches(self) -> Iterator[Batch]:
        yield {"places": torch.zeros(1)}

    def evaluate(self, model: CityMap) -> torch.Tensor:
        """The checkpoint's own stress-1 (its distances are not in the new file)."""
        return model.stress1

    def batch_sums(self, model: CityMap, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(model.coords.shape[0], dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)

    def place_residuals(self, model: CityMap, restart: int) -> torch.Tensor:
        return torch.zeros(self.table.n, dtype=torch.float64)

    def predict(self, model: CityMap) -> torch.Tensor:
        """The new places' positions in the fitted map's frame and unit (also kept as :attr:`placement`)."""
        fit = model.fitted_map()
        coords, stress1 = placing.place(fit.coords, self.new.distances, self.new.weights, fit.geometry, fit.radius)
        self.placement = Placement(self.new.names, coords, stress1, fit.to_latlon(coords))
        return torch.from_numpy(coords)
