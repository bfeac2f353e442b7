"""A progress bar over epochs (fits here run thousands of one-step epochs), and log lines that never share its line."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import lightning.pytorch as pl
from lightning.pytorch.callbacks.progress import ProgressBar
from tqdm.auto import tqdm


class _Console:
    """The stream a bar draws on, noting whether the bar left the cursor in the middle of a line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.mid_line = False

    def write(self, text: str) -> int:
        if text:
            self.mid_line = not text.endswith("\n")
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding: the stream's (tqdm sizes the bar by them)
        return getattr(self.stream, name)


_open: list[tuple[tqdm, _Console]] = []
"""The bars drawing now, and the stream each draws on: :class:`ConsoleHandler` writes around them."""


class ConsoleHandler(logging.StreamHandler):
    """A stream handler whose lines never share a progress bar's line.

    On a terminal the bar is cleared, the record written and the bar drawn again below it (as
    ``tqdm.write`` does); in a file or pipe, where clearing leaves debris, the bar's line is ended
    first. Streams that show elsewhere than the bar (stdout in a file, the bar on the terminal) are
    written as by a plain :class:`logging.StreamHandler`.
    """

    def emit(self, record: logging.LogRecord) -> None:
        shared = next(((bar, console) for bar, console in _open if _same_display(console.stream, self.stream)), None)
        if shared is None:
            super().emit(record)
            return
        bar, console = shared
        with bar.get_lock():
            if _isatty(console.stream):
                bar.clear(nolock=True)
                super().emit(record)
                bar.refresh(nolock=True)
                return
            if console.mid_line:
                console.write("\n")
                console.flush()
            super().emit(record)
            console.mid_line = False


def console_handler(stream: TextIO, like: logging.Handler | None = None) -> ConsoleHandler:
    """A :class:`ConsoleHandler` on ``stream``, with the level, formatter and filters of handler ``like``."""
    handler = ConsoleHandler(stream)
    if like is not None:
        handler.setLevel(like.level)
        handler.setFormatter(like.formatter)
        for f in like.filters:
            handler.addFilter(f)
    return handler


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _same_display(a: Any, b: Any) -> bool:
    """Whether two streams show in the same place: the same object, two terminals, or one file or pipe (``2>&1``)."""
    if a is b:
        return True
    if _isatty(a) and _isatty(b):
        return True
    try:
        one, other = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (AttributeError, ValueError, OSError):
        return False
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


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
        console = _Console(sys.stderr)
        self._bar = tqdm(
            total=total, initial=trainer.current_epoch, desc="fit", unit="epoch", file=console,
            mininterval=self.refresh_seconds, dynamic_ncols=True, leave=True,
        )  # fmt: skip
        _open.append((self._bar, console))

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
            _open[:] = [(bar, console) for bar, console in _open if bar is not self._bar]
            self._bar.close()
            self._bar = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)
