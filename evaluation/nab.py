"""The Numenta Anomaly Benchmark's score: early detection rewarded, false alarms penalised.

Lavin and Ahmad, "Evaluating real-time anomaly detection algorithms — the Numenta Anomaly
Benchmark", ICMLA 2015, standard profile (A_TP = 1, A_FP = 0.11, A_FN = 1). Per labelled window,
only the first alarm counts, worth σ(y)/σ(−1) with σ(y) = 2/(1 + e^{5y}) − 1 and y = −(readings
from the alarm to the window's end, inclusive)/(window length): about 1 at the window's start,
falling towards 0 at its end. A window without alarm costs A_FN. An alarm outside every window
costs A_FP·σ(y) with y = (readings since the previous window's end)/(that window's length − 1)
(less right after a window), or A_FP when no window came before. The normalised score is
100·(raw − null)/(perfect − null): 0 is raising no alarm at all, 100 is every window caught at
its first reading, negative is worse than silence.

`nab_curve` evaluates many thresholds at once (numpy), for one key's readings or many.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

A_TP, A_FP, A_FN = 1.0, 0.11, 1.0


def sigma(y: float) -> float:
    """NAB's scaled sigmoid.

    >>> round(sigma(-1.0), 4), sigma(0.0)
    (0.9866, -0.0)
    """
    return -math.tanh(2.5 * y)  # = 2 / (1 + e^{5y}) − 1


@dataclass
class KeyTerms:
    """One key's readings reduced to what the NAB score needs at any threshold."""

    window_prefix_max: list[np.ndarray]  # per window: running max of scores from its start
    window_tp: list[np.ndarray]  # per window: the reward of a first alarm at each reading
    outside_scores: np.ndarray  # scores of readings outside every window
    outside_cost: np.ndarray  # what an alarm at each of those costs (negative)


def key_terms(times: Sequence[int], scores: Sequence[float], windows) -> KeyTerms:
    """`times` sorted; `scores` (−inf where unscored); windows: inclusive (start, end) times,
    sorted and disjoint. Windows holding no reading are left out."""
    times = list(times)
    s = np.asarray(scores, dtype=float)
    inside = np.zeros(len(times), dtype=bool)
    prefix, rewards, spans = [], [], []
    for start, end in windows:
        lo, hi = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        if hi <= lo:
            continue
        inside[lo:hi] = True
        length = hi - lo
        prefix.append(np.maximum.accumulate(s[lo:hi]))
        y = -(hi - np.arange(lo, hi)) / length
        rewards.append(A_TP * -np.tanh(2.5 * y) / sigma(-1.0))
        spans.append((lo, hi))
    cost = np.full(len(times), -A_FP)
    next_starts = [lo for lo, _hi in spans[1:]] + [len(times)] * bool(spans)
    for (lo, hi), stop in zip(spans, next_starts, strict=True):
        y = (np.arange(hi, stop) - (hi - 1)) / max(hi - lo - 1, 1)
        cost[hi:stop] = A_FP * -np.tanh(2.5 * y)
    return KeyTerms(prefix, rewards, s[~inside], cost[~inside])


def nab_curve(terms: Sequence[KeyTerms], thresholds: Sequence[float]) -> np.ndarray:
    """The normalised NAB score (alarm when score > threshold) for each threshold."""
    thresholds = np.asarray(thresholds, dtype=float)
    raw = np.zeros(len(thresholds))
    n_windows = 0
    for t in terms:
        for pm, reward in zip(t.window_prefix_max, t.window_tp, strict=True):
            n_windows += 1
            first = np.searchsorted(pm, thresholds, side="right")  # first index with pm > thr
            hit = first < len(pm)
            raw += np.where(hit, reward[np.minimum(first, len(pm) - 1)], -A_FN)
        order = np.argsort(t.outside_scores)
        sorted_scores = t.outside_scores[order]
        cumulative = np.concatenate([[0.0], np.cumsum(t.outside_cost[order][::-1])])
        n_above = len(sorted_scores) - np.searchsorted(sorted_scores, thresholds, side="right")
        raw += cumulative[n_above]
    if n_windows == 0:
        return np.zeros(len(thresholds))
    null, perfect = -A_FN * n_windows, A_TP * n_windows
    return 100.0 * (raw - null) / (perfect - null)
