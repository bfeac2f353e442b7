"""citymap-lightning: maps from tables of distances, by gradient-based metric MDS in PyTorch Lightning."""

from citymap_lightning.callbacks import MapRenderer
from citymap_lightning.data import load_table
from citymap_lightning.datamodule import DistanceDataModule
from citymap_lightning.errors import CitymapError, ConfigError, DataError, FitDivergedError
from citymap_lightning.model import CityMap
from citymap_lightning.result import FittedMap
from citymap_lightning.tables import DistanceTable, MatrixTable, PairTable, PlacesTable

__all__ = [
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
