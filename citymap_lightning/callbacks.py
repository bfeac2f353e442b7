"""MapRenderer: records the fit's history and writes the map and its diagnostics.

Runs at the end of fitting, on Ctrl-C (Lightning then calls only ``on_exception``) and after
``predict``; diagnostics can also be drawn every N epochs.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from citymap_lightning import comparison, gazetteer, geodata, interactive, output, render, result, sampling, uncertainty
from citymap_lightning import geometry as geo
from citymap_lightning.basemap import Lines, draw_under, for_map
from citymap_lightning.errors import ConfigError, FitDivergedError
from citymap_lightning.lists import listed
from citymap_lightning.result import FittedMap

log = logging.getLogger("citymap_lightning")


class MapRenderer(pl.Callback):
    """Draws the fitted map and its diagnostics into the run's log directory and TensorBoard.

    Files: ``coordinates.csv`` (``name,x,y`` in the input's unit, x east, y north, origin at the
    centroid; for places found by name, then ``geonameid,region,country`` of each match), ``map.png``
    (points, labels, each city's trajectory), ``shepard.png`` (fitted
    against given distance), ``city_error.png`` (the map coloured by each city's share of the
    residual), ``pairs_fitted.csv`` (inputs with missing pairs), ``map.html`` (the map to pan, zoom
    and hover over, with Plotly: :mod:`citymap_lightning.interactive`), ``coordinates.parquet``
    (GeoParquet, where geopandas is installed: :mod:`citymap_lightning.geodata`) and, on request, ``fit.gif``.
    TensorBoard: the images ``map``, ``shepard`` and ``city_error`` (and ``map_paths``, every place's path,
    above 40 places); the histogram
    ``diagnostics/city_stress``; with latitude/longitude, ``diagnostics/position_error_mean_km``
    and ``..._max_km``; and the coordinates in the projector, labelled by name.

    Args:
        snapshots: about how many positions of the fit to record for the trajectories.
        max_labels: at most this many places are labelled (above 40 places, the most populous or an even
            spread: :func:`citymap_lightning.render.label_priority`); above this many places the map's points
            are coloured by their share of the residual.
        max_pairs_places: when pairs are missing (or the input is a pair list) and there are at most
            this many places, ``pairs_fitted.csv`` lists every pair with its given and fitted distance.
        max_trajectories: above this many places no trajectories are drawn (``map.png`` draws them only up
            to 40 places; TensorBoard's ``map_paths`` and ``map.html`` keep them above).
        diagnostics_every_n_epochs: also draw the Shepard diagram and the error map every N epochs
            (0: only at the end, the right choice for long runs).
        gif: write ``fit.gif``, the map over the recorded history.
        gif_frames: at most this many frames in ``fit.gif`` (sampled evenly over the history).
        max_points: above this many places the map and the error map are density pictures (hexagons),
            with labels for a readable subset (one place per cell of an 8 x 8 grid, at most
            ``max_labels``; their trajectories are in ``map.html``); only that subset's history is recorded
            (and checkpointed), so memory and checkpoints stay O(n) whatever ``snapshots`` (unless ``gif`` is
            asked for).
        html: write ``map.html`` for a flat map (needs Plotly; without it, one line says it is skipped).

    """

    def __init__(
        self,
        snapshots: int = 200,
        max_labels: int = 200,
        max_pairs_places: int = 2000,
        max_trajectories: int = 2000,
        diagnostics_every_n_epochs: int = 0,
        gif: bool = False,
        gif_frames: int = 80,
        max_points: int = 5000,
        html: bool = True,
    ) -> None:
        for name, value, low in (("snapshots", snapshots, 1), ("max_labels", max_labels, 0),
                                 ("max_pairs_places", max_pairs_places, 0), ("max_trajectories", max_trajectories, 0),
                                 ("diagnostics_every_n_epochs", diagnostics_every_n_epochs, 0),
                                 ("gif_frames", gif_frames, 2), ("max_points", max_points, 0)):  # fmt: skip
            if value < low:
                raise ConfigError(f"map.{name} is {value}: it must be at least {low}")
        self.snapshots = snapshots
        self.max_labels = max_labels
        self.max_pairs_places = max_pairs_places
        self.max_trajectories = max_trajectories
        self.diagnostics_every_n_epochs = diagnostics_every_n_epochs
        self.gif = gif
        self.gif_frames = gif_frames
        self.max_points = max_points
        self.html = html
        self._populations: tuple[Any, np.ndarray | None] = (None, None)
        self.history: list[np.ndarray] = []
        self.subset: np.ndarray | None = None
        """The places whose history is recorded (None: every place)."""
        self.written: list[Path] = []

    def _interval(self, trainer: pl.Trainer) -> int:
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1000
        return max(1, math.ceil(epochs / max(self.snapshots, 1)))

    def _positions(self, pl_module: pl.LightningModule) -> np.ndarray:
        """The recorded places' positions now, ``(restarts, places, dim)``."""
        coords = pl_module.coords.detach()
        if self.subset is not None:
            coords = coords[:, torch.from_numpy(self.subset).to(coords.device)]
        return coords.cpu().double().numpy().copy()

    def _record(self, pl_module: pl.LightningModule) -> None:
        self.history.append(self._positions(pl_module))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record the start (unless resuming a recorded history); above ``max_points``, only a readable subset's."""
        if not self.history:
            n = pl_module.coords.shape[1]
            self.subset = None
            if n > self.max_points and not self.gif:
                start = _as_plane(pl_module.coords[0].detach().cpu().double().numpy()[:, :2])
                self.subset = render.readable_subset(start, self.max_labels)
            self._record(pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record every few epochs (about ``snapshots`` in all); draw diagnostics when asked to."""
        epoch = trainer.current_epoch + 1
        if epoch % self._interval(trainer) == 0:
            self._record(pl_module)
            table = trainer.datamodule.table
            if table.latlon is not None and torch.isfinite(pl_module.coords).all():
                estimate = result.aligned(pl_module.problem, pl_module.state(), pl_module.solver.scale).latlon
                if estimate is not None:
                    self._log_position_error(trainer, geo.haversine(estimate, table.latlon))
        if self.diagnostics_every_n_epochs and epoch % self.diagnostics_every_n_epochs == 0:
            self._diagnostics(trainer, pl_module, pl_module.fitted_map(), log_dir=None)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the results of a finished fit."""
        if trainer.fast_dev_run:
            return
        if not self.history or not np.array_equal(self.history[-1], self._positions(pl_module)):
            self._record(pl_module)
        self.render(trainer, pl_module, _log_dir(trainer))

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """On Ctrl-C or SIGTERM, write the map of where the fit got to; after a divergence or error, write nothing."""
        if isinstance(exception, FitDivergedError) or not isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            return
        if not torch.isfinite(pl_module.coords).all() or trainer.fast_dev_run:
            return
        self._record(pl_module)
        self.render(trainer, pl_module, _log_dir(trainer))
        for path in self.written:
            print(f"wrote {path}")

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the coordinates and map of the loaded checkpoint, or of the new places put on it."""
        placement = getattr(pl_module.solver, "placement", None)
        if placement is not None:
            self.render_placement(trainer, pl_module, placement, _log_dir(trainer))
        else:
            self.render(trainer, pl_module, _log_dir(trainer))

    @rank_zero_only
    def render_placement(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, placement: Any, log_dir: Path
    ) -> None:
        """The new places' ``coordinates.csv`` (in the fitted map's frame and unit), GeoJSON, and the map of both."""
        fit = pl_module.fitted_map()
        coords = placement.coords
        self.written = [output.write_coordinates(log_dir / "coordinates.csv", placement.names, coords)]
        if placement.latlon is not None:
            properties = [{"stress1": round(float(s), 6)} for s in placement.stress1]
            self.written.append(output.write_geojson(log_dir / "coordinates.geojson", placement.names, placement.latlon,
                                                     properties))  # fmt: skip
        median, worst = float(np.median(placement.stress1)), int(np.argmax(placement.stress1))
        log.info(
            f"{len(placement.names)} new places put on the map of {len(fit.names)}: stress-1 of their distances "
            f"median {median:.3g}, worst {placement.stress1[worst]:.3g} ({placement.names[worst]})"
        )
        if fit.geometry == "sphere":
            figure = render.draw_globe(
                np.vstack([fit.latlon, placement.latlon]), [""] * len(fit.names) + placement.names,
                title=f"{len(placement.names)} new places on the fitted map", max_labels=self.max_labels,
            )  # fmt: skip
        else:
            figure = render.draw_placement(
                _as_plane(fit.coords[:, :2]), _as_plane(coords[:, :2]), placement.names,
                title=f"{len(placement.names)} new places on the fitted map of {len(fit.names)}",
                unit=fit.unit or ("input units" if fit.located_by else ""), max_labels=self.max_labels,
                geographic=fit.latlon is not None,
            )  # fmt: skip
            draw_under(figure.axes[0], for_map(fit))
        self._publish(trainer, "map", figure, log_dir)
        for logger in _tensorboard(trainer):
            logger.experiment.add_text(
                "predict/new_places", f"{len(placement.names)} new places, median stress-1 {median:.4g}",
                trainer.global_step,
            )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """The recorded history goes into checkpoints, so that a resumed run draws the whole path."""
        state = {"history": [torch.from_numpy(h) for h in self.history]}
        if self.subset is not None:
            state["subset"] = torch.from_numpy(self.subset)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the recorded history (and which places it holds)."""
        self.history = [h.numpy() for h in state_dict.get("history", [])]
        subset = state_dict.get("subset")
        self.subset = None if subset is None else subset.numpy()

    @rank_zero_only
    def render(self, trainer: pl.Trainer, pl_module: pl.LightningModule, log_dir: Path) -> None:
        """Align the best restart north-up, then write the result files into ``log_dir`` and TensorBoard images.

        ``log_dir`` comes from the caller: ``trainer.log_dir`` is a collective call under DDP, which
        this rank-zero-only method must not make.
        """
        pl_module.check_finite()
        table = trainer.datamodule.table
        fit = pl_module.fitted_map()
        coords, best = fit.coords, pl_module.best_restart()
        title = f"{table.n} places, stress-1 {fit.stress1:.3g}" if math.isfinite(fit.stress1) else ""
        self.written = [output.write_coordinates(log_dir / "coordinates.csv", table.names, coords, fit.geonames)]
        if fit.located_by is not None and fit.latlon is not None:
            self.written.append(_write_geojson(log_dir / "coordinates.geojson", table, fit))
        parquet = geodata.write_parquet(log_dir / "coordinates.parquet", fit)
        self.written.extend([parquet] if parquet is not None else [])
        population, history = self._population(trainer, table), None
        if (table.kind == "pairs" or not table.complete) and table.n <= self.max_pairs_places:
            with torch.no_grad():
                fitted = pl_module.fitted_distances()[best].double().cpu().numpy() * pl_module.solver.scale
            self.written.append(output.write_pairs(log_dir / "pairs_fitted.csv", table.names, table.matrix(), fitted))
        if fit.geometry == "sphere":
            figure = render.draw_globe(
                fit.latlon, table.names, title=f"{title}, radius {fit.radius:.1f}", max_labels=self.max_labels
            )
        elif coords.shape[1] <= 2:  # a flat map; a 1-D ordering is drawn along x
            flat = _as_plane(coords)
            if self.history and len({h.shape for h in self.history}) == 1:
                history = fit.orientation.apply(np.stack([h[best] for h in self.history]) * pl_module.solver.scale)
                history = _as_plane(history)
            coloured = self.max_labels < table.n <= self.max_points
            spread = None if fit.replicates is None else self._write_uncertainty(trainer, log_dir, fit)
            figure = render.draw_map(
                flat, table.names, None if spread is not None else history,
                values=100 * fit.place_share if coloured else None,
                value_label="share of the residual (%)", title=title,
                unit=table.unit or ("input units" if fit.located_by else ""),
                max_labels=self.max_labels, max_trajectories=self.max_trajectories, ellipses=spread,
                max_points=self.max_points, subset=self.subset, geographic=fit.latlon is not None,
                population=population,
            )  # fmt: skip
            draw_under(figure.axes[0], self._basemap(fit, table))
            if history is not None and render.ALL_LABELS < history.shape[1] == table.n <= self.max_trajectories:
                paths = render.draw_paths(flat, history, table.unit, fit.latlon is not None)
                self._publish(trainer, "map_paths", paths, None)  # every path, in TensorBoard only
            if spread is not None:
                self._publish(trainer, "uncertainty", figure, log_dir)
            if self.gif and history is not None and len(history) > 1:
                self.written.append(_write_gif(log_dir / "fit.gif", history, table.names, self.gif_frames, table.unit))
        else:
            figure = render.draw_space(coords[:, :3], table.names, title=title, unit=table.unit)
        self._publish(trainer, "map", figure, log_dir)
        self._diagnostics(trainer, pl_module, fit, log_dir)
        compared = self._time_space(trainer, table, fit, log_dir)
        if self.html and fit.geometry != "sphere" and coords.shape[1] <= 2:
            page = interactive.write_map(log_dir / "map.html", fit, history, self.subset, *compared, population, title,
                                         coastlines=self._basemap(fit, table))  # fmt: skip
            self.written.extend([page] if page is not None else [])
        self._log_position_error(trainer, fit.position_error_km)
        if fit.matches is not None:
            _report_matches(table, fit)
        if fit.km_per_unit is not None:
            if trainer.logger is not None:
                trainer.logger.log_metrics({"geo/km_per_unit": fit.km_per_unit}, step=trainer.global_step)
        for logger in _tensorboard(trainer):
            _add_projector(logger.experiment, coords, table.names, "coordinates", trainer.global_step)

    def _time_space(self, trainer: pl.Trainer, table: Any, fit: FittedMap, log_dir: Path) -> tuple[Any, str]:
        """The map against the real positions (given, or the gazetteer's) and the asymmetric table's skew part.

        Gives back the comparison (None without positions) and its unit, for ``map.html``.

        Writes ``comparison.json``/``.csv``, ``displacement.png`` and ``distortion.png`` when positions are
        known; ``asymmetry.csv``, ``drift.png`` (and ``asymmetry.json`` without positions) for a symmetrized
        table; the coefficients go to the logger as ``comparison/*`` and ``asymmetry/share``.
        """
        flat = fit.geometry == "plane" and fit.coords.shape[1] == 2
        positions = table.positions
        if positions is None and table.located is not None and fit.matches is not None and fit.matches.enough:
            kept = fit.matches.kept  # a wrong match left out of the frame has no real position to compare with
            positions = comparison.from_latlon(table.located.places[kept], table.located.latlon[kept], "gazetteer")
        skew, share = table.skew, table.asymmetry_share
        if not flat and (table.positions is not None or skew is not None):
            log.warning(f"{table.source}: the comparison with positions and the drift vectors are drawn for a flat "
                        "2-D map only: skipped")  # fmt: skip
            return None, ""
        metrics: dict[str, float] = {}
        found, unit = None, ""
        extra = {} if skew is None else {"asymmetry_share": float(share)}
        if positions is not None:
            found = comparison.of_map(table.names, fit.coords, positions)
            self.written.extend(comparison.write(found, log_dir, extra=extra))
            unit = "km" if positions.latlon is not None else ""
            shown = {"unit": unit or "units of the positions", "geographic": positions.latlon is not None}
            figure = comparison.draw_displacement(found, **shown, per=render.per_unit(table.unit))
            self._publish(trainer, "displacement", figure, log_dir)
            self._publish(trainer, "distortion", comparison.draw_distortion(found, **shown), log_dir)
            summary = found.summary()
            metrics |= {f"comparison/{key}": value for key, value in summary.items()}
            per = f" per {render.per_unit(table.unit)}"
            log.info(
                f"{positions.source}: {len(found.names)} places compared: scale {found.scale:.4g} "
                f"{unit or 'units'}{per}, congruence {found.congruence:.4f}, displacement median "
                f"{np.median(found.displacement):.4g} (at most {np.max(found.displacement):.4g}) {found.unit_label}"
            )
        if skew is not None:
            drifts = comparison.drift(skew, np.isfinite(table.distances))
            self.written.extend(comparison.write_asymmetry(log_dir, table.names, drifts,
                                                           None if positions is not None else share))  # fmt: skip
            vectors = comparison.drift_vectors(fit.coords, skew)
            figure = comparison.draw_drift(fit.coords, table.names, vectors, table.unit, fit.latlon is not None)
            self._publish(trainer, "drift", figure, log_dir)
            metrics["asymmetry/share"] = float(share)
        if metrics and trainer.logger is not None:
            trainer.logger.log_metrics(metrics, step=trainer.global_step)
        return found, unit

    def _write_uncertainty(self, trainer: pl.Trainer, log_dir: Path, fit: FittedMap) -> np.ndarray:
        """``uncertainty.csv`` and ``uncertainty/median_semi_major``; the ellipses' semi-axes and directions."""
        table = uncertainty.ellipses(fit.replicates)
        rows = [[name, *(f"{v:.6g}" for v in row)] for name, row in zip(fit.names, table, strict=True)]
        self.written.append(output.write_table(log_dir / "uncertainty.csv", ["name", *uncertainty.COLUMNS], rows))
        median = float(np.median(table[:, 2]))
        log.info(f"bootstrap: {len(fit.replicates)} replicates; 95% ellipses' median semi-major axis {median:.4g}"
                 f"{' ' + fit.unit if fit.unit else ''}")  # fmt: skip
        if trainer.logger is not None:
            trainer.logger.log_metrics({"uncertainty/median_semi_major": median}, step=trainer.global_step)
        return table[:, 2:]

    def _population(self, trainer: pl.Trainer, table: Any) -> np.ndarray | None:
        """Each place's population for choosing labels: of places found by name, else looked up by name and position.

        The lookup (latitude/longitude in the input, or latitude/longitude positions compared with) runs up
        to :data:`~citymap_lightning.gazetteer.POPULATION_LIMIT` places, unless ``--data.gazetteer false``.
        """
        found = render.population_of(table.located, table.n)
        hparams = getattr(trainer.datamodule, "hparams", {})
        if found is not None or not hparams.get("gazetteer", True) or table.n > gazetteer.POPULATION_LIMIT:
            return found
        if table.n <= render.ALL_LABELS:  # every place gets its label: nothing to choose, no gazetteer to load
            return None
        latlon = table.latlon
        positions = getattr(table, "positions", None)
        if latlon is None and positions is not None and positions.latlon is not None:
            latlon = np.full((table.n, 2), np.nan)
            latlon[positions.index] = positions.latlon
        if latlon is None:
            return None
        if self._populations[0] is not table:  # looked up once per table (the map and the error map both ask)
            self._populations = (table, gazetteer.population_near(table.names, np.asarray(latlon, dtype=np.float64)))
        return self._populations[1]

    def _basemap(self, fit: FittedMap, table: Any) -> Lines | None:
        """The coastlines and borders under the map ``fit`` (:func:`~citymap_lightning.basemap.for_map`), made once."""
        if getattr(self, "_lines", (None,))[0] is not fit:
            self._lines = (fit, for_map(fit, getattr(table, "positions", None)))
        return self._lines[1]

    def _publish(self, trainer: pl.Trainer, tag: str, figure: Any, log_dir: Path | None) -> None:
        """Render a figure once; write it as ``TAG.png`` when ``log_dir`` is set and add it to TensorBoard."""
        image = render.to_image(figure)
        if log_dir is not None:
            self.written.append(output.save_image(log_dir / f"{tag}.png", image))
        for logger in _tensorboard(trainer):
            logger.experiment.add_image(tag, image[..., :3], global_step=trainer.global_step, dataformats="HWC")
            logger.experiment.flush()

    SHEPARD_PAIRS = 20000
    """Most pairs drawn in a Shepard diagram (a random sample of the known pairs beyond that)."""

    def _diagnostics(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, fit: FittedMap, log_dir: Path | None
    ) -> None:
        """Shepard diagram, per-city error map and histogram: to TensorBoard, and to files when ``log_dir`` is set.

        The Shepard diagram shows at most :attr:`SHEPARD_PAIRS` known pairs, drawn at random, so that
        it costs the same at any size.
        """
        table = trainer.datamodule.table
        share = fit.place_share
        i, j = sampling.known_pairs_sample(table, self.SHEPARD_PAIRS)
        with torch.no_grad():
            state = pl_module.state()
            fitted = pl_module.problem.pair_distances(state, torch.from_numpy(i), torch.from_numpy(j))[state.best]
        fitted = fitted.double().cpu().numpy()
        title = f"Shepard diagram ({len(i)} of {table.n_known_pairs} pairs)" if len(i) < table.n_known_pairs else ""
        shepard = render.shepard_diagram(
            table.pair_distances(i, j), fitted * pl_module.solver.scale, unit=table.unit, title=title,
            curve=pl_module.solver.disparity_curve(pl_module.problem, pl_module.state()),
        )  # fmt: skip
        figures = {"shepard": shepard}
        if fit.coords.shape[1] <= 2 and fit.geometry != "sphere":
            figures["city_error"] = render.city_error_map(
                _as_plane(fit.coords), table.names, share, unit=table.unit, max_labels=min(60, self.max_labels),
                max_points=self.max_points, subset=self.subset, geographic=fit.latlon is not None,
                population=self._population(trainer, table),
            )  # fmt: skip
            draw_under(figures["city_error"].axes[0], self._basemap(fit, table))
        for tag, figure in figures.items():
            self._publish(trainer, tag, figure, log_dir)
        for logger in _tensorboard(trainer):
            logger.experiment.add_histogram("diagnostics/city_stress", share, global_step=trainer.global_step)
            worst = np.argsort(share)[::-1][:10]
            cells = [render.display_name(table.names[i]).replace("|", "\\|") for i in worst]
            rows = "\n".join(f"| {cell} | {100 * share[i]:.2f} % |" for cell, i in zip(cells, worst, strict=True))
            logger.experiment.add_text(
                "diagnostics/worst_cities", f"| city | share of residual |\n|---|---|\n{rows}", trainer.global_step
            )

    @staticmethod
    def _log_position_error(trainer: pl.Trainer, errors: np.ndarray | None) -> None:
        """Mean and max great-circle distance (km) of the aligned fit's places from their known positions."""
        known = np.isfinite(errors) if errors is not None else None
        if errors is None or trainer.logger is None or not known.any():
            return
        trainer.logger.log_metrics(
            {
                "diagnostics/position_error_mean_km": float(errors[known].mean()),
                "diagnostics/position_error_max_km": float(errors[known].max()),
            },
            step=trainer.global_step,
        )


def _log_dir(trainer: pl.Trainer) -> Path:
    """The run's folder (every rank must call this under DDP: it is broadcast from rank zero)."""
    return Path(trainer.log_dir or trainer.default_root_dir)


def _tensorboard(trainer: pl.Trainer) -> list[TensorBoardLogger]:
    """The run's TensorBoard loggers."""
    return [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]


def _report_matches(table: Any, fit: FittedMap) -> None:
    """A warning per match left out of the alignment (up to :data:`LEFT_OUT_SHOWN`, then one line for the rest).

    Then the frame the others fixed, or why none.
    """
    matches, located = fit.matches, table.located
    out = np.flatnonzero(~matches.kept)
    for k in out[:LEFT_OUT_SHOWN]:
        log.warning(
            f"{table.names[located.places[k]]}: matched {located.describe(k)} at {_degrees(located.latlon[k])}, "
            f"{matches.km[k]:,.0f} km from where its distances put it; left out"
        )
    if len(out) > LEFT_OUT_SHOWN:
        rest = [table.names[located.places[k]] for k in out[LEFT_OUT_SHOWN:]]
        log.warning(f"… and {len(rest)} more matches left out, each far from where its distances put it: "
                    f"{listed(rest, 20)}")  # fmt: skip
    kept, found = int(matches.kept.sum()), len(matches.kept)
    if not matches.enough:
        log.warning(
            f"{table.source}: only {kept} of the {found} places found by name agree with the map, too few to put it "
            f"north up: it may be turned or mirrored; {gazetteer.FIX_FRAME}"
        )
        return
    errors = matches.km[matches.kept]
    left_out = f" ({found - kept} left out)" if kept < found else ""
    log.info(
        f"map put north up on {kept} places found by name{left_out}: the distances are "
        f"{1 / fit.km_per_unit:.4g} times the great-circle km ({fit.km_per_unit:.4g} km per unit: the unit, "
        f"or a detour factor); they lie a median {np.median(errors):.0f} km (at most {errors.max():.0f} km) "
        "from their GeoNames positions"
    )


LEFT_OUT_SHOWN = 10
"""Matches left out that get a warning each; the rest are named in one line."""


def _degrees(latlon: np.ndarray) -> str:
    """``31.8°N 130.3°E``."""
    lat, lon = float(latlon[0]), float(latlon[1])
    return f"{abs(lat):.1f}°{'N' if lat >= 0 else 'S'} {abs(lon):.1f}°{'E' if lon >= 0 else 'W'}"


def _write_geojson(path: Path, table: Any, fit: FittedMap) -> Path:
    """``coordinates.geojson``; from names, every place is marked as estimated and with what it matched.

    A place found by name has the gazetteer's label, and its ``geonameid``, ``region`` and ``country`` (as text).
    """
    if fit.located_by == "anchors":
        anchored = set(table.anchors.index.tolist())
        return output.write_geojson(
            path, table.names, fit.latlon, [{"anchored": k in anchored} for k in range(table.n)]
        )
    if fit.located_by != "names":
        return output.write_geojson(path, table.names, fit.latlon)
    labels = dict(zip(table.located.places.tolist(), table.located.labels, strict=True))
    left_out = set(table.located.places[~fit.matches.kept].tolist())
    found = fit.geonames or {}
    properties = [
        {"estimated_from": "names", "gazetteer": labels.get(k), "km_per_unit": round(fit.km_per_unit, 6)}
        | {key: values[k] for key, values in found.items() if labels.get(k) is not None}
        | ({"left_out": True} if k in left_out else {})
        for k in range(table.n)
    ]
    return output.write_geojson(path, table.names, fit.latlon, properties)


def _add_projector(writer: Any, coords: np.ndarray, names: list[str], tag: str, step: int) -> None:
    """The coordinates in TensorBoard's projector, labelled by name: what ``SummaryWriter.add_embedding`` writes.

    The same files (``STEP/TAG/tensors.tsv`` and ``metadata.tsv``, listed in ``projector_config.pbtxt``),
    each written as one string: ``add_embedding`` writes the tensor a number at a time (3 s at 200,000
    places, against 0.3 s).
    """
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import EmbeddingInfo, ProjectorConfig

    logdir = Path(writer.get_logdir())
    subdir = f"{str(step).zfill(5)}/{tag}"
    folder = logdir / subdir
    folder.mkdir(parents=True, exist_ok=True)
    values = np.asarray(coords, dtype=np.float32).astype(np.float64)
    row = "\t".join(["{:.9g}"] * values.shape[1]) + "\n"
    output.atomic_write(folder / "tensors.tsv", lambda f: f.write("".join(map(row.format, *values.T.tolist()))))
    labels = "\n".join(map(render.display_name, names)) + "\n"
    output.atomic_write(folder / "metadata.tsv", lambda f: f.write(labels))
    config = getattr(writer, "_projector_config", None)  # the writer's own, as add_embedding keeps it
    config = ProjectorConfig() if config is None else config
    info = EmbeddingInfo(tensor_name=f"{tag}:{str(step).zfill(5)}", tensor_path=f"{subdir}/tensors.tsv")
    info.metadata_path = f"{subdir}/metadata.tsv"
    config.embeddings.append(info)
    writer._projector_config = config
    text = text_format.MessageToString(config)
    output.atomic_write(logdir / "projector_config.pbtxt", lambda f: f.write(text))


def _as_plane(coords: np.ndarray) -> np.ndarray:
    """``(..., n, 2)`` positions to draw: a 1-D ordering gets y = 0."""
    if coords.shape[-1] == 2:
        return coords
    return np.concatenate([coords, np.zeros_like(coords)], axis=-1)


def _write_gif(path: Path, history: np.ndarray, names: list[str], frames: int, unit: str) -> Path:
    """Render the animation to a temporary file beside ``path``, then rename it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".gif", dir=path.parent)
    os.close(fd)
    try:
        render.animate(history, names, tmp, frames=frames, unit=unit)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path.resolve()
