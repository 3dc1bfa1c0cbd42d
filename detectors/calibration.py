"""Conformal calibration: turn any raw anomaly score into its rank among the recent raw scores.

Raw scores (a HalfSpaceTrees mass, a k-NN distance) have a scale of their own that changes from
series to series, so no fixed threshold fits them. Their rank among the last `size` raw scores,
#{earlier scores < this one} / (n + 1), does: on an exchangeable (normal) stream it exceeds t with
probability at most 1 − t (Vovk, Gammerman and Shafer, "Algorithmic Learning in a Random World",
2005, the conformal p-value), so the threshold is the false-alarm rate one accepts.
"""

from __future__ import annotations

import numpy as np


class ConformalRank:
    """The rank of each raw score among the last `size` raw scores, in [0, 1).

    >>> cal = ConformalRank(size=4, min_count=2)
    >>> [cal.rank_then_learn(s) for s in (1.0, 2.0, 3.0, 0.5, 9.0)]
    [None, None, 0.6666666666666666, 0.0, 0.8]
    """

    def __init__(self, size: int = 600, min_count: int = 100):
        if not 1 <= min_count <= size:
            raise ValueError("need 1 ≤ min_count ≤ size")
        self.min_count = min_count
        self.scores = np.zeros(size)
        self.n = 0
        self._next = 0

    def rank(self, score: float) -> float | None:
        """The calibrated score, or None while fewer than `min_count` scores are held."""
        if self.n < self.min_count:
            return None
        below = int(np.count_nonzero(self.scores[: self.n] < score))
        return below / (self.n + 1)

    def learn(self, score: float) -> None:
        self.scores[self._next] = score
        self._next = (self._next + 1) % len(self.scores)
        self.n = min(self.n + 1, len(self.scores))

    def rank_then_learn(self, score: float) -> float | None:
        ranked = self.rank(score)
        self.learn(score)
        return ranked
