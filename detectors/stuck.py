"""A frozen sensor: how many readings in a row repeat the previous value, against past runs.

`ranked`'s `stuck` test on its own, with its run lengths counted in a fixed-size histogram
(`stats.histogram.HistogramRank` on `RUN_GRID`: each run up to 7 readings its own bin, then 4
bins an octave) instead of a sorted list: the same statistic, rank and hold-off, in 2·81 small
counts of state, so that the column engine keeps every sensor's in one array
(`columns.ensemble.EnsembleColumns`). It is `hst_ensemble`'s second member.

The score of a reading is the rank of the run it extends (0 when it differs from the previous
one) among the lengths of the key's past runs (each learnt when it ends); a run longer than every
past one ranks by how far it goes, relative to their spread (`stats.histogram.beyond`), so a
threshold of 1 − 10⁻⁴·(1 − 3/4) alarms on a run over 4× the key's longest recent run. Nothing is
scored before `min_count` changes are learnt. After an alarm, `holdoff` readings are held below
the threshold (`detectors.holdoff.HoldOff`, re-armed by a `rearm` times rarer one).
"""

from __future__ import annotations

from detectors.base import UnivariateDetector
from detectors.holdoff import REARM, HoldOff
from stats.histogram import RUN_GRID, HistogramRank


class StuckRunDetector(UnivariateDetector):
    """Rank of the current run of repeats among the key's past runs.

    >>> det = StuckRunDetector("v", min_count=5)
    >>> stream = [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0, 7.0] + [8.0] * 8
    >>> scores = [det.score_then_learn({"v": x})[0] for x in stream]
    >>> scores[:6]
    [None, None, None, None, None, None]
    >>> [round(s, 6) for s in scores[6:9]]  # a new value: a run of 0, the lowest rank
    [0.3333, 0.249975, 0.29997]
    >>> scores[-1] > det.threshold > scores[-5]  # 7 repeats: over 4× the longest run (1); 3: not
    True
    """

    threshold = 0.999975

    def __init__(
        self,
        feature: str,
        threshold: float | None = None,
        holdoff: int = 0,
        rearm: float = REARM,
        horizon: int = 20_000,
        min_count: int = 30,
    ):
        super().__init__(feature)
        if threshold is not None:
            self.threshold = threshold
        if not 0.0 < self.threshold < 1.0 or holdoff < 0 or min_count < 1:
            raise ValueError("need 0 < threshold < 1, holdoff ≥ 0 and min_count ≥ 1")
        if horizon - horizon // 2 < min_count:
            raise ValueError("need horizon ≥ 2·min_count (the warm-up count must not drop)")
        self.holdoff = holdoff
        self.min_count = min_count
        self.hold = HoldOff(self.threshold, holdoff, rearm=rearm)
        self.runs = HistogramRank(RUN_GRID, horizon)
        self.previous: float | None = None
        self.run = 0.0  # readings in a row equal to the one before
        self.changes = 0  # readings learnt after a first one, up to min_count (the warm-up)

    def extended(self, x: float) -> float:
        """The run x makes: one longer if it repeats the previous value, else 0."""
        return self.run + 1.0 if x == self.previous else 0.0

    def score_one(self, x: float) -> float | None:
        if self.previous is None or self.changes < self.min_count:
            return None
        score = 1.0 - (1.0 - self.runs.rank(self.extended(x)))  # as `ranked`: 1 − p
        return self.hold.apply(score)

    def learn_one(self, x: float) -> None:
        if self.previous is not None:
            run = self.extended(x)
            if run == 0.0:  # a run ended: its length joins the key's past runs
                self.runs.update(self.run)
            self.run = run
            self.changes = min(self.changes + 1, self.min_count)
        self.previous = x
