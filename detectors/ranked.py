"""Simple tests, each ranked among the key's own past, in consensus, with a hold-off; a shape test.

Four statistics of each reading, each a cheap test of its own kind of fault:

- `change`, |x − previous|: a spike or a jump;
- `level`, x against every past value, both tails: a value never seen so high (or so low);
- `shift`, |mean of the last `short` values − mean of the `long` before them| / their std: a
  level shift or drift too gradual for `change`;
- `stuck`, how many readings in a row repeated the previous value exactly, against the lengths
  of the key's past runs of repeats: a frozen sensor;
- `shape` (only when asked for, as `ranked_shape` does): how far the latest subsequence, one
  dominant period long, is from its nearest earlier one in a bounded window, z-normalised
  (1 − the highest correlation) and as it is (the Euclidean distance), each ranked, p =
  √(p_shape·p_amplitude): a beat or a cycle that looks wrong while every value in it is
  ordinary (`detectors.shape.LeftDiscord`, a streaming left discord).

No statistic has a scale that holds across series, so each is replaced by its rank among the
same statistic's past values on this key (`stats.tail.TailRank`: exact in the top tail, bounded
memory, new extremes ranked by how far they go), and p = 1 − rank is how rare it is: 3·10⁻⁴
means "more unusual than 99.97 % of what this key has done". Nothing is read in advance (no
minimum, maximum or length of a file) and nothing is tuned per series.

The tests vote as in Etsy's Skyline, where an alarm needs several tests to agree: the score is
1 − √(p₁·p₂), p₁ ≤ p₂ the two smallest, so an alarm takes two tests that find the reading rare,
or one that finds it far rarer than anything seen (`combine="max"`: the rarest test alone). The
shape test is not a voter but a detector beside the vote (it sees subsequences, the others one
reading): the score is 1 − min(p of the vote, p of the shape), and when the shape decides,
`lag` says how many readings back the unusual subsequence's centre lies. That measured better
than a fifth voter on both benchmarks (docs/detectors.md). A new extreme of the shape's
statistics is no rarer than one in n + 1 (`rarity`: early on, with few subsequences known,
every one is far from the rest). The score is in [0, 1) and keeps its order at the top.

An anomaly is seldom one reading: after a reading scores above `threshold`, the next `holdoff`
readings (or `holdoff_seconds`, where readings carry a time) have their scores multiplied by
`threshold`, so they stay below it and keep their order (the first alarm of an episode counts; in
NAB's scoring every further one costs), unless a reading is `rearm` times rarer than the alarm
that started the hold-off (`detectors.holdoff.HoldOff`).

Per reading: a handful of arithmetic and five O(log size) rank look-ups; memory is bounded by
`size`, `long` and `short`; the state is plain attributes and lists, so it pickles. The shape
test adds about a dozen numpy passes over `shape_history` floats per block of readings (a
block is one reading unless the period is long) and 7·`shape_history` floats of state.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from detectors.base import UnivariateDetector
from detectors.holdoff import REARM, TIME, HoldOff
from detectors.shape import LeftDiscord
from stats.moments import RollingMoments
from stats.tail import NEW_EXTREME, TailRank

TESTS = ("change", "level", "shift", "stuck", "shape")
#: The tests `ranked` runs unless told otherwise.
DEFAULT_TESTS = ("change", "level", "shift", "stuck")
COMBINE = ("consensus", "max")


def rarity(ranks: TailRank, x: float) -> float:
    """1 − rank of x, where a new extreme is no rarer than one in n + 1 values seen (a discord's
    statistic is large early on, when few subsequences are known: `TailRank` alone would call
    the first new maximum among 30 values one in 10⁴)."""
    p = 1.0 - ranks.rank(x)
    top = ranks.old.top
    if top and x > top[-1]:
        p *= max(1.0, 1.0 / (NEW_EXTREME * (ranks.n + 1)))
    return p


class RankedTestsDetector(UnivariateDetector):
    """Four simple tests ranked among the key's own past, in consensus, with a hold-off.

    >>> import random
    >>> rng = random.Random(0)
    >>> det = RankedTestsDetector("v")
    >>> scores = [det.score_then_learn({"v": 10.0 + rng.gauss(0, 1)})[0] for _ in range(500)]
    >>> scores[0] is None, all(0.0 <= s < 1.0 for s in scores[40:])
    (True, True)
    >>> spike, status = det.score_then_learn({"v": 30.0})
    >>> status, det.threshold < spike < 1.0
    ('scored', True)
    >>> det.score_then_learn({"v": 31.0})[0] < det.threshold  # held off
    True
    """

    threshold = 0.998

    def __init__(
        self,
        feature: str,
        threshold: float | None = None,
        holdoff: int = 100,
        holdoff_seconds: float | None = None,
        rearm: float = REARM,
        short: int = 8,
        long: int = 200,
        size: int = 256,
        horizon: int = 20_000,
        min_count: int = 30,
        tests: tuple[str, ...] = DEFAULT_TESTS,
        combine: str = "consensus",
        shape_history: int = 4096,
    ):
        super().__init__(feature)
        if threshold is not None:
            self.threshold = threshold
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        if holdoff < 0 or short < 1 or long < 2 or min_count < 1:
            raise ValueError("need holdoff ≥ 0, short ≥ 1, long ≥ 2, min_count ≥ 1")
        if set(tests) - set(TESTS) or not tests:
            raise ValueError(f"tests must be some of {TESTS}, got {tests}")
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}, got {combine!r}")
        self.tests = tuple(tests)
        self._shift = "shift" in tests
        self._level = "level" in tests
        self.combine = combine
        self.holdoff = holdoff
        self.hold = HoldOff(self.threshold, holdoff, holdoff_seconds, rearm)
        self._at: float | None = None  # the time of the reading being scored, if any
        self.short = short
        self.long = long
        self.min_count = min_count
        self.ranks = {
            name: TailRank(size, horizon)
            for name in ("change", "high", "low", "shift", "stuck", "shape", "amplitude")
        }
        self.discord = LeftDiscord(shape_history, 2 * shape_history) if "shape" in tests else None
        # the shape statistics (z-normalised, amplitude) of the reading being scored
        self._shape: tuple[float, float] | None = None
        self._shaped = False
        #: readings from the latest one back to where its score's anomaly is (the centre of the
        #: unusual subsequence when the shape test decides; 0 otherwise)
        self.lag = 0
        self.previous: float | None = None
        self.run = 0.0  # readings in a row equal to the one before
        self.recent: deque[float] = deque()  # the last `short` − 1 values
        self.older = RollingMoments(long)  # the `long` values before them
        self._stats: tuple[float, float, float | None] | None = None

    def statistics(self, x: float) -> tuple[float, float, float | None] | None:
        """(change, run of repeats, shift or None) of x against the past, or None at first."""
        previous = self.previous
        if previous is None:
            return None
        run = self.run + 1.0 if x == previous else 0.0
        shift = None
        older = self.older
        if self._shift and older.n >= self.long // 2:
            recent = self.recent
            mean = older.mean
            level = (sum(recent) + x) / (len(recent) + 1)
            shift = abs(level - mean) / (older.std + 1e-12 * (abs(mean) + 1.0))
        return abs(x - previous), run, shift

    def rarities(self, x: float, stats: tuple[float, float, float | None]) -> list[float]:
        """p = 1 − rank of each test that can answer yet, for x and its statistics."""
        change, run, shift = stats
        r = self.ranks
        tests = self.tests
        out = []
        if "change" in tests:
            out.append(1.0 - r["change"].rank(change))
        if "level" in tests:
            out.append(2.0 - 2.0 * max(r["high"].rank(x), r["low"].rank(-x)))
        if "stuck" in tests:
            out.append(1.0 - r["stuck"].rank(run))
        if "shift" in tests and shift is not None and r["shift"].n >= self.min_count:
            out.append(1.0 - r["shift"].rank(shift))
        return out

    def shape_rarity(self) -> float | None:
        """The shape test's p: √(p_shape·p_amplitude), a subsequence unlike every past one both
        z-normalised and as it is (None until it can answer)."""
        shape, r = self._shape, self.ranks
        if shape is None or r["shape"].n < self.min_count:
            return None
        return math.sqrt(rarity(r["shape"], shape[0]) * rarity(r["amplitude"], shape[1]))

    def score_one(self, x: float) -> float | None:
        if self.discord is not None:
            self._shape, self._shaped = self._discord(x), True
        stats = self._stats = self.statistics(x)
        self.lag = 0
        if stats is None or self.ranks["change"].n < self.min_count:
            return None
        p = sorted(self.rarities(x, stats))
        consensus = self.combine == "consensus" and len(p) > 1
        rarest = (math.sqrt(p[0] * p[1]) if consensus else p[0]) if p else None
        if self.discord is not None:
            shape = self.shape_rarity()
            if shape is not None and (rarest is None or shape < rarest):
                rarest, self.lag = shape, self.discord.lag
        if rarest is None:  # the only tests asked for cannot answer yet
            return None
        return self.hold.apply(1.0 - rarest, self._at)

    def _discord(self, x: float) -> tuple[float, float] | None:
        """The left discord's statistics after learning x: (shape, amplitude) or None."""
        discord = self.discord
        shape = discord.update(x)
        return None if shape is None else (shape, discord.amplitude)

    def score_then_learn(self, values: Mapping[str, float | None]) -> tuple[float | None, str]:
        self._at = values.get(TIME)
        return super().score_then_learn(values)

    def learn_one(self, x: float) -> None:
        stats, self._stats = self._stats, None
        if stats is None:
            stats = self.statistics(x)
        r = self.ranks
        if stats is not None:  # each test learns what it ranks; `change` counts the warm-up
            change, run, shift = stats
            r["change"].update(change)
            if run == 0.0:  # a run of repeats ended: its length joins the key's past runs
                r["stuck"].update(self.run)
            if shift is not None:
                r["shift"].update(shift)
            self.run = run
        if self.discord is not None:
            if not self._shaped:
                self._shape = self._discord(x)
            if self._shape is not None:
                r["shape"].update(self._shape[0])
                r["amplitude"].update(self._shape[1])
            self._shape, self._shaped = None, False
        if self._level:
            r["high"].update(x)
            r["low"].update(-x)
        self.previous = x
        if self._shift:
            self.recent.append(x)
            if len(self.recent) >= self.short:
                self.older.update(self.recent.popleft())
