"""How sure the map is: each place's spread over bootstrap replicates, as a 95% ellipse.

Each replicate is fitted to the known pairs resampled with replacement; aligned onto the map by
Procrustes (rotation, reflection and translation, no scale), its positions of a place scatter
about the place. The ellipse is the 95% region of a normal distribution with that scatter's
covariance, centred on the place's position in ``coordinates.csv``: the sampling variability of the
fit given the data, not the error of the data themselves.
"""

from __future__ import annotations

import numpy as np

from citymap_lightning import align

CHI2_95_2D = 5.991464547107979
"""The 95% quantile of the chi-squared distribution with 2 degrees of freedom."""

COLUMNS = ("sd_x", "sd_y", "semi_major", "semi_minor", "angle_deg")
"""``uncertainty.csv``'s columns after the name."""


def aligned_replicates(main: np.ndarray, replicates: np.ndarray) -> np.ndarray:
    """``(K, n, 2)`` replicates, each moved onto ``main`` ``(n, 2)`` by Procrustes (no scaling)."""
    return np.stack([align.procrustes(r, main).apply(r) for r in replicates])


def ellipses(replicates: np.ndarray) -> np.ndarray:
    """``(n, 5)`` per place: x and y standard deviations, the 95% ellipse's semi-axes, and its direction.

    The direction is the semi-major axis's, in degrees counter-clockwise from +x, in [0, 180).
    """
    deviations = replicates - replicates.mean(axis=0)
    covariance = np.einsum("kni,knj->nij", deviations, deviations) / max(len(replicates) - 1, 1)
    values, vectors = np.linalg.eigh(covariance)  # ascending
    values = np.clip(values, 0.0, None)
    major = vectors[:, :, 1]
    angle = np.degrees(np.arctan2(major[:, 1], major[:, 0])) % 180.0
    return np.stack(
        [
            np.sqrt(covariance[:, 0, 0]),
            np.sqrt(covariance[:, 1, 1]),
            np.sqrt(CHI2_95_2D * values[:, 1]),
            np.sqrt(CHI2_95_2D * values[:, 0]),
            angle,
        ],
        axis=1,
    )
