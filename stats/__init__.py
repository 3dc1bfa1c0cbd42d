"""Per-key streaming statistics: O(1) work and bounded memory per value, NaN-aware, mergeable.

Each statistic is one small class with `update(x)`; a missing value (None or NaN) is counted in
`n_missing` and never folded in. Cumulative statistics have `merge(other)`, which returns the
state of the concatenated stream, so per-worker partials can be combined. Rolling ones cover the
last `window` observed values.
"""

from stats.base import is_missing
from stats.ewm import EWMean, RollingEWMean
from stats.extremes import Extremes, RollingExtremes
from stats.moments import Moments, RollingMoments
from stats.quantiles import QuantileSketch, RollingQuantile

__all__ = [
    "EWMean",
    "Extremes",
    "Moments",
    "QuantileSketch",
    "RollingEWMean",
    "RollingExtremes",
    "RollingMoments",
    "RollingQuantile",
    "is_missing",
]
