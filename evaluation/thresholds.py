"""Detection quality as a function of the alarm threshold: F1 at a given threshold and the best one.

Scores are computed once per reading; flags at a threshold are the readings scoring above it, and
`evaluation.detection.evaluate` turns them into precision (over flagged readings) and recall (over
fault episodes, dropouts left out: they have no readings to flag). F1 is their harmonic mean. The
best threshold is chosen with hindsight on the same labels, so it says how far a better threshold
could go, not what to expect on new data.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.detection import Episode, Report, evaluate


@dataclass(frozen=True)
class Scores:
    """One detector's score per reading (NaN where it gave none: warm-up, unscored)."""

    sensors: np.ndarray
    times: np.ndarray
    scores: np.ndarray

    def flags(self, threshold: float) -> list[tuple[int, int]]:
        """(sensor_index, time) of the readings scoring above `threshold`."""
        above = np.flatnonzero(np.nan_to_num(self.scores, nan=-np.inf) > threshold)
        return list(zip(self.sensors[above].tolist(), self.times[above].tolist(), strict=True))


def f1(report: Report) -> float:
    """Harmonic mean of the report's precision and recall (0 when both are 0)."""
    p, r = report.precision, report.recall
    return 2 * p * r / (p + r) if p + r else 0.0


def candidate_thresholds(scores: np.ndarray, n: int = 200) -> np.ndarray:
    """Up to `n` thresholds at the quantiles of the finite scores (each just below a score)."""
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return np.zeros(0)
    values = np.unique(np.quantile(finite, np.linspace(0.5, 1.0, n)))
    return np.nextafter(values, -np.inf)


def best_threshold(
    scores: Scores, episodes: Sequence[Episode], candidates: np.ndarray | None = None
) -> tuple[float, Report]:
    """The threshold with the highest F1 (the lowest such one on ties) and its report."""
    if candidates is None:
        candidates = candidate_thresholds(scores.scores)
    best: tuple[float, float, Report] | None = None
    for threshold in sorted(candidates.tolist()):
        report = evaluate(scores.flags(threshold), episodes)
        if best is None or f1(report) > best[0]:
            best = (f1(report), threshold, report)
    if best is None:
        return float("nan"), evaluate([], episodes)
    return best[1], best[2]


def in_episodes(sensors: np.ndarray, times: np.ndarray, episodes: Sequence[Episode]) -> np.ndarray:
    """Boolean per reading: inside a labelled episode of its sensor (start ≤ time ≤ end)."""
    spans: dict[int, list[Episode]] = defaultdict(list)
    for ep in sorted(episodes, key=lambda e: e.start):
        spans[ep.sensor_index].append(ep)
    starts = {s: [e.start for e in eps] for s, eps in spans.items()}
    out = np.zeros(len(sensors), dtype=bool)
    for i, (sensor, when) in enumerate(zip(sensors.tolist(), times.tolist(), strict=True)):
        k = bisect.bisect_right(starts.get(sensor, []), when) - 1
        out[i] = k >= 0 and when <= spans[sensor][k].end
    return out
