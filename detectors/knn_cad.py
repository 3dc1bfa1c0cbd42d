"""KNN-CAD: conformal k-nearest-neighbour anomaly detection on trajectories of the series.

Burnaev and Ishimtsev, "Conformalized density- and distance-based anomaly detection in
time-series data", arXiv:1608.04585 (2016); the method ranked first among open detectors on the
Numenta Anomaly Benchmark when published. Each value closes a trajectory, the last `dim` values.
Its non-conformity is the mean Euclidean distance to its `k` nearest neighbours among the last
`reference` trajectories that do not overlap it (so it is never compared with itself shifted by
one step). The score is the conformal rank of that non-conformity among the last `calibration`
ones, #{earlier non-conformities < this one} / (calibration + 1): a value as unusual as the most
unusual in the calibration set scores close to 1, and on an exchangeable (normal) stream a score
above t happens with probability at most 1 − t, which fixes the false-alarm rate by the
threshold. A trajectory carries context (the shape leading to the value), so a value ordinary in
itself but out of place in its trajectory is caught too.

Per value the cost is O(reference·dim) in numpy; memory is fixed by reference, dim and
calibration.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from detectors.base import UnivariateDetector
from detectors.calibration import ConformalRank


class KnnConformalDetector(UnivariateDetector):
    """Conformal KNN score of each value's trajectory against the recent past.

    >>> det = KnnConformalDetector("v", dim=3, k=2, reference=50, calibration=50,
    ...                            min_calibration=20)
    >>> rng = np.random.default_rng(0)
    >>> _ = [det.score_then_learn({"v": float(x)}) for x in rng.normal(10, 1, 100)]
    >>> score, status = det.score_then_learn({"v": 30.0})
    >>> status, score > 0.95
    ('scored', True)
    """

    threshold = 0.99

    def __init__(
        self,
        feature: str,
        dim: int = 8,
        k: int = 5,
        reference: int = 300,
        calibration: int = 600,
        min_calibration: int = 100,
    ):
        super().__init__(feature)
        if dim < 1 or k < 1 or reference < k or not 1 <= min_calibration <= calibration:
            raise ValueError("need dim ≥ 1, reference ≥ k ≥ 1, 1 ≤ min_calibration ≤ calibration")
        self.dim = dim
        self.k = k
        self.recent: deque[float] = deque(maxlen=dim)
        self.waiting: deque[np.ndarray] = deque()  # trajectories still overlapping the newest
        self.reference = np.zeros((reference, dim))
        self.n_reference = 0
        self._next_reference = 0
        self.calibration = ConformalRank(calibration, min_calibration)
        self._trajectory: np.ndarray | None = None
        self._ncm: float | None = None

    def nonconformity(self, trajectory: np.ndarray) -> float:
        """Mean distance from the trajectory to its k nearest reference trajectories."""
        diff = self.reference[: self.n_reference] - trajectory
        distances = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        nearest = np.partition(distances, self.k - 1)[: self.k]
        return float(nearest.mean())

    def score_one(self, x: float) -> float | None:
        self._trajectory = self._ncm = None
        if len(self.recent) < self.dim - 1:
            return None
        history = list(self.recent)[len(self.recent) - (self.dim - 1) :]
        trajectory = np.array([*history, x], dtype=float)
        self._trajectory = trajectory
        if self.n_reference < self.k:
            return None
        self._ncm = self.nonconformity(trajectory)
        return self.calibration.rank(self._ncm)

    def learn_one(self, x: float) -> None:
        self.recent.append(float(x))
        if self._ncm is not None:
            self.calibration.learn(self._ncm)
        if self._trajectory is not None:
            self.waiting.append(self._trajectory)
            if len(self.waiting) >= self.dim:  # the oldest no longer overlaps the next one
                self.reference[self._next_reference] = self.waiting.popleft()
                self._next_reference = (self._next_reference + 1) % len(self.reference)
                self.n_reference = min(self.n_reference + 1, len(self.reference))
        self._trajectory = self._ncm = None
