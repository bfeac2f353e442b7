"""``citymap_lightning.MDS``: a scikit-learn estimator over the same LightningModule and Trainer as the CLI.

Needs scikit-learn (``pip install citymap-lightning[sklearn]``); the rest of the package does not.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Trainer
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from citymap_lightning import geometry as geo
from citymap_lightning import losses, placing, readers, threads
from citymap_lightning.datamodule import DistanceDataModule
from citymap_lightning.model import CityMap
from citymap_lightning.result import FittedMap

METRICS = ("precomputed", "euclidean", "haversine")
"""What ``X`` holds: a distance matrix, points in feature space, or latitude/longitude in degrees."""

_QUIET = ("lightning.pytorch", "lightning.fabric", "citymap_lightning")


class MDS(TransformerMixin, BaseEstimator):
    """Metric MDS by gradient descent in PyTorch Lightning, in scikit-learn's conventions.

    Missing pairs (NaN in a precomputed matrix) and weights are fitted as such; places whose
    position is known can be held fixed (``anchors``); new places are put on a fitted map by
    :meth:`transform`, the fitted ones staying where they are.

    Args:
        n_components: dimensions of the map (3 on a sphere: its points are 3-D).
        metric: ``precomputed`` (``X`` is a square distance matrix, NaN where unknown),
            ``euclidean`` (``X`` holds points, whose Euclidean distances are fitted) or
            ``haversine`` (``X`` holds latitude and longitude in degrees, in that order; the
            great-circle distances in km are fitted).
        init: the start: ``classical`` (Torgerson MDS; pivot MDS at scale), ``pivot`` or ``random``.
        n_init: maps fitted at once (batched restarts, with Adam; Guttman transforms for weighted
            stress); the best is kept.
        max_iter: most epochs (one step of L-BFGS of up to 5 iterations each, for one map; for
            weighted stress, 10 Guttman transforms, 50 where pairs are missing).
        eps: stop when the objective changes by less than this (relative) over an epoch; a fit that
            reaches ``max_iter`` first says ``did not converge`` in a warning.
        random_state: seed of the random starts.
        verbose: 0 silent, 1 the progress bar and the fit's messages.
        loss: ``stress`` (Kruskal's raw stress, scikit-learn's objective), ``weighted_stress``
            (weights ``1/d^2``), ``sammon`` (weights ``1/d``), ``course`` (squared distances): any loss of
            ``losses.REGISTRY``; or ``auto`` (as in the CLI: the course objective, since the estimator
            fits distances as they are).
        geometry: ``plane``, ``space`` or ``sphere``.
        trainer_kwargs: passed to the Lightning ``Trainer`` (``accelerator``, ``devices``,
            ``logger``, ``callbacks``...). By default there is no logger, checkpoint, progress bar
            or model summary, so that a notebook fit is fast.

    Attributes:
        embedding_: ``(n, n_components)`` positions, in the input's unit (km for ``haversine``).
        stress_: the fit's stress-1 (Kruskal's, ``sqrt(sum w (dhat - d)^2 / sum w d^2)`` over the
            known pairs), not scikit-learn's raw stress.
        n_iter_: epochs run.
        fitted_map_: the :class:`~citymap_lightning.result.FittedMap` (names, per-place share of the
            residual, latitude/longitude where the frame is known).
        names_: place names (a DataFrame's index, else ``0..n-1``).
        n_features_in_: features of ``X`` (``n`` for a precomputed matrix).

    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(METRICS))],
        "init": [StrOptions({"classical", "classical_mds", "pivot", "random"})],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "eps": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "loss": [StrOptions({*losses.LOSSES, losses.AUTO})],
        "geometry": [StrOptions({"plane", "space", "sphere"})],
        "trainer_kwargs": [dict, None],
    }

    def __init__(
        self,
        n_components: int = 2,
        *,
        metric: str = "euclidean",
        init: str = "classical",
        n_init: int = 1,
        max_iter: int = 300,
        eps: float = 1e-6,
        random_state: Any = None,
        verbose: int = 0,
        loss: str = "stress",
        geometry: str = "plane",
        trainer_kwargs: dict | None = None,
    ) -> None:
        self.n_components = n_components
        self.metric = metric
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.eps = eps
        self.random_state = random_state
        self.verbose = verbose
        self.loss = loss
        self.geometry = geometry
        self.trainer_kwargs = trainer_kwargs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self.metric == "precomputed"
        tags.input_tags.allow_nan = self.metric == "precomputed"
        tags.input_tags.positive_only = self.metric == "precomputed"
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    def _validate_input(self, X: Any, reset: bool) -> np.ndarray:
        precomputed = self.metric == "precomputed"
        if self.metric == "haversine" and hasattr(X, "columns"):
            X = _latlon_columns(X)
        X = validate_data(
            self, X, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan" if precomputed else True,
            ensure_min_samples=1 if not reset else 3,
        )  # fmt: skip
        if precomputed and (X < 0).any():
            raise ValueError("Negative values in data passed to MDS: distances must be >= 0")
        if self.metric == "haversine" and X.shape[1] != 2:
            raise ValueError(f"metric='haversine' takes latitude and longitude in degrees: X has {X.shape[1]} columns")
        if self.metric == "haversine" and (np.abs(X[:, 0]) > 90).any():
            raise ValueError(
                "metric='haversine': a latitude is outside [-90, 90] (are the columns latitude, longitude?)"
            )
        return X

    def _table(self, X: np.ndarray, names: list[str], weights: Any) -> Any:
        if self.metric == "precomputed":
            if X.shape[0] != X.shape[1]:
                raise ValueError(f"metric='precomputed' needs a square distance matrix, got shape {X.shape}")
            try:
                return readers.from_matrix(X, names, weights=weights, source="X")
            except ValueError as e:
                if "symmetrize" not in str(e):
                    raise
                raise ValueError(f"{str(e).split(':')[0]}: X is not symmetric: pass (X + X.T) / 2") from None
        if weights is not None:
            raise ValueError("weights go with metric='precomputed' (one per pair of places)")
        if self.metric == "haversine":
            return readers.from_latlon(names, X, source="X")
        from scipy.spatial.distance import cdist

        return readers.from_matrix(cdist(X, X), names, source="X", owned=True)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, *, weights: Any = None, anchors: Any = None) -> MDS:
        """Fit the map.

        Args:
            X: ``(n, n)`` distances (``metric="precomputed"``, NaN where unknown), ``(n, features)``
                points, or ``(n, 2)`` latitude/longitude (``metric="haversine"``). A pandas DataFrame's
                index names the places, which are looked up in the bundled GeoNames gazetteer: with 3
                or more found, the map is turned north up on them (as the CLI does).
            y: ignored.
            weights: ``(n, n)`` non-negative weights of the pairs (precomputed only); 0 leaves a pair out.
            anchors: places held at known positions: a mapping ``{name: (x, y)}`` (or ``(latitude,
                longitude)`` with ``metric="haversine"``), a DataFrame indexed by name with x/y or
                latitude/longitude columns, or a CSV file. Integer names index a NumPy ``X``.
                With anchors, ``loss="weighted_stress"`` places the others better than raw stress
                (by the near distances, which the anchors' frame distorts least).

        """
        names = _names(X)
        named = names is not None and self.metric != "haversine"
        X = self._validate_input(X, reset=True)
        names = names if names is not None else [str(k) for k in range(X.shape[0])]
        if self.geometry == "sphere" and self.n_components != 3:
            raise ValueError("geometry='sphere' places points by 3-D vectors: use n_components=3")
        if self.geometry != "sphere" and self.n_components >= X.shape[0]:
            raise ValueError(f"n_components={self.n_components} needs more than {X.shape[0]} places")
        table = self._table(X, names, None if weights is None else np.asarray(weights, dtype=np.float64))
        if anchors is not None:
            anchors = _anchor_names(anchors, self.metric == "haversine")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        # a notebook's threads are its own: the fit runs on those its size and the free cores call for
        # (torch's, BLAS's and OpenMP's, the start's included), and every setting is given back after
        with _quiet(self.verbose), torch.random.fork_rng(devices=[]), threads.kept():
            torch.manual_seed(seed)
            threads.use_for(0)  # the set-up (the table's full batch) on one thread, as the CLI's
            dm = DistanceDataModule.from_table(table, gazetteer=named, anchors=anchors)
            dim = None if self.geometry == "sphere" else self.n_components
            start = "classical" if self.init == "classical_mds" else self.init
            model = CityMap(num_places=table.n, geometry=self.geometry, dim=dim, loss=self.loss, start=start,
                            restarts=self.n_init, tol=self.eps, patience=1)  # fmt: skip
            options = self._trainer_options()
            trainer = Trainer(**options)
            # nothing reads a step's logged values without a logger, progress bar or user's callback
            model.log_steps = bool(options["logger"] or options["enable_progress_bar"] or options.get("callbacks"))
            threads.use_for_fit(table, dm.solver, self.n_init)
            trainer.fit(model, datamodule=dm)
            self.fitted_map_: FittedMap = model.fitted_map()
        self._fit_loss = model.hparams.loss  # the resolved loss, which new places are placed by
        self.n_iter_ = int(trainer.current_epoch)
        self.names_ = names
        self.embedding_ = self.fitted_map_.coords
        self.stress_ = float(self.fitted_map_.stress1)
        self._fit_X = X if self.metric != "precomputed" else None
        return self

    def _trainer_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "max_epochs": self.max_iter, "logger": False, "enable_checkpointing": False,
            "enable_progress_bar": bool(self.verbose), "enable_model_summary": False, "num_sanity_val_steps": 0,
            "limit_val_batches": 0, "log_every_n_steps": 1,
        }  # fmt: skip
        options.update(self.trainer_kwargs or {})
        return options

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit the map and return ``embedding_``."""
        return self.fit(X, y, **fit_params).embedding_

    def transform(self, X: Any) -> np.ndarray:
        """Put new places on the fitted map; the fitted places stay where they are.

        Args:
            X: ``(m, n)`` distances from each new place to the fitted places (``precomputed``, NaN
                where unknown; at least 3 known per place), ``(m, features)`` points, or ``(m, 2)``
                latitude/longitude (``haversine``).

        Returns ``(m, n_components)`` positions in the fitted map's frame and unit. Each place is
        placed on its own: the result for a row does not depend on the other rows.

        """
        return self.place(X)[0]

    def place(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transform`, and each new place's stress-1 over its distances to the fitted places."""
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        if self.metric == "precomputed":
            distances = X
        elif self.metric == "haversine":
            distances = geo.haversine(X[:, None, :], self._fit_X[None, :, :])
        else:
            from scipy.spatial.distance import cdist

            distances = cdist(X, self._fit_X)
        known = np.isfinite(distances).sum(axis=1)
        if (known < placing.MIN_KNOWN).any():
            k = int(np.argmin(known))
            raise ValueError(
                f"X: new place {k} has {known[k]} known distance(s): at least {placing.MIN_KNOWN} are needed"
            )
        fit = self.fitted_map_
        return placing.place(fit.coords, distances, None, fit.geometry, fit.radius, loss=self._fit_loss)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``x, y`` (``z`` and more in higher dimensions): the map's axes."""
        check_is_fitted(self)
        axes = ["x", "y", "z"] + [f"x{k}" for k in range(4, self.embedding_.shape[1] + 1)]
        return np.asarray(axes[: self.embedding_.shape[1]], dtype=object)


