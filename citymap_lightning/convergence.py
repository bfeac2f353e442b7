"""When a fit is done: the objective's relative change per epoch against a tolerance, and the run's summary line."""

from __future__ import annotations

import math
from collections.abc import Callable

EXACT = 1e-5
"""Stress-1 below which a map is an exact fit as far as float32 coordinates can hold one (1e-5 of every distance):
its objective's relative change is then rounding noise, and the fit has converged whatever that change."""


NOISE_CEILING = 1e-4
"""An epoch whose objective changed by more than this (relative) is never put down to rounding."""

STATIONARY = 1e-4
"""The most an exact step along the whole objective's gradient may still gain (relative) at a converged map
(:meth:`~citymap_lightning.solvers.base.Solver.stationarity`), or ``model.tol`` where that is larger: a map
whose objective stopped changing but sits on a slope has stalled, not converged."""


class Convergence:
    """One objective value per epoch; converged once it is quiet and, where it can be judged, stationary.

    Quiet: ``patience`` epochs in a row changed it by less than ``tol``. Stationary: where the solver has
    a whole objective, one exact step along its gradient would gain at most :data:`STATIONARY`.
    The change is relative, ``|previous - value| / max(|value|, tiny)``, so it reads the same whatever
    the objective's unit (the course objective ends near 1e-8 in normalised units, raw stress near 1e-3).
    ``tol`` 0 never converges early: the fit runs every epoch up to ``max_epochs``.
    """

    def __init__(self, tol: float, patience: int) -> None:
        self.tol, self.patience = tol, patience
        self.values: list[float] = []
        self.quiet = 0
        self.exact = False
        self.noise = math.nan  # the rounding noise an epoch's change was last judged against (nan: not needed)
        self.gain = math.nan  # what a step along the whole gradient would still gain, last asked (nan: not judged)

    @property
    def change(self) -> float:
        """The last epoch's relative change of the objective (nan before two epochs)."""
        if len(self.values) < 2:
            return math.nan
        previous, value = self.values[-2], self.values[-1]
        return abs(previous - value) / max(abs(value), 1e-300)

    @property
    def judged(self) -> bool:
        """Whether any change was measured (a fit of one epoch, or pair batches still annealing, has none)."""
        return len(self.values) >= 2

    @property
    def converged(self) -> bool:
        """Whether the last ``patience`` changes were all below ``tol`` (or the objective is 0); never with tol 0."""
        if self.tol == 0:
            return False
        if bool(self.values) and self.values[-1] == 0.0:
            return True
        return self.quiet >= self.patience and not self.sloped

    @property
    def sloped(self) -> bool:
        """Whether the last gradient test found the map on a slope (the objective still falls along its gradient)."""
        return self.gain > max(STATIONARY, self.tol)  # False for nan: not judged

    @property
    def stalled_short(self) -> bool:
        """Whether the objective has stopped falling (``patience`` quiet epochs) on a slope: stalled, not converged."""
        return self.tol > 0 and self.quiet >= self.patience and self.sloped

    @property
    def short(self) -> bool:
        """Whether the fit stopped short of convergence (its summary is then a warning); never with tol 0."""
        return self.tol > 0 and not self.converged

    def update(
        self,
        value: float,
        stress1: float = math.nan,
        noise: Callable[[], float] | None = None,
        stationarity: Callable[[], float | None] | None = None,
    ) -> bool:
        """Record an epoch's objective (and the map's stress-1, when known); True once converged.

        ``noise`` gives the objective's relative change when the coordinates move by their rounding
        alone (:meth:`~citymap_lightning.solvers.base.Solver.rounding_noise`); it is asked only for an
        epoch whose change is above ``tol`` but below :data:`NOISE_CEILING`, and such an epoch counts as
        quiet when its change is within that noise: no step can resolve the objective more finely.
        ``stationarity`` gives what one exact step along the whole objective's gradient would still gain
        (None: not judged); it is asked once ``patience`` epochs were quiet, and the fit has converged
        only when that gain is at most :data:`STATIONARY` (or ``tol``). An exact fit needs no test.
        """
        if not math.isfinite(value):
            self.quiet = 0
            return False
        self.values.append(value)
        self.exact = stress1 < EXACT
        quiet = self.judged and (self.change < self.tol or self.exact)
        if self.judged and not quiet and self.tol > 0 and noise is not None and self.change < NOISE_CEILING:
            self.noise = noise()
            quiet = self.change <= self.noise
        elif quiet:
            self.noise = math.nan
        self.quiet = self.quiet + 1 if quiet else 0
        if self.quiet >= self.patience and stationarity is not None and not self.exact and self.tol > 0:
            gain = stationarity()
            self.gain = math.nan if gain is None else gain
        return self.converged

    def summary(self, stress1: float, epochs: int, max_epochs: int | None) -> str:
        """One line: the final stress-1, the epochs run, and converged or ``did not converge`` with what to raise."""
        head = f"stress-1 {stress1:.6g} after {epochs} epoch{'s' if epochs != 1 else ''}"
        if self.tol == 0:
            change = f"; the objective changed by {self.change:.2g} (relative) in the last epoch" if self.judged else ""
            return f"{head}: every epoch run (tol 0: convergence not judged){change}"
        slope = f"; a step along its gradient would gain {self.gain:.2g}" if math.isfinite(self.gain) else ""
        if self.converged and self.exact:
            return f"{head}: converged (an exact fit: stress-1 below {EXACT:g}, where only rounding changes it)"
        if self.converged and self.change >= self.tol and math.isfinite(self.noise):
            return (
                f"{head}: converged (relative change {self.change:.2g} within the {self.noise:.2g} that rounding the "
                f"coordinates alone makes, above tol {self.tol:g}, for {self.patience} epochs{slope})"
            )
        if self.converged:
            change = self.change if self.judged else 0.0
            return (
                f"{head}: converged (relative change {change:.2g} < tol {self.tol:g} for {self.patience} epochs{slope})"
            )
        if self.stalled_short:
            return (
                f"{head}: did not converge: the objective stopped falling (relative change {self.change:.2g}), but "
                f"it is not a stationary point: one exact step along its gradient over every known pair would "
                f"still lower it by {self.gain:.2g} (relative); {self.stalled}"
            )
        if not self.judged:
            return (
                f"{head}: did not converge: too few epochs to measure the objective's change; "
                "raise --trainer.max_epochs"
            )
        return (
            f"{head}: did not converge: the objective changed by {self.change:.2g} (relative) in the last epoch, and "
            f"by less than tol {self.tol:g} in {self.quiet} of the last {self.patience} epochs; raise "
            f"--trainer.max_epochs (now {max_epochs}), or --model.tol"
        )

    stalled = "raise --trainer.max_epochs"
    """What to do about a stalled fit: the model sets its solver's own ``Solver.stalled``."""

    def state_dict(self) -> dict[str, object]:
        """What a resumed fit needs."""
        return {"values": list(self.values), "quiet": self.quiet, "exact": self.exact, "gain": self.gain}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Resume the record of a checkpoint."""
        self.values, self.quiet = list(state.get("values", [])), int(state.get("quiet", 0))
        self.exact = bool(state.get("exact", False))
        self.gain = float(state.get("gain", math.nan))
