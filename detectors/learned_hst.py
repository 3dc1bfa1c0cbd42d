"""HalfSpaceTrees whose limits each key learns from its own first readings.

river's HalfSpaceTrees needs the range of each feature in advance, and its documentation advises
scaling the features first. The example's fixed 0–1200 µg/m³ fits PM, but no fixed range fits a
CPU metric, a temperature and a taxi count alike, and a range read from a whole file is
look-ahead. Here each key learns its range from its own past: the trees' first window of
readings (`window_size`, during which river's trees score nothing anyway) gives a minimum and a
maximum, and the limits are that span widened by `margin` spans on each side, so that the
readings of the first window fill the middle 1/(1 + 2·margin) of the trees' range and values far
outside it reach cells the trees have never filled. The limits are then fixed, so the trees'
cells keep their meaning; a value beyond them falls in the outermost cell, as in river. Each
value is scaled by them into [0, 1] (as river's documentation does with a scaler before the
trees), so every key shares one forest on limits 0–1 (`build_forest` is cached): a key's state
is its window and score table, not trees of its own. The readings of that first window are learnt
once the limits are known (they were reported as warming up), and from then on the scores are
those of river's HalfSpaceTrees (limits 0–1) fed the scaled values, bit for bit.

With `gate`, the trees are heard only for a value in the outer (1 − gate)/2 of the key's own
recent values on either side; other scores are multiplied by the threshold, so they stay below
it. The gate ranks a value among the key's last 1,000–2,000 readings in a fixed-size histogram
(`stats.histogram.HistogramRank` on `VALUE_GRID`, in units of the first window's span around
its median: `gate_place`), which starts with the first window once the limits are learnt.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from detectors.base import UNSCORED, WARMING_UP
from detectors.hst import HalfSpaceTreesDetector
from stats.histogram import VALUE_GRID, HistogramRank

#: The gate ranks a value among the key's last GATE_HORIZON/2 to GATE_HORIZON values.
GATE_HORIZON = 2_000


def gate_place(values: list[float]) -> tuple[float, float]:
    """The gate's centre and unit: the median of `values` (the lower middle one) and their span
    (a flat span counts as 1 % of its level, or 1 around 0).

    >>> gate_place([2.0, 4.0, 3.0, 10.0]), gate_place([5.0, 5.0])
    ((3.0, 8.0), (5.0, 0.05))
    """
    ordered = sorted(values)
    hi = ordered[-1]
    return ordered[(len(ordered) - 1) // 2], hi - ordered[0] or (0.01 * abs(hi) or 1.0)


def learned_limits(values: list[float], margin: float) -> tuple[float, float]:
    """The span of `values`, widened by `margin` spans on each side (a flat span counts as 1 %
    of its level, or 1 around 0).

    >>> learned_limits([2.0, 4.0, 3.0], margin=1.0)
    (0.0, 6.0)
    >>> learned_limits([5.0, 5.0], margin=2.0)
    (4.9, 5.1)
    """
    lo, hi = min(values), max(values)
    span = hi - lo or (0.01 * abs(hi) or 1.0)
    return lo - margin * span, hi + margin * span


class LearnedLimitsHSTDetector:
    """HalfSpaceTrees on one feature, limits learnt from the key's first `window_size` readings.

    >>> det = LearnedLimitsHSTDetector("v", window_size=10)
    >>> statuses = [det.score_then_learn({"v": 10.0 + i % 3})[1] for i in range(12)]
    >>> statuses[9], statuses[10]
    ('warming_up', 'scored')
    >>> det.lo, det.lo + det.span  # the limits learnt from the first window
    (4.0, 18.0)
    >>> det.score_then_learn({"v": 11.0})[0] < det.score_then_learn({"v": 17.5})[0]
    True
    """

    threshold = 0.9

    def __init__(
        self,
        feature: str,
        margin: float = 3.0,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 72,
        seed: int | None = 11,
        threshold: float | None = None,
        gate: float | None = None,
    ):
        if margin < 0 or window_size < 1:
            raise ValueError("need margin ≥ 0 and window_size ≥ 1")
        if threshold is not None:
            self.threshold = threshold
        self.feature = feature
        self.margin = margin
        self.options = {"n_trees": n_trees, "height": height, "window_size": window_size}
        self.seed = seed
        self.gate = gate
        self.tail: HistogramRank | None = None  # the gate's, once the limits are learnt
        self.lo = 0.0
        self.span = 1.0
        self.first: list[float] = []
        self.trees: HalfSpaceTreesDetector | None = None
        HalfSpaceTreesDetector(
            (feature,), {feature: (0.0, 1.0)}, seed=seed, **self.options
        )  # checks

    def score_then_learn(self, values: Mapping[str, float | None]) -> tuple[float | None, str]:
        x = values.get(self.feature)
        if x is None or x != x:
            return None, UNSCORED
        if self.trees is not None:
            score, status = self.trees.score_then_learn({self.feature: (x - self.lo) / self.span})
            tail = self.tail
            if tail is not None:
                level = 2.0 * max(tail.ranks(x)) - 1.0
                tail.update(x)
                if score is not None and level < self.gate:
                    score *= self.threshold
            return score, status
        self.first.append(float(x))
        if len(self.first) == self.options["window_size"]:
            lo, hi = learned_limits(self.first, self.margin)
            self.lo, self.span = lo, hi - lo
            limits = {self.feature: (0.0, 1.0)}
            self.trees = HalfSpaceTreesDetector(
                (self.feature,), limits, seed=self.seed, **self.options
            )
            for value in self.first:
                self.trees.score_then_learn({self.feature: (value - lo) / self.span})
            if self.gate is not None:
                self.tail = HistogramRank(VALUE_GRID, GATE_HORIZON, *gate_place(self.first))
                for value in self.first:
                    self.tail.update(value)
            self.first = []
        return None, WARMING_UP

    def copy(self) -> LearnedLimitsHSTDetector:
        """An independent copy (for Bytewax snapshots)."""
        clone = object.__new__(LearnedLimitsHSTDetector)
        clone.__dict__.update(self.__dict__)
        clone.first = list(self.first)
        clone.tail = copy.deepcopy(self.tail)
        clone.trees = None if self.trees is None else self.trees.copy()
        return clone
