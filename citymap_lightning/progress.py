"""A progress bar over epochs: fits here run thousands of one-step epochs."""

from __future__ import annotations

import sys
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks.progress import ProgressBar
from tqdm.auto import tqdm


class EpochProgressBar(ProgressBar):
    """One bar for the whole fit, advanced per epoch, redrawn at most every ``refresh_seconds``.

    Lightning's default bar restarts every epoch; with one batch per epoch that costs more than
    the step itself and floods a log file.
    """

    def __init__(self, refresh_seconds: float = 0.5) -> None:
        super().__init__()
        self.refresh_seconds = refresh_seconds
        self._enabled = True
        self._bar: tqdm | None = None

    def enable(self) -> None:
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled:
            return
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        self._bar = tqdm(
            total=total, initial=trainer.current_epoch, desc="fit", unit="epoch", file=sys.stderr,
            mininterval=self.refresh_seconds, dynamic_ncols=True, leave=True,
        )  # fmt: skip

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._bar is None:
            return
        metrics: dict[str, Any] = {
            k.split("/")[-1]: f"{v:.4g}" if isinstance(v, float) else v
            for k, v in self.get_metrics(trainer, pl_module).items()
            if k != "v_num"
        }
        self._bar.set_postfix(metrics, refresh=False)
        self._bar.update(1)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)