def _latlon_columns(X: Any) -> Any:
    """A DataFrame's latitude and longitude columns, in that order, when it names them."""
    lower = [str(c).lower() for c in X.columns]
    lat = next((k for k, c in enumerate(lower) if c in readers.LATITUDE), None)
    lon = next((k for k, c in enumerate(lower) if c in readers.LONGITUDE), None)
    return X.iloc[:, [lat, lon]] if lat is not None and lon is not None else X


def _names(X: Any) -> list[str] | None:
    """A DataFrame's index as place names."""
    index = getattr(X, "index", None)
    if index is None or not hasattr(X, "columns"):
        return None
    return [str(k) for k in index]


def _anchor_names(anchors: Any, latlon: bool) -> Any:
    """Anchors as the data module takes them; integer keys of a mapping are place indices (names ``0..n-1``)."""
    from citymap_lightning import anchors as anchoring

    if isinstance(anchors, dict):
        anchors = {str(k): v for k, v in anchors.items()}
    return anchoring.from_object(anchors, latlon=latlon)


@contextlib.contextmanager
def _quiet(verbose: int) -> Iterator[None]:
    """Lightning's and the package's messages only when ``verbose``; known-harmless warnings never."""
    from citymap_lightning.cli import QUIET_WARNINGS

    loggers = [logging.getLogger(name) for name in _QUIET]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
        if not verbose:
            for lg in loggers:
                lg.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)
