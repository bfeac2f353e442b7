"""``python -m citymap_lightning``: the LightningCLI around CityMap and DistanceDataModule."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.callbacks.progress import ProgressBar
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

from citymap_lightning.callbacks import MapRenderer
from citymap_lightning.data import packaged_path
from citymap_lightning.datamodule import DistanceDataModule
from citymap_lightning.errors import CitymapError, ConfigError
from citymap_lightning.model import CityMap
from citymap_lightning.progress import EpochProgressBar

DEFAULT_CONFIG = "default.yaml"
"""The packaged configuration every subcommand starts from; ``--config`` files override it."""

QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*is smaller than the logging interval.*",
    ".*Checkpoint directory .* exists and is not empty.*",
    ".*`training_step` returns `None`.*",
    ".*configure_optimizers` will be overridden by.*",
)


class CityMapCLI(LightningCLI):
    """LightningCLI with the data's size linked to the model and every output under the run's root."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Link the number of places; make the map renderer and the checkpoints configurable."""
        parser.link_arguments("data.num_places", "model.num_places", apply_on="instantiate")
        parser.add_lightning_class_args(MapRenderer, "map")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_on_exception": True})

    def before_instantiate_classes(self) -> None:
        """With ``--trainer.default_root_dir DIR``, put loggers configured with relative folders under DIR."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        root = config.trainer.get("default_root_dir")
        if not root:
            return
        loggers = config.trainer.get("logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            if not isinstance(logger, (Namespace, dict)):
                continue
            init_args = logger.get("init_args")
            if init_args is None or "save_dir" not in init_args:
                continue
            save_dir = init_args["save_dir"]
            if save_dir is None or not Path(save_dir).is_absolute():
                init_args["save_dir"] = str(Path(root) / (save_dir or ""))

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        """Use a per-fit progress bar unless the user disabled the bar or chose another."""
        chosen = list(config.get("callbacks") or []) + list(callbacks)
        if config.get("enable_progress_bar", True) is not False and not any(isinstance(c, ProgressBar) for c in chosen):
            callbacks = [*callbacks, EpochProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def before_fit(self) -> None:
        """Resolve ``--ckpt_path last`` to the newest earlier run's ``last.ckpt`` under the same log root.

        Lightning itself looks in the new run's own (empty) folder and only warns.
        """
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") == "last":
            config["ckpt_path"] = str(find_last_checkpoint(self.trainer))

    def after_fit(self) -> None:
        """Print the files the run wrote, as absolute paths."""
        self._print_outputs()

    def after_predict(self) -> None:
        """Print the files prediction wrote."""
        self._print_outputs()

    def _print_outputs(self) -> None:
        log_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir).resolve()  # a collective under DDP
        if self.trainer.global_rank != 0:
            return
        files = sorted(p for p in log_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        print(f"Outputs in {log_dir}:")
        for path in files:
            print(f"  {path}")


def find_last_checkpoint(trainer: Trainer) -> Path:
    """The ``last.ckpt`` of the highest-numbered earlier run beside this run's log directory."""
    logger = trainer.logger
    root = Path(getattr(logger, "root_dir", None) or trainer.default_root_dir)
    candidates = sorted(
        root.glob("version_*/checkpoints/last.ckpt"),
        key=lambda p: int(p.parent.parent.name.split("_")[-1]) if p.parent.parent.name[8:].isdigit() else -1,
    )
    if not candidates:
        raise ConfigError(f"{root}: no earlier run with checkpoints/last.ckpt to resume from (--ckpt_path last)")
    print(f"Resuming from {candidates[-1].resolve()}")
    return candidates[-1]


def cli_kwargs() -> dict[str, Any]:
    """The keyword arguments of :class:`CityMapCLI` that make this package's defaults."""
    default_config = str(packaged_path("configs", DEFAULT_CONFIG))
    return {
        "model_class": CityMap,
        "datamodule_class": DistanceDataModule,
        "subclass_mode_data": True,
        "seed_everything_default": 0,
        "save_config_kwargs": {"overwrite": True},
        "parser_kwargs": {
            sub: {"default_config_files": [default_config]} for sub in ("fit", "validate", "test", "predict")
        },
    }


def main(args: ArgsType = None) -> None:
    """Run the CLI; errors caused by the input are one line on stderr and a non-zero exit."""
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    try:
        CityMapCLI(args=args, **cli_kwargs())
    except Exception as error:
        cause = input_error(error)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        sys.exit(2)


def input_error(error: BaseException) -> CitymapError | None:
    """The :class:`CitymapError` behind an exception, if any.

    jsonargparse wraps what a subclass-mode data module raises while it is instantiated in a
    ``ValueError``; the original stays in the chain of causes.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, CitymapError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
