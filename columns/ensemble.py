"""The air-quality flow's default detector (`hst_ensemble`) for every sensor of a shard at once:
the twin of `detectors.ensemble.EnsembleDetector([LearnedLimitsHSTDetector(gate=…),
StuckRunDetector()], holdoff=…).score_then_learn`, bit for bit.

Everything is arrays per slot, one numpy pass per round of a batch (a round holds each slot
once; a batch where a slot repeats runs as rounds, so each slot's rows are taken in order):
- the trees: every sensor shares one forest on limits 0–1 and feeds it (v − lo) / span with its
  own learnt lo and span, so they are `columns.hst.HstColumns` on limits 0–1 fed the scaled
  values; a slot's first window is kept in a row of a pool shared by the slots still warming
  up and, when it fills, its limits and its gate's centre and unit are learnt (`learned_limits`
  and `gate_place` themselves, per slot: once in a sensor's life), the window learnt at once
  and the row freed (so a warmed-up sensor keeps no window);
- the ranked tails (the gate's values, the stuck test's run lengths): histograms of every slot
  in one array each (`stats.histogram.HistogramRanks`, slots × generations × bins);
- the stuck test's previous value, run of repeats, hold-off and warm-up count, the members'
  common scale, the ensemble's hold-off (`detectors.holdoff.apply_columns`, re-arming included).

Rows whose feature is missing are `unscored` and learn nothing; placeholders are neither scored
nor learnt (`unscored`), as the per-sensor chain has it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from columns.batch import SCORED, UNSCORED, WARMING_UP, Work
from columns.hst import HstColumns
from columns.rounds import occurrences
from detectors.ensemble import EnsembleDetector
from detectors.holdoff import HoldOff, apply_columns, apply_columns_timed
from detectors.learned_hst import (
    GATE_HORIZON,
    LearnedLimitsHSTDetector,
    gate_place,
    learned_limits,
)
from detectors.stuck import StuckRunDetector
from stats.histogram import RUN_GRID, VALUE_GRID, HistogramRanks


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
        stuck_horizon: int,
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
        self.first = np.zeros((0, window_size))  # the pool of first windows being filled
        self.free = np.zeros(0, np.int64)  # its rows not in use
        self.row = np.zeros(0, np.int64)  # each slot's row of the pool (-1: none)
        self.seen = np.zeros(0, np.int64)  # readings of the first window so far
        self.lo = np.zeros(0)
        self.span = np.zeros(0)
        self.tails = HistogramRanks(VALUE_GRID, GATE_HORIZON)  # the gate's (used with a gate)
        # the stuck member
        self.previous = np.zeros(0)  # NaN: none yet
        self.run = np.zeros(0)
        self.changes = np.zeros(0, np.int64)  # readings learnt after a first (up to min_count)
        self.runs = HistogramRanks(RUN_GRID, stuck_horizon)
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
        if type(trees) is not LearnedLimitsHSTDetector or type(stuck) is not StuckRunDetector:
            raise ValueError("the column ensemble twins [learned-limits trees, stuck test]")
        if trees.trees is not None or trees.first or trees.seed is None:
            raise ValueError("the column ensemble needs fresh, seeded trees")
        if stuck.previous is not None or not _fresh(stuck.hold):
            raise ValueError("the column ensemble's second member is a fresh stuck test")
        if stuck.feature != trees.feature:
            raise ValueError("the column ensemble's members read one feature")
        options = trees.options
        return cls(
            trees.feature,
            margin=trees.margin,
            n_trees=options["n_trees"],
            height=options["height"],
            window_size=options["window_size"],
            seed=trees.seed,
            gate=trees.gate,
            stuck_horizon=stuck.runs.horizon,
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

        self.row = more(self.row, -1)
        self.seen, self.lo, self.span = more(self.seen), more(self.lo), more(self.span)
        self.previous, self.run = more(self.previous, np.nan), more(self.run)
        self.changes, self.stuck_quiet, self.quiet = (
            more(self.changes), more(self.stuck_quiet), more(self.quiet)
        )
        self.stuck_rarity, self.rarity = more(self.stuck_rarity, 1.0), more(self.rarity, 1.0)
        self.until = more(self.until, -np.inf)
        self.runs.grow(have + extra)
        if self.gate is not None:
            self.tails.grow(have + extra)

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
        rounds = occurrences(s)
        pieces = [(rows, s)]  # usually one round: each slot once
        if rounds.any():
            pieces = [(rows[rounds == k], s[rounds == k]) for k in range(int(rounds.max()) + 1)]
        for at, sk in pieces:
            x = value[at]
            first = self._trees(sk, x)
            second = self._stuck(sk, x)
            work.score[at], work.status[at] = self._combine(sk, first, second, work.times[at])

    def _trees(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The learned-limits trees' scores (NaN while warming up), then learn."""
        seen = self.seen[s]
        ready = seen >= self.window_size
        score = np.full(len(s), np.nan)
        if ready.any():
            r = s[ready]
            score[ready] = self.trees.score_then_learn(r, (x[ready] - self.lo[r]) / self.span[r])
        if self.gate is not None and ready.any():
            r, v = s[ready], x[ready]
            b = self.tails.locate(r, v)
            high, low = self.tails.ranks(r, v, b)
            level = 2.0 * np.maximum(high, low) - 1.0
            self.tails.update(r, v, b)
            damp = np.flatnonzero(ready)[level < self.gate]
            score[damp] *= self.thresholds[0]
        warm = np.flatnonzero(~ready)
        if len(warm):
            w = s[warm]
            self._rows(w[self.row[w] < 0])
            self.first[self.row[w], seen[warm]] = x[warm]
            self.seen[w] = seen[warm] + 1
            full = w[seen[warm] == self.window_size - 1]
            if len(full):
                self._learn_limits(full)
        return score

    def _rows(self, s: np.ndarray) -> None:
        """Rows of the pool for slots `s`, which start their first window (the pool grows)."""
        if not len(s):
            return
        short = len(s) - len(self.free)
        if short > 0:
            have = len(self.first)
            extra = max(short, have // 4)
            self.first = np.concatenate([self.first, np.zeros((extra, self.window_size))])
            self.free = np.concatenate([self.free, np.arange(have, have + extra)])
        self.row[s], self.free = self.free[: len(s)], self.free[len(s):]

    def _release(self, s: np.ndarray) -> None:
        """Slots `s` are done with their rows; an unused pool is dropped."""
        rows = self.row[s]
        self.first[rows] = 0.0
        self.row[s] = -1
        self.free = np.concatenate([self.free, rows])
        if len(self.free) == len(self.first):
            self.first = np.zeros((0, self.window_size))
            self.free = np.zeros(0, np.int64)

    def _learn_limits(self, s: np.ndarray) -> None:
        """Slots `s` filled their first window: their limits, and the trees learn the window."""
        tails = self.tails
        windows = self.first[self.row[s]]
        for slot, window in zip(s.tolist(), windows.tolist(), strict=True):
            lo, hi = learned_limits(window, self.margin)
            self.lo[slot], self.span[slot] = lo, hi - lo
            if self.gate is not None:
                tails.centre[slot], tails.unit[slot] = gate_place(window)
        scaled = (windows - self.lo[s, None]) / self.span[s, None]
        self.trees.learn_windows(s, scaled)
        if self.gate is not None:
            for column in windows.T:  # in order: the generations count readings
                tails.update(s, column)
        self._release(s)

    def _stuck(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The stuck test's scores (NaN while warming up), then learn."""
        previous, run = self.previous[s], self.run[s]
        has = ~np.isnan(previous)
        new_run = np.where(x == previous, run + 1.0, 0.0)
        scored = has & (self.changes[s] >= self.min_count)
        score = np.full(len(s), np.nan)
        at = np.flatnonzero(scored)
        if len(at):
            k = s[at]
            score[at] = 1.0 - (1.0 - self.runs.rank(k, new_run[at]))
            score[at], self.stuck_quiet[k], self.stuck_rarity[k] = apply_columns(
                self.stuck_hold, score[at], self.stuck_quiet[k], self.stuck_rarity[k]
            )
        # learn: a run that ended joins the past runs; the warm-up counts
        ended = np.flatnonzero(has & (new_run == 0.0))
        self.runs.update(s[ended], run[ended])
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
