"""Simple tests, each ranked among the key's own past, with a hold-off: one threshold for all.

Four statistics of each reading, each a cheap test of its own kind of fault:

- `change`, |x − previous|: a spike or a jump;
- `level`, x against every past value, both tails: a value never seen so high (or so low);
- `shift`, |mean of the last `short` values − mean of the `long` before them| / their std: a
  level shift or drift too gradual for `change`;
- `stuck`, how many readings in a row repeated the previous value exactly: a frozen sensor.

No statistic has a scale that holds across series, so each is replaced by its rank among the
same statistic's past values on this key (`stats.tail.TailRank`: exact in the top tail, bounded
memory, new extremes ranked by how far they go): 0.9997 means "more unusual than 99.97 % of what
this key has done". The score is the largest of the four ranks (the level's two-sided, as
1 − 2·its smaller tail), in [0, 1), and it keeps its order at the top. This is the consensus-of-
simple-tests idea of Etsy's Skyline with calibration by each key's own history in place of fixed
limits: no reading of a file's minimum, maximum or length in advance, nothing tuned per series.

An anomaly is seldom one reading: after a reading scores above `threshold`, the next `holdoff`
readings have their scores multiplied by `threshold`, so they stay below it and keep their order
(the first alarm of an episode counts; in NAB's scoring every further one costs).

Per reading: a handful of arithmetic and four O(log size) rank look-ups; memory is bounded by
`size`, `long` and `short`; the state is plain attributes and lists, so it pickles.
"""

from __future__ import annotations

from collections import deque

from detectors.base import UnivariateDetector
from stats.moments import RollingMoments
from stats.tail import TailRank

TESTS = ("change", "level", "shift", "stuck")


class RankedTestsDetector(UnivariateDetector):
    """The largest rank of four simple tests among the key's own past, with a hold-off.

    >>> import random
    >>> rng = random.Random(0)
    >>> det = RankedTestsDetector("v")
    >>> scores = [det.score_then_learn({"v": 10.0 + rng.gauss(0, 1)})[0] for _ in range(500)]
    >>> scores[0] is None, all(0.0 <= s < 1.0 for s in scores[40:])
    (True, True)
    >>> spike, status = det.score_then_learn({"v": 30.0})
    >>> status, det.threshold < spike < 1.0
    ('scored', True)
    >>> det.score_then_learn({"v": 31.0})[0] < det.threshold      # held off
    True
    """

    threshold = 0.9997

    def __init__(
        self,
        feature: str,
        threshold: float | None = None,
        holdoff: int = 100,
        short: int = 8,
        long: int = 200,
        size: int = 256,
        horizon: int = 20_000,
        min_count: int = 30,
        tests: tuple[str, ...] = TESTS,
    ):
        super().__init__(feature)
        if threshold is not None:
            self.threshold = threshold
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        if holdoff < 0 or short < 1 or long < 2 or min_count < 1:
            raise ValueError("need holdoff ≥ 0, short ≥ 1, long ≥ 2, min_count ≥ 1")
        unknown = set(tests) - set(TESTS)
        if unknown or not tests:
            raise ValueError(f"tests must be some of {TESTS}, got {tests}")
        self.tests = tuple(tests)
        self.holdoff = holdoff
        self.short = short
        self.long = long
        self.min_count = min_count
        self.ranks = {
            name: TailRank(size, horizon) for name in ("change", "high", "low", "shift", "stuck")
        }
        self.previous: float | None = None
        self.run = 0.0  # readings in a row equal to the one before
        self.recent: deque[float] = deque()  # the last `short` − 1 values
        self.older = RollingMoments(long)  # the `long` values before them
        self.quiet = 0  # readings still held off
        self._stats: tuple[float, ...] | None = None

    def statistics(self, x: float) -> tuple[float, float, float | None] | None:
        """(change, run of repeats, shift or None) of x against the past, or None at first."""
        previous = self.previous
        if previous is None:
            return None
        run = self.run + 1.0 if x == previous else 0.0
        shift = None
        older = self.older
        if older.n >= self.long // 2:
            recent = self.recent
            mean = older.mean
            count = len(recent) + 1
            shift = abs((sum(recent) + x) / count - mean) / (older.std + 1e-12 * (abs(mean) + 1.0))
        return abs(x - previous), run, shift

    def score_one(self, x: float) -> float | None:
        stats = self._stats = self.statistics(x)
        if stats is None:
            return None
        change, run, shift = stats
        r = self.ranks
        if r["change"].n < self.min_count:
            return None
        tests = self.tests
        score = 0.0
        if "change" in tests:
            score = r["change"].rank(change)
        if "level" in tests:
            score = max(score, 2.0 * max(r["high"].rank(x), r["low"].rank(-x)) - 1.0)
        if "stuck" in tests:
            score = max(score, r["stuck"].rank(run))
        if "shift" in tests and shift is not None and r["shift"].n >= self.min_count:
            score = max(score, r["shift"].rank(shift))
        if self.quiet:
            self.quiet -= 1
            return score * self.threshold
        if score > self.threshold:
            self.quiet = self.holdoff
        return score

    def learn_one(self, x: float) -> None:
        stats, self._stats = self._stats, None
        if stats is None:
            stats = self.statistics(x)
        r = self.ranks
        if stats is not None:
            change, run, shift = stats
            r["change"].update(change)
            r["stuck"].update(run)
            if shift is not None:
                r["shift"].update(shift)
            self.run = run
        r["high"].update(x)
        r["low"].update(-x)
        self.previous = x
        self.recent.append(x)
        if len(self.recent) >= self.short:
            self.older.update(self.recent.popleft())
