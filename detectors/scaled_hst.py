"""HalfSpaceTrees on adaptively scaled inputs, so that no limits have to be guessed.

The example's fixed limits (0–1200 µg/m³) squeeze an ordinary PM series into the bottom cells of
the trees, and fit most other series not at all. Here each value becomes two features in [0, 1]
before it reaches the trees (`HalfSpaceTreesDetector` with limits 0–1): its level and its change
from the previous value, each standardised by a rolling window of the previous values (or
changes) and mapped linearly, z ↦ 0.5 + z / (2·span), clipped to [0, 1]: ± `span` standard
deviations fill the trees' range, so ordinary values fall in the middle cells and extreme ones at
the edges. (The normal CDF Φ(z), tried first, spreads ordinary values uniformly over [0, 1],
which leaves a density-based detector nothing to find.) The scale follows the series;
HalfSpaceTrees (Tan, Ting and Liu, "Fast anomaly detection for streaming data", IJCAI 2011) then
finds the rare cells. Its raw
score (1 − normalised mass) sits high for every reading of a smooth series, so it is calibrated:
the score reported is its conformal rank among the last `calibration` raw scores
(`detectors.calibration`), and the threshold is a false-alarm rate.
"""

from __future__ import annotations

from detectors.base import WARMING_UP, UnivariateDetector
from detectors.calibration import ConformalRank
from detectors.hst import HalfSpaceTreesDetector
from stats.moments import RollingMoments

_FEATURES = ("level", "change")


def standardised(value: float, moments: RollingMoments, span: float) -> float:
    """0.5 + z / (2·span), clipped to [0, 1], z = (value − mean) / std of the window; 0.5, 0 or 1
    against a constant window.

    >>> m = RollingMoments(3)
    >>> for x in (1.0, 2.0, 3.0):
    ...     m.update(x)
    >>> standardised(3.0, m, span=4.0), standardised(100.0, m, span=4.0)
    (0.625, 1.0)
    """
    deviation = value - moments.mean
    std = moments.std
    if not std:
        return 0.5 if deviation == 0.0 else float(deviation > 0.0)
    return min(1.0, max(0.0, 0.5 + deviation / std / (2.0 * span)))


class ScaledHalfSpaceTreesDetector(UnivariateDetector):
    """HalfSpaceTrees over (scaled level, scaled change), calibrated; warming up until the
    scaler has `min_count` values, the trees their first window and the calibration
    `min_calibration` raw scores.

    >>> det = ScaledHalfSpaceTreesDetector("v", window_size=20, min_count=5, min_calibration=10)
    >>> statuses = [det.score_then_learn({"v": 10.0 + i % 3})[1] for i in range(40)]
    >>> statuses.index("scored")
    36
    """

    threshold = 0.99

    def __init__(
        self,
        feature: str,
        window: int = 60,
        min_count: int = 10,
        span: float = 4.0,
        n_trees: int = 25,
        height: int = 8,
        window_size: int = 72,
        seed: int = 11,
        calibration: int = 600,
        min_calibration: int = 100,
    ):
        super().__init__(feature)
        self.window = window
        self.min_count = min_count
        self.span = span
        self.levels = RollingMoments(window)
        self.changes = RollingMoments(window)
        self.previous: float | None = None
        self.trees = HalfSpaceTreesDetector(
            _FEATURES,
            {name: (0.0, 1.0) for name in _FEATURES},
            n_trees=n_trees,
            height=height,
            window_size=window_size,
            seed=seed,
        )
        self.calibration = ConformalRank(calibration, min_calibration)

    def features_of(self, x: float) -> dict[str, float] | None:
        """The scaled (level, change) of x, or None while the scaler is warming up."""
        if self.changes.n < self.min_count:
            return None
        return {
            "level": standardised(x, self.levels, self.span),
            "change": standardised(x - self.previous, self.changes, self.span),
        }

    def score_one(self, x: float) -> float | None:
        features = self.features_of(x)
        if features is None:
            return None
        raw, status = self.trees.score_then_learn(features)  # scored, then learnt
        return None if status == WARMING_UP else self.calibration.rank_then_learn(raw)

    def learn_one(self, x: float) -> None:
        # the trees learnt the features in score_one; here the scalers learn the raw value
        if self.previous is not None:
            self.changes.update(x - self.previous)
        self.levels.update(x)
        self.previous = x
