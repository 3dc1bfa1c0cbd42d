"""Every detector by name, built for one feature, with the score above which it raises an alarm.

`DEFAULT_DETECTOR` (the series flow's) and `AIR_QUALITY_DETECTOR` (the air-quality flow's) are
the ones that did best in `python -m evaluation.nab_bench` (see README): `ranked_shape` on NAB's
real streams and the UCR archive, `hst_ensemble` on the simulated PurpleAir sensors.
`ranked_shape` is `ranked` with the shape test (`detectors.shape`) beside its consensus; `shape`
is that test alone (docs/detectors.md).
"""

from __future__ import annotations

from typing import Any

from detectors.base import Detector
from detectors.ensemble import EnsembleDetector
from detectors.hst import HalfSpaceTreesDetector
from detectors.knn_cad import KnnConformalDetector
from detectors.learned_hst import LearnedLimitsHSTDetector
from detectors.ranked import TESTS as SHAPED_TESTS
from detectors.ranked import RankedTestsDetector
from detectors.scaled_hst import ScaledHalfSpaceTreesDetector
from detectors.stuck import StuckRunDetector
from detectors.zscore import RollingZScoreDetector

DETECTORS = (
    "hst", "scaled_hst", "zscore", "knn_cad", "ranked", "learned_hst", "hst_ensemble",
    "ranked_shape",
)
#: Built by name for the evaluations, not offered to the flows: `shape`, the shape test alone,
#: answers nothing before its first period estimate (1,024 readings).
EXPERIMENTS = ("shape",)
DEFAULT_DETECTOR = "ranked_shape"
AIR_QUALITY_DETECTOR = "hst_ensemble"
#: `learned_hst`: the first window's span widened by 30 spans each side; alarm above 0.99.
LEARNED_HST = {"margin": 30.0, "threshold": 0.99}
#: `hst_ensemble`'s stuck test alarms on a run of repeats over 4× the key's longest earlier run
#: (a new extreme whose excess is 3/4 of its value: rank 1 − 10⁻⁴·(1 − 3/4)).
STUCK_THRESHOLD = 0.999975
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
    if name == "shape":
        return RankedTestsDetector(feature, **{"tests": ("shape",), **options})
    if name == "ranked_shape":
        return RankedTestsDetector(feature, **{"tests": SHAPED_TESTS, **options})
    if name == "learned_hst":
        return LearnedLimitsHSTDetector(feature, **{**LEARNED_HST, **options})
    if name == "hst_ensemble":
        return hst_ensemble(feature, **options)
    raise ValueError(f"unknown detector {name!r}; choose one of {DETECTORS}")


#: The air-quality flow's hold-off after an alarm: one hour (30 readings at 2 minutes, as the
#: count it replaces; 6 at the history's 10 minutes, where 30 readings would hold 5 hours).
HOLDOFF_SECONDS = 3600


def hst_ensemble(
    feature: str,
    holdoff: int = 30,
    gate: float = 0.9,
    holdoff_seconds: float | None = None,
    **hst: Any,
) -> Detector:
    """HalfSpaceTrees with learnt limits, heard only for values in the outer `1 − gate` of the
    key's own range (both tails), and the stuck test (`StuckRunDetector`); 30 readings of
    hold-off after an alarm (or `holdoff_seconds` where readings carry a time: the air-quality
    flow's one hour).

    The gate keeps the trees quiet when a sensor comes back to its usual values after a fault
    (the trees' last window then held the fault, so usual cells look empty)."""
    trees = LearnedLimitsHSTDetector(feature, **{**LEARNED_HST, "gate": gate, **hst})
    stuck = StuckRunDetector(feature, threshold=STUCK_THRESHOLD, holdoff=0)
    return EnsembleDetector([trees, stuck], holdoff=holdoff, holdoff_seconds=holdoff_seconds)


def alarm_threshold(detector: Detector) -> float:
    """The score above which `detector` raises an alarm."""
    return float(getattr(detector, "threshold", HST_THRESHOLD))
