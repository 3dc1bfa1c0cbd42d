"""Rolling z-score (Bollinger bands): how many standard deviations a value lies from the mean
of the previous `window` values.

The score is the two-sided normal coverage of |z|, erf(|z|/√2), so it lies in [0, 1] and the
band mean ± k·σ is the threshold erf(k/√2) (k = 3: 0.9973). A value equal to a constant window
scores 0; any other value against a constant window scores 1.
"""

from __future__ import annotations

import math

from detectors.base import UnivariateDetector
from stats.moments import RollingMoments


class RollingZScoreDetector(UnivariateDetector):
    """Score |x − mean| / std over the previous `window` observed values (before learning x).

    >>> det = RollingZScoreDetector("v", window=5, k=3.0, min_count=3)
    >>> [det.score_then_learn({"v": x})[1] for x in (1.0, 2.0, 1.0)]
    ['warming_up', 'warming_up', 'warming_up']
    >>> score, status = det.score_then_learn({"v": 10.0})  # z = (10 − 4/3) / 0.577 = 15
    >>> status, score > det.threshold
    ('scored', True)
    """

    def __init__(self, feature: str, window: int = 60, k: float = 4.0, min_count: int = 10):
        super().__init__(feature)
        if min_count < 2 or min_count > window:
            raise ValueError("min_count must be in 2..window")
        self.window = window
        self.k = k
        self.min_count = min_count
        self.threshold = math.erf(k / math.sqrt(2.0))
        self.moments = RollingMoments(window)

    def score_one(self, x: float) -> float | None:
        m = self.moments
        if m.n < self.min_count:
            return None
        deviation = abs(x - m.mean)
        std = m.std
        if std == 0.0:
            return 0.0 if deviation == 0.0 else 1.0
        return math.erf(deviation / std / math.sqrt(2.0))

    def learn_one(self, x: float) -> None:
        self.moments.update(x)
