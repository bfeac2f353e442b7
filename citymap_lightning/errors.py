"""Errors a user can meet: each is told in one plain line by the CLI, without a traceback."""

from __future__ import annotations


class CitymapError(Exception):
    """Base of the errors caused by the user's input or settings, not by a bug."""


class DataError(CitymapError, ValueError):
    """A problem with the input data, told in one line that names the file."""


class ConfigError(CitymapError, ValueError):
    """A setting that cannot work (an unknown loss, a start that needs data the input lacks)."""


class FitDivergedError(CitymapError, RuntimeError):
    """The loss became NaN or infinite: the map would be garbage, so the run stops."""
