"""citymap-lightning: maps from tables of distances, by gradient-based metric MDS in PyTorch Lightning.

Every name below is imported on first use (PEP 562): ``import citymap_lightning`` imports neither
torch nor Lightning, so that the command line can refuse a mistyped option before it spends seconds
importing them.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import TYPE_CHECKING

from citymap_lightning.errors import CitymapError, ConfigError, DataError, FitDivergedError

if TYPE_CHECKING:
    from citymap_lightning.callbacks import MapRenderer
    from citymap_lightning.datamodule import DistanceDataModule
    from citymap_lightning.estimator import MDS
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

_LAZY = {
    "CityMap": "citymap_lightning.model",
    "DistanceDataModule": "citymap_lightning.datamodule",
    "DistanceTable": "citymap_lightning.tables",
    "FittedMap": "citymap_lightning.result",
    "MapRenderer": "citymap_lightning.callbacks",
    "MatrixTable": "citymap_lightning.tables",
    "PairTable": "citymap_lightning.tables",
    "PlacesTable": "citymap_lightning.tables",
    "load_table": "citymap_lightning.readers",
}
"""The exported names imported on first use, and the module each comes from."""

_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
"""Where Lightning reads a process's rank from at import (``lightning.fabric.utilities.rank_zero._get_rank``)."""


def _rank() -> int:
    """The rank of this process: Lightning's own once it is imported (the trainer updates it), else the launcher's."""
    lightning_rank = sys.modules.get("lightning_utilities.core.rank_zero")
    rank = getattr(getattr(lightning_rank, "rank_zero_only", None), "rank", None)
    if rank is not None:
        return int(rank)
    for name in _RANK_VARIABLES:
        value = os.environ.get(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _on_rank_zero(record: logging.LogRecord) -> bool:
    """Under DDP every rank runs the same code: only rank zero's messages are shown, so each is shown once.

    Lightning sets the rank from the launcher's environment at import and from the trainer once it
    runs; before Lightning is imported the launcher's environment variables tell it.
    """
    return _rank() == 0


logging.getLogger(__name__).addFilter(_on_rank_zero)


def __getattr__(name: str) -> object:
    """Import an exported name on first use; ``MDS`` needs scikit-learn, an optional extra."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
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


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
