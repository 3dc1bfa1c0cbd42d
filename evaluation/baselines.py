"""The one-line baseline every detector must beat: how large is this change, among the key's own?

Wu and Keogh ("Current time series anomaly detection benchmarks are flawed and are creating the
illusion of progress", IEEE TKDE 2021) show that many labelled anomalies of the public benchmarks
are found by a one-liner. Ours: the rank of |x(t) − x(t−1)| among every earlier change of the key
(exact, all history: an evaluation yardstick, not a bounded-memory detector). With a hold-off
(`evaluation.nab_bench`), it stays silent for 100 readings after each alarm.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from detectors.base import UnivariateDetector


class ChangeRankBaseline(UnivariateDetector):
    """Rank of |x − previous| among all earlier changes (ties count half), in [0, 1].

    >>> det = ChangeRankBaseline("v")
    >>> [det.score_then_learn({"v": x})[0] for x in (1.0, 2.0, 2.5, 2.0, 9.0)]
    [None, None, 0.0, 0.25, 1.0]
    """

    threshold = 0.999

    def __init__(self, feature: str):
        super().__init__(feature)
        self.previous: float | None = None
        self.changes: list[float] = []

    def score_one(self, x: float) -> float | None:
        if self.previous is None or not self.changes:
            return None
        change = abs(x - self.previous)
        lo = bisect_left(self.changes, change)
        hi = bisect_right(self.changes, change, lo)
        return 0.5 * (lo + hi) / len(self.changes)

    def learn_one(self, x: float) -> None:
        if self.previous is not None:
            insort(self.changes, abs(x - self.previous))
        self.previous = x


class AbsoluteChangeBaseline(UnivariateDetector):
    """|x − previous| itself (the UCR archive's one-liner: the row of the largest change).

    >>> det = AbsoluteChangeBaseline("v")
    >>> [det.score_then_learn({"v": x})[0] for x in (1.0, 2.0, 2.5)]
    [None, 1.0, 0.5]
    """

    threshold = float("inf")  # a location finder, not an alarm rule

    def __init__(self, feature: str):
        super().__init__(feature)
        self.previous: float | None = None

    def score_one(self, x: float) -> float | None:
        return None if self.previous is None else abs(x - self.previous)

    def learn_one(self, x: float) -> None:
        self.previous = x
