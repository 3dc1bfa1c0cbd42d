"""Every detector by name, built for one feature, with the score above which it raises an alarm.

`DEFAULT_DETECTOR` is the one that did best in `python -m evaluation.detectors` (see README).
"""

from __future__ import annotations

from typing import Any

from detectors.base import Detector
from detectors.hst import HalfSpaceTreesDetector
from detectors.knn_cad import KnnConformalDetector
from detectors.ranked import RankedTestsDetector
from detectors.scaled_hst import ScaledHalfSpaceTreesDetector
from detectors.zscore import RollingZScoreDetector

DETECTORS = ("hst", "scaled_hst", "zscore", "knn_cad", "ranked")
DEFAULT_DETECTOR = "zscore"
#: The air-quality flow's alarm threshold for the example's HalfSpaceTrees.
HST_THRESHOLD = 0.7


def make_detector(name: str, feature: str, **options: Any) -> Detector:
    """A fresh detector of kind `name` for `feature`; `options` go to its constructor.

    `hst` is the example's configuration (limits 0–1200, 10 trees, height 8, window 72, seed 11).

    >>> det = make_detector("zscore", "value", window=20)
    >>> det.score_then_learn({"value": 1.0})
    (None, 'warming_up')
    """
    if name == "hst":
        config = dict(limits={feature: (0.0, 1200.0)}, n_trees=10, height=8, window_size=72)
        config.update(seed=11, **options)
        return HalfSpaceTreesDetector((feature,), **config)
    if name == "scaled_hst":
        return ScaledHalfSpaceTreesDetector(feature, **options)
    if name == "zscore":
        return RollingZScoreDetector(feature, **options)
    if name == "knn_cad":
        return KnnConformalDetector(feature, **options)
    if name == "ranked":
        return RankedTestsDetector(feature, **options)
    raise ValueError(f"unknown detector {name!r}; choose one of {DETECTORS}")


def alarm_threshold(detector: Detector) -> float:
    """The score above which `detector` raises an alarm."""
    return float(getattr(detector, "threshold", HST_THRESHOLD))
