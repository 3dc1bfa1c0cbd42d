"""The detector interface: score a reading against its key's past, then learn it.

Every detector, river's HalfSpaceTrees included, has one method the flows call,
`score_then_learn(values) -> (score or None, status)`, with `values` a reading's fields by name
(None for missing) and status one of `warming_up` (too little history to score yet), `scored` or
`unscored` (the feature is missing). A score is in [0, 1], higher is more anomalous; the state is
plain attributes, so a detector pickles inside Bytewax's keyed state.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

WARMING_UP = "warming_up"
SCORED = "scored"
UNSCORED = "unscored"


@runtime_checkable
class Detector(Protocol):
    """Anything that scores a reading, then learns it."""

    def score_then_learn(self, values: Mapping[str, float | None]) -> tuple[float | None, str]:
        """`(score in [0, 1] or None, status)`; status is warming_up, scored or unscored."""
        ...


class UnivariateDetector:
    """Base of the one-feature detectors: read the feature, `score_one`, then `learn_one`.

    A subclass implements `score_one(x) -> float | None` (None while warming up) and
    `learn_one(x)`, and sets `threshold`, the score above which it raises an alarm.

    >>> class Last(UnivariateDetector):
    ...     def score_one(self, x):
    ...         return None if self.last is None else float(x != self.last)
    ...     def learn_one(self, x):
    ...         self.last = x
    >>> det = Last("v"); det.last = None
    >>> [det.score_then_learn({"v": x}) for x in (1.0, 1.0, None, 2.0)]
    [(None, 'warming_up'), (0.0, 'scored'), (None, 'unscored'), (1.0, 'scored')]
    """

    threshold = 0.5

    def __init__(self, feature: str):
        self.feature = feature

    def score_one(self, x: float) -> float | None:
        raise NotImplementedError

    def learn_one(self, x: float) -> None:
        raise NotImplementedError

    def score_then_learn(self, values: Mapping[str, float | None]) -> tuple[float | None, str]:
        x = values.get(self.feature)
        if x is None or x != x:
            return None, UNSCORED
        score = self.score_one(x)
        self.learn_one(x)
        return (None, WARMING_UP) if score is None else (score, SCORED)

    def copy(self) -> UnivariateDetector:
        """An independent copy (for Bytewax snapshots)."""
        return copy.deepcopy(self)
