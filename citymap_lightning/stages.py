"""The stages a start runs before the epochs, as records that the model shows in TensorBoard and on the console.

A start on a table with missing pairs is a schedule of stages (see :mod:`citymap_lightning.multilevel`
and :func:`citymap_lightning.starts.continuation`): the coarsest level's continuation, then each finer
level by its losses in turn, then the repairs. Each stage that runs appends a :class:`Stage`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One stage of a start.

    Attributes:
        name: what it did, e.g. ``level 2 (4,102 places): stress``.
        places: the places it fitted.
        objective: its loss at the end, in the units it was fitted in (comparable within one stage only).
        converged: whether its minimiser stopped by its tolerance (False: by its iteration cap; None: no minimiser).
        seconds: its wall time.

    """

    name: str
    places: int
    objective: float
    converged: bool | None
    seconds: float

    def line(self) -> str:
        """One console line."""
        ended = {True: "stopped by its tolerance", False: "stopped at its iteration cap", None: "done"}[self.converged]
        return f"start stage {self.name}: objective {self.objective:.6g}, {ended}, {self.seconds:.1f} s"


def summary(stages: list[Stage]) -> str:
    """A clause for the run's summary line: how many stages stopped by their tolerance, and which did not."""
    judged = [s for s in stages if s.converged is not None]
    if not judged:
        return ""
    capped = [s.name for s in judged if not s.converged]
    if not capped:
        return f"start: {len(stages)} stages, every minimisation stopped by its tolerance"
    from citymap_lightning.lists import listed

    return f"start: {len(stages)} stages, {len(capped)} stopped at their iteration cap ({listed(capped, 3)})"


def table(stages: list[Stage]) -> str:
    """A Markdown table of the stages, for TensorBoard's text tab."""
    rows = ["| stage | places | objective | ended | seconds |", "|---|---|---|---|---|"]
    for s in stages:
        ended = {True: "tolerance", False: "iteration cap", None: "-"}[s.converged]
        rows.append(f"| {s.name} | {s.places} | {s.objective:.6g} | {ended} | {s.seconds:.1f} |")
    return "\n".join(rows)
