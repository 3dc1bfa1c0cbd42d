"""The Numenta Anomaly Benchmark's score: early detection rewarded, false alarms penalised.

Lavin and Ahmad, "Evaluating real-time anomaly detection algorithms — the Numenta Anomaly
Benchmark", ICMLA 2015. Per labelled window, only the first alarm counts, worth A_TP·σ(y)/σ(−1)
with σ(y) = 2/(1 + e^{5y}) − 1 and y = −(readings from the alarm to the window's end,
inclusive)/(window length): about A_TP at the window's start, falling towards 0 at its end. A
window without alarm costs A_FN. An alarm outside every window costs A_FP·σ(y) with
y = (readings since the previous window's end)/(that window's length − 1) (less right after a
window), or A_FP when no window came before. The first min(⌊0.15·N⌋, 750) readings of a file of
N are probation: never scored, and a window lying wholly inside it is not counted. The normalised
score is 100·(raw − null)/(perfect − null): 0 is raising no alarm at all, 100 is every window
caught at its first reading, negative is worse than silence. NAB's three profiles weigh
(A_TP, A_FP, A_FN) as `PROFILES` says; one threshold per detector and profile serves the corpus.

`nab_curve` evaluates many thresholds at once (numpy), for one key's readings or many. An alarm
is a score above the threshold (NAB writes "≥"; with thresholds taken between scores the two
agree).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Profile:
    """NAB's weights of a true positive, a false positive and a missed window."""

    name: str
    tp: float
    fp: float
    fn: float


STANDARD = Profile("standard", 1.0, 0.11, 1.0)
PROFILES = (
    STANDARD,
    Profile("reward_low_FP", 1.0, 0.22, 1.0),
    Profile("reward_low_FN", 1.0, 0.11, 2.0),
)
A_TP, A_FP, A_FN = STANDARD.tp, STANDARD.fp, STANDARD.fn


def sigma(y: float) -> float:
    """NAB's scaled sigmoid.

    >>> round(sigma(-1.0), 4), sigma(0.0)
    (0.9866, -0.0)
    """
    return -math.tanh(2.5 * y)  # = 2 / (1 + e^{5y}) − 1


def probation(n: int) -> int:
    """NAB's probationary length for a file of `n` readings.

    >>> probation(1000), probation(10_000)
    (150, 750)
    """
    return min(math.floor(0.15 * n), 750)


@dataclass
class KeyTerms:
    """One key's readings reduced to what the NAB score needs at any threshold and profile."""

    window_prefix_max: list[np.ndarray]  # per window: running max of scores from its start
    window_tp: list[np.ndarray]  # per window: σ(y)/σ(−1) of a first alarm at each reading
    outside_scores: np.ndarray  # scores of readings outside every window
    outside_cost: np.ndarray  # what an alarm at each of those costs, per unit of A_FP (≤ 0)


def key_terms(times: Sequence[int], scores: Sequence[float], windows, skip: int = 0) -> KeyTerms:
    """`times` sorted; `scores` (−inf where unscored); windows: inclusive (start, end) times,
    sorted and disjoint; the first `skip` readings are probation (`probation(len(times))` for
    NAB's rule). Windows holding no reading, or only probation readings, are left out."""
    times = list(times)
    s = np.asarray(scores, dtype=float).copy()
    s[:skip] = -np.inf
    inside = np.zeros(len(times), dtype=bool)
    prefix, rewards, spans = [], [], []
    for start, end in windows:
        lo, hi = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        if hi <= lo:
            continue
        inside[lo:hi] = True
        spans.append((lo, hi))
        if hi <= skip:
            continue
        y = -(hi - np.arange(lo, hi)) / (hi - lo)
        first = max(lo, skip) - lo
        prefix.append(np.maximum.accumulate(s[lo:hi][first:]))
        rewards.append((-np.tanh(2.5 * y) / sigma(-1.0))[first:])
    cost = np.full(len(times), -1.0)
    next_starts = [lo for lo, _hi in spans[1:]] + [len(times)] * bool(spans)
    for (lo, hi), stop in zip(spans, next_starts, strict=True):
        y = (np.arange(hi, stop) - (hi - 1)) / max(hi - lo - 1, 1)
        cost[hi:stop] = -np.tanh(2.5 * y)
    keep = ~inside
    keep[:skip] = False
    return KeyTerms(prefix, rewards, s[keep], cost[keep])


def raw_curve(
    terms: Sequence[KeyTerms], thresholds: Sequence[float], profile: Profile = STANDARD
) -> tuple[np.ndarray, int]:
    """The raw NAB score (alarm when score > threshold) for each threshold, and the number of
    counted windows."""
    thresholds = np.asarray(thresholds, dtype=float)
    raw = np.zeros(len(thresholds))
    n_windows = 0
    for t in terms:
        for pm, reward in zip(t.window_prefix_max, t.window_tp, strict=True):
            n_windows += 1
            first = np.searchsorted(pm, thresholds, side="right")  # first index with pm > thr
            hit = first < len(pm)
            raw += np.where(hit, profile.tp * reward[np.minimum(first, len(pm) - 1)], -profile.fn)
        order = np.argsort(t.outside_scores)
        sorted_scores = t.outside_scores[order]
        cumulative = np.concatenate([[0.0], np.cumsum(t.outside_cost[order][::-1])])
        n_above = len(sorted_scores) - np.searchsorted(sorted_scores, thresholds, side="right")
        raw += profile.fp * cumulative[n_above]
    return raw, n_windows


def nab_curve(
    terms: Sequence[KeyTerms], thresholds: Sequence[float], profile: Profile = STANDARD
) -> np.ndarray:
    """The normalised NAB score (alarm when score > threshold) for each threshold."""
    raw, n_windows = raw_curve(terms, thresholds, profile)
    if n_windows == 0:
        return np.zeros(len(raw))
    null, perfect = -profile.fn * n_windows, profile.tp * n_windows
    return 100.0 * (raw - null) / (perfect - null)


def candidates(scores: Sequence[np.ndarray], limit: int = 5000) -> np.ndarray:
    """Thresholds worth trying: every distinct finite score (or `limit` quantiles of them), and
    one below them all."""
    finite = np.concatenate([np.asarray(s)[np.isfinite(s)] for s in scores] or [np.zeros(0)])
    if finite.size == 0:
        return np.zeros(1)
    values = np.unique(finite)
    if len(values) > limit:
        values = np.unique(np.quantile(finite, np.linspace(0, 1, limit + 1)))
    return np.concatenate([[np.nextafter(values[0], -np.inf)], values])


def best(
    terms: Sequence[KeyTerms], thresholds: np.ndarray, profile: Profile = STANDARD
) -> tuple[float, float]:
    """(best normalised score, its threshold): the lowest threshold on ties."""
    curve = nab_curve(terms, thresholds, profile)
    i = int(np.argmax(curve))
    return float(curve[i]), float(thresholds[i])
