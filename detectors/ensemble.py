"""An ensemble: any member's alarm is the ensemble's, on one common score scale, with a hold-off.

Members keep their own scales and thresholds; each score is mapped piecewise linearly so that
the member's threshold lands on the ensemble's (0.5): [0, t] → [0, 0.5] and [t, 1] → [0.5, 1].
The ensemble's score is the largest mapped score, so it alarms exactly when some member would
on its own, and scores keep their order within each member. Every member scores and learns
every reading (score before learn). After an alarm the next `holdoff` readings (or
`holdoff_seconds`) are held below the threshold (multiplied by it) unless one is `rearm` times
rarer than the alarm that started the hold-off (`detectors.holdoff.HoldOff`, as in
`RankedTestsDetector`): one alarm per episode, re-armed by a clearly larger anomaly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from detectors.base import SCORED, UNSCORED, WARMING_UP, Detector
from detectors.holdoff import REARM, TIME, HoldOff


def on_common_scale(score: float, threshold: float) -> float:
    """`score` mapped so that `threshold` becomes 0.5, keeping its order.

    >>> on_common_scale(0.9, 0.9), on_common_scale(0.45, 0.9), round(on_common_scale(0.95, 0.9), 6)
    (0.5, 0.25, 0.75)
    """
    if score <= threshold:
        return 0.5 * score / threshold
    return 0.5 + 0.5 * (score - threshold) / (1.0 - threshold)


class EnsembleDetector:
    """The largest of the members' scores on a common scale; warming up while all are.

    >>> from detectors.zscore import RollingZScoreDetector
    >>> ens = EnsembleDetector([RollingZScoreDetector("v", window=5, min_count=3)], holdoff=2)
    >>> [ens.score_then_learn({"v": x})[1] for x in (1.0, 2.0, 1.0)]
    ['warming_up', 'warming_up', 'warming_up']
    >>> [round(ens.score_then_learn({"v": x})[0], 3) for x in (50.0, 60.0, 1.0)]  # then held
    [1.0, 0.236, 0.135]
    """

    threshold = 0.5

    def __init__(
        self,
        members: Sequence[Detector],
        holdoff: int = 100,
        holdoff_seconds: float | None = None,
        rearm: float = REARM,
    ):
        if not members or holdoff < 0:
            raise ValueError("need at least one member and holdoff ≥ 0")
        self.members = list(members)
        self.thresholds = [float(m.threshold) for m in self.members]
        self.holdoff = holdoff
        self.hold = HoldOff(self.threshold, holdoff, holdoff_seconds, rearm)

    def score_then_learn(self, values: Mapping[str, float | None]) -> tuple[float | None, str]:
        best: float | None = None
        statuses = set()
        for member, threshold in zip(self.members, self.thresholds, strict=True):
            score, status = member.score_then_learn(values)
            statuses.add(status)
            if score is not None:
                mapped = on_common_scale(score, threshold)
                best = mapped if best is None or mapped > best else best
        if best is None:
            return None, (UNSCORED if statuses == {UNSCORED} else WARMING_UP)
        return self.hold.apply(best, values.get(TIME)), SCORED

    def copy(self) -> EnsembleDetector:
        """An independent copy (for Bytewax snapshots)."""
        clone = object.__new__(EnsembleDetector)
        clone.__dict__.update(self.__dict__)
        clone.members = [m.copy() for m in self.members]
        clone.hold = self.hold.copy()
        return clone
