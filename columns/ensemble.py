"""The air-quality flow's default detector (`hst_ensemble`) for every sensor of a shard at once:
the twin of `detectors.ensemble.EnsembleDetector([LearnedLimitsHSTDetector(gate=…),
RankedTestsDetector(tests=("stuck",))], holdoff=…).score_then_learn`, bit for bit.

What is vectorised, and what is not:
- the trees: every sensor shares one forest on limits 0–1 and feeds it (v − lo) / span with its
  own learnt lo and span, so they are `columns.hst.HstColumns` on limits 0–1 fed the scaled
  values; a slot's first window is kept in an array and, when it fills, its limits are learnt
  (`learned_limits` itself, per slot: once in a sensor's life) and the window learnt at once;
- the stuck test's previous value, run of repeats, hold-off and warm-up count, the members'
  common scale, the ensemble's hold-off (`detectors.holdoff.apply_columns`, re-arming included):
  arrays per slot, one numpy pass per batch;
- the ranked tails (the gate's two `TailRank`s, the stuck test's run lengths) learn one value
  at a time in sorted lists: each slot keeps the very `TailRank` objects the per-sensor
  detector would, and a batch loops over its rows calling them (they are exact by construction;
  the benchmark says what they cost).

Rows whose feature is missing are `unscored` and learn nothing; placeholders are neither scored
nor learnt (`unscored`), as the per-sensor chain has it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from columns.batch import SCORED, UNSCORED, WARMING_UP, Work
from columns.hst import HstColumns
from detectors.ensemble import EnsembleDetector
from detectors.holdoff import HoldOff, apply_columns, apply_columns_timed
from detectors.learned_hst import LearnedLimitsHSTDetector, learned_limits
from detectors.ranked import RankedTestsDetector
from stats.tail import TailRank


class EnsembleColumns:
    """`hst_ensemble` for every slot of a shard, scored then learnt (see the module).

    >>> from columns.batch import Columns
    >>> from detectors.catalog import make_detector
    >>> ens = EnsembleColumns.of(make_detector("hst_ensemble", "v", window_size=3))
    >>> ens.grow(1)
    >>> seen = []
    >>> for v in (5.0, 6.0, 5.0, 900.0, np.nan):
    ...     work = Work.of(Columns(np.array([7]), np.array([0]), ("v",), np.array([[v]])))
    ...     ens.apply(work, np.array([0]), {})
    ...     seen.append(int(work.status[0]))
    >>> seen == [WARMING_UP, WARMING_UP, WARMING_UP, SCORED, UNSCORED]
    True
    """

    def __init__(
        self,
        feature: str,
        *,
        margin: float,
        n_trees: int,
        height: int,
        window_size: int,
        seed: int,
        gate: float | None,
        tail: tuple[int, int],
        stuck: tuple[int, int],
        min_count: int,
        stuck_holdoff: int,
        thresholds: tuple[float, float],
        holdoff: int,
        rearm: tuple[float, float] = (10.0, 10.0),
        holdoff_seconds: float | None = None,
    ):
        self.feature = feature
        self.margin = margin
        self.window_size = window_size
        self.gate = gate
        self.tail = tail  # the gate's TailRank (size, horizon)
        self.stuck = stuck  # the stuck test's TailRank (size, horizon)
        self.min_count = min_count
        self.stuck_holdoff = stuck_holdoff
        self.thresholds = thresholds
        self.holdoff = holdoff
        self.rearm = rearm  # the stuck test's and the ensemble's re-arm factors
        self.stuck_hold = HoldOff(thresholds[1], stuck_holdoff, rearm=rearm[0])
        self.holdoff_seconds = holdoff_seconds
        self.hold = HoldOff(EnsembleDetector.threshold, holdoff, holdoff_seconds, rearm=rearm[1])
        self.trees = HstColumns(
            feature, (0.0, 1.0), n_trees=n_trees, height=height, window_size=window_size,
            seed=seed,
        )
        # the trees member: its first window, and its limits once learnt
        self.first = np.zeros((0, window_size))
        self.seen = np.zeros(0, np.int64)  # readings of the first window so far
        self.lo = np.zeros(0)
        self.span = np.zeros(0)
        self.high: list[TailRank] = []  # the gate: rank of v, and of −v
        self.low: list[TailRank] = []
        # the stuck member
        self.previous = np.zeros(0)  # NaN: none yet
        self.run = np.zeros(0)
        self.changes = np.zeros(0, np.int64)  # values its `change` tail learnt (up to min_count)
        self.runs: list[TailRank] = []
        self.stuck_quiet = np.zeros(0, np.int64)
        self.stuck_rarity = np.zeros(0)  # 1 − score of the alarm that started its hold-off
        # the ensemble
        self.quiet = np.zeros(0, np.int64)
        self.rarity = np.zeros(0)
        self.until = np.zeros(0)  # with a hold-off in seconds: when each key's ends

    @classmethod
    def of(cls, detector: Any) -> EnsembleColumns:
        """The twin of a fresh `hst_ensemble`-shaped detector (ValueError for anything else:
        the shard logic then keeps per-sensor detectors)."""
        if type(detector) is not EnsembleDetector or not _fresh(detector.hold, timed=True):
            raise ValueError("the column ensemble twins a fresh EnsembleDetector")
        members = detector.members
        if len(members) != 2:
            raise ValueError("the column ensemble twins [learned-limits trees, stuck test]")
        trees, stuck = members
        if type(trees) is not LearnedLimitsHSTDetector or type(stuck) is not RankedTestsDetector:
            raise ValueError("the column ensemble twins [learned-limits trees, stuck test]")
        if trees.trees is not None or trees.first or trees.high.n or trees.seed is None:
            raise ValueError("the column ensemble needs fresh, seeded trees")
        if stuck.tests != ("stuck",) or stuck.previous is not None or not _fresh(stuck.hold):
            raise ValueError("the column ensemble's second member is a fresh stuck test alone")
        change = stuck.ranks["change"]  # only its count is read: up to min_count, it never drops
        if change.horizon - change.horizon // 2 < stuck.min_count:
            raise ValueError("the column ensemble needs the stuck test's horizon ≥ 2·min_count")
        if stuck.feature != trees.feature:
            raise ValueError("the column ensemble's members read one feature")
        options = trees.options
        run_tail = stuck.ranks["stuck"]
        return cls(
            trees.feature,
            margin=trees.margin,
            n_trees=options["n_trees"],
            height=options["height"],
            window_size=options["window_size"],
            seed=trees.seed,
            gate=trees.gate,
            tail=(trees.high.size, trees.high.horizon),
            stuck=(run_tail.size, run_tail.horizon),
            min_count=stuck.min_count,
            stuck_holdoff=stuck.holdoff,
            thresholds=(float(detector.thresholds[0]), float(detector.thresholds[1])),
            holdoff=detector.holdoff,
            rearm=(stuck.hold.rearm, detector.hold.rearm),
            holdoff_seconds=detector.hold.seconds,
        )

    @property
    def slots(self) -> int:
        """Slots allocated."""
        return len(self.seen)

    def grow(self, slots: int) -> None:
        """Room for slots 0..slots-1; new slots start fresh."""
        have = self.slots
        if slots <= have:
            return
        extra = max(slots, have + have // 4) - have
        self.trees.grow(have + extra)

        def more(a: np.ndarray, fill: float = 0) -> np.ndarray:
            return np.concatenate([a, np.full((extra, *a.shape[1:]), fill, a.dtype)])

        self.first = more(self.first)
        self.seen, self.lo, self.span = more(self.seen), more(self.lo), more(self.span)
        self.previous, self.run = more(self.previous, np.nan), more(self.run)
        self.changes, self.stuck_quiet, self.quiet = (
            more(self.changes), more(self.stuck_quiet), more(self.quiet)
        )
        self.stuck_rarity, self.rarity = more(self.stuck_rarity, 1.0), more(self.rarity, 1.0)
        self.until = more(self.until, -np.inf)
        self.high += [TailRank(*self.tail) for _ in range(extra)]
        self.low += [TailRank(*self.tail) for _ in range(extra)]
        self.runs += [TailRank(*self.stuck) for _ in range(extra)]

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        """Score each row's feature, then learn it (see the class); `work.score`/`.status`."""
        if not len(work):
            return
        col = work.column(self.feature)
        present = ~work.placeholder
        if col is not None:
            value = work.values[:, col]
            present &= ~np.isnan(value)
        else:
            present[:] = False
        work.status[~present] = UNSCORED
        work.score[~present] = np.nan
        rows = np.flatnonzero(present)
        if not len(rows):
            return
        s = np.asarray(slots, dtype=np.intp)[rows]
        x = value[rows]
        first = self._trees(s, x)
        second = self._stuck(s, x)
        work.score[rows], work.status[rows] = self._combine(s, first, second, work.times[rows])

    def _trees(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The learned-limits trees' scores (NaN while warming up), then learn."""
        seen = self.seen[s]
        ready = seen >= self.window_size
        score = np.full(len(s), np.nan)
        if ready.any():
            r = s[ready]
            score[ready] = self.trees.score_then_learn(r, (x[ready] - self.lo[r]) / self.span[r])
        if self.gate is not None:
            high, low, gate = self.high, self.low, self.gate
            damp = []
            for slot, v, on in zip(s.tolist(), x.tolist(), ready.tolist(), strict=True):
                h, lw = high[slot], low[slot]
                if on:
                    level = 2.0 * max(h.rank(v), lw.rank(-v)) - 1.0
                    damp.append(level < gate)
                h.update(v)
                lw.update(-v)
            if damp:
                on = np.flatnonzero(ready)[np.array(damp, bool)]
                score[on] *= self.thresholds[0]
        warm = np.flatnonzero(~ready)
        if len(warm):
            w = s[warm]
            self.first[w, seen[warm]] = x[warm]
            self.seen[w] = seen[warm] + 1
            full = w[seen[warm] == self.window_size - 1]
            if len(full):
                self._learn_limits(full)
        return score

    def _learn_limits(self, s: np.ndarray) -> None:
        """Slots `s` filled their first window: their limits, and the trees learn the window."""
        for slot in s.tolist():
            lo, hi = learned_limits(self.first[slot].tolist(), self.margin)
            self.lo[slot], self.span[slot] = lo, hi - lo
        scaled = (self.first[s] - self.lo[s, None]) / self.span[s, None]
        self.trees.learn_windows(s, scaled)
        self.first[s] = 0.0

    def _stuck(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The stuck test's scores (NaN while warming up), then learn."""
        previous, run = self.previous[s], self.run[s]
        has = ~np.isnan(previous)
        new_run = np.where(x == previous, run + 1.0, 0.0)
        scored = has & (self.changes[s] >= self.min_count)
        score = np.full(len(s), np.nan)
        runs = self.runs
        at = np.flatnonzero(scored)
        if len(at):
            pairs = zip(s[at].tolist(), new_run[at].tolist(), strict=True)
            rank = [runs[slot].rank(r) for slot, r in pairs]
            score[at] = 1.0 - (1.0 - np.array(rank))
            k = s[at]
            score[at], self.stuck_quiet[k], self.stuck_rarity[k] = apply_columns(
                self.stuck_hold, score[at], self.stuck_quiet[k], self.stuck_rarity[k]
            )
        # learn: a run that ended joins the past runs; `change` counts (only its n is read)
        ended = np.flatnonzero(has & (new_run == 0.0))
        for slot, r in zip(s[ended].tolist(), run[ended].tolist(), strict=True):
            runs[slot].update(r)
        self.changes[s] = np.minimum(self.changes[s] + has, self.min_count)
        self.run[s] = np.where(has, new_run, run)
        self.previous[s] = x
        return score

    def _combine(
        self, s: np.ndarray, first: np.ndarray, second: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ensemble: the larger score on the common scale, its hold-off; (score, status)."""
        with np.errstate(invalid="ignore"):
            best = np.fmax(_common(first, self.thresholds[0]), _common(second, self.thresholds[1]))
        scored = ~np.isnan(best)
        status = np.where(scored, SCORED, WARMING_UP).astype(np.uint8)
        at = np.flatnonzero(scored)
        if len(at):
            k = s[at]
            if self.holdoff_seconds is None:
                best[at], self.quiet[k], self.rarity[k] = apply_columns(
                    self.hold, best[at], self.quiet[k], self.rarity[k]
                )
            else:
                best[at], self.until[k], self.quiet[k], self.rarity[k] = apply_columns_timed(
                    self.hold, best[at], times[at], self.until[k], self.quiet[k], self.rarity[k]
                )
        return best, status


def _fresh(hold: HoldOff, timed: bool = False) -> bool:
    """Whether a hold-off is unused and counts readings (or, with `timed`, may count seconds:
    the ensemble's own is given each row's time)."""
    unused = not hold.quiet and hold.rarity == 1.0 and hold.until == -math.inf
    return unused and (timed or hold.seconds is None)


def _common(score: np.ndarray, threshold: float) -> np.ndarray:
    """`detectors.ensemble.on_common_scale` elementwise (NaN stays NaN), the same operations."""
    with np.errstate(invalid="ignore"):
        return np.where(
            score <= threshold,
            0.5 * score / threshold,
            0.5 + 0.5 * (score - threshold) / (1.0 - threshold),
        )
