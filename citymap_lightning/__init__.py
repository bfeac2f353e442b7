"""citymap-lightning: maps from tables of distances, by gradient-based metric MDS in PyTorch Lightning."""

import logging

from lightning.pytorch.utilities import rank_zero_only

from citymap_lightning.callbacks import MapRenderer
from citymap_lightning.datamodule import DistanceDataModule
from citymap_lightning.errors import CitymapError, ConfigError, DataError, FitDivergedError
from citymap_lightning.model import CityMap
from citymap_lightning.readers import load_table
from citymap_lightning.result import FittedMap
from citymap_lightning.tables import DistanceTable, MatrixTable, PairTable, PlacesTable

__all__ = [
    "MDS",
    "CityMap",
    "CitymapError",
    "ConfigError",
    "DataError",
    "DistanceDataModule",
    "DistanceTable",
    "FitDivergedError",
    "FittedMap",
    "MapRenderer",
    "MatrixTable",
    "PairTable",
    "PlacesTable",
    "load_table",
]


def _on_rank_zero(record: logging.LogRecord) -> bool:
    """Under DDP every rank runs the same code: only rank zero's messages are shown, so each is shown once.

    Lightning sets the rank from the launcher's environment at import and from the trainer once it runs.
    """
    return getattr(rank_zero_only, "rank", 0) == 0


logging.getLogger(__name__).addFilter(_on_rank_zero)


def __getattr__(name: str) -> object:
    """``MDS``, the scikit-learn estimator, is imported on first use: scikit-learn is an optional extra."""
    if name == "MDS":
        try:
            from citymap_lightning.estimator import MDS
        except ModuleNotFoundError as e:
            if e.name is None or not e.name.startswith("sklearn"):
                raise
            raise ImportError(
                "citymap_lightning.MDS needs scikit-learn: pip install 'citymap-lightning[sklearn]'"
            ) from None
        return MDS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
