"""The NowCast and AQI fields over a batch: `preparation.aqi.NowCast.update` and `aqi`, as
the per-sensor chain sets `pm2.5_nowcast` and `aqi` on every reading.

A row feeds its slot's NowCast when it is not a placeholder, has a `pm2.5_epa` and no
`flatline` reason; it then gets the NowCast (or None) and `float(aqi(nowcast))`; every other row
gets None in both. The update is numpy over the batch from per-slot arrays, along each
sensor's rows when it has several, in the per-reading class's float operations and order
(bit-equal): the current hour's sum and count, the past hours' means (`past`, NaN = None),
their extremes, and the weighted sums of the past hours for each row's weight (eleven vector
steps over the rows, in the per-reading loop's order; the state keeps the last row's, as the
per-reading class caches them).
"""

from __future__ import annotations

import numpy as np

from columns.batch import Work
from columns.grow import grown
from columns.rounds import Along, occurrences
from preparation.aqi import AQI_FIELD, BREAKPOINTS, HOURS, MIN_WEIGHT, NOWCAST_FIELD, NowCast
from preparation.correction import EPA_FIELD
from preparation.reasons import FLATLINE

_C_HI = np.array([c_hi for _, c_hi, _, _ in BREAKPOINTS])
_C_LO = np.array([c_lo for c_lo, _, _, _ in BREAKPOINTS] + [0.0])
_I_LO = np.array([float(i_lo) for _, _, i_lo, _ in BREAKPOINTS] + [500.0])
#: Each breakpoint's slope, as `aqi` computes it: (I_hi − I_lo) / (C_hi − C_lo).
_SLOPE = np.array([(i_hi - i_lo) / (c_hi - c_lo) for c_lo, c_hi, i_lo, i_hi in BREAKPOINTS] + [0.0])


def aqi_values(levels: np.ndarray) -> np.ndarray:
    """`float(aqi(c))` for each concentration (NaN stays NaN), bit for bit.

    >>> aqi_values(np.array([0.0, 9.05, 12.0, 35.5, 600.0, np.nan])).tolist()
    [0.0, 50.0, 56.0, 101.0, 500.0, nan]
    """
    out = np.full(len(levels), np.nan)
    known = ~np.isnan(levels)
    c = np.floor(np.maximum(levels[known], 0.0) * 10.0 + 1e-9) / 10.0
    band = np.searchsorted(_C_HI, c, side="left")  # the first breakpoint with c <= C_hi
    index = np.rint(_SLOPE[band] * (c - _C_LO[band]) + _I_LO[band]) + 0.0  # round(); never -0.0
    out[known] = index  # beyond the last breakpoint: slope 0, 500
    return out


class NowCastColumns:
    """Every slot's NowCast (`NowCast`'s options); `apply` sets the two fields on every row.

    >>> from columns.batch import Columns
    >>> nowcast = NowCastColumns()
    >>> nowcast.grow(1)
    >>> for time, pm in ((0, 10.0), (3600, 20.0)):
    ...     work = Work.of(Columns(np.array([7]), np.array([time]), (EPA_FIELD,), np.array([[pm]])))
    ...     nowcast.apply(work, np.array([0]), {})
    ...     print(work.fields, work.values.round(3).tolist())
    ['pm2.5_epa', 'pm2.5_nowcast', 'aqi'] [[10.0, nan, nan]]
    ['pm2.5_epa', 'pm2.5_nowcast', 'aqi'] [[20.0, 16.667, 65.0]]
    """

    #: Takes a slot's several rows in one call, in order (along time).
    ALONG = True

    def __init__(self, hours: int = HOURS, min_weight: float = MIN_WEIGHT):
        NowCast(hours, min_weight)  # the per-reading class checks the options
        self.hours, self.min_weight = hours, min_weight
        self.hour = np.zeros(0, np.int64)  # per slot: the current clock hour (-1: none yet)
        self.sum = np.zeros(0)  # per slot: the current hour's sum and count
        self.n = np.zeros(0, np.int64)
        self.past = np.zeros((0, hours - 1))  # per slot: hourly means, 1 and more hours ago
        self.lo = np.zeros(0)  # per slot: min and max of `past` (NaN: no hour has data)
        self.hi = np.zeros(0)
        self.weight = np.zeros(0)  # per slot: the cache's weight (NaN: none) ...
        self.num = np.zeros(0)  # ... Σ wᵏ c over `past` ...
        self.den = np.zeros(0)  # ... and Σ wᵏ

    def grow(self, slots: int) -> None:
        """Room for slots 0..slots-1; new slots have no hour yet."""
        self.hour = grown(self.hour, slots, -1)
        self.sum = grown(self.sum, slots, 0.0)
        self.n = grown(self.n, slots, 0)
        self.past = grown(self.past, slots, np.nan)
        for name in ("lo", "hi", "weight", "num", "den"):
            setattr(self, name, grown(getattr(self, name), slots, np.nan))

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        """Set `pm2.5_nowcast` and `aqi` (added as columns when the batch has none, in that
        order) on every row: NaN for a placeholder, a missing `pm2.5_epa` or a `flatline` row
        (those do not feed the NowCast), else the updated NowCast and its AQI. Run it after the
        EPA correction. Counts nothing."""
        n = len(work)
        levels = np.full(n, np.nan)
        col = work.column(EPA_FIELD)
        if col is not None and n:
            pm = work.values[:, col]
            feeds = ~(work.placeholder | np.isnan(pm))
            for row, reasons in work.reasons.items():
                if FLATLINE in reasons:  # a stuck PM is not fed
                    feeds[row] = False
            rows = np.flatnonzero(feeds)
            if len(rows):
                levels[rows] = self._update(work.times[rows], pm[rows], slots[rows])
        at_nowcast = work.column(NOWCAST_FIELD)
        if at_nowcast is None:
            at_nowcast = work.add_column(NOWCAST_FIELD)
        at_aqi = work.column(AQI_FIELD)
        if at_aqi is None:
            at_aqi = work.add_column(AQI_FIELD)
        work.values[:, at_nowcast] = levels
        work.values[:, at_aqi] = aqi_values(levels)

    def _advance(self, slots: np.ndarray, hours: np.ndarray, mean: np.ndarray) -> None:
        """`NowCast._advance` for these slots: close their hour (its `mean`, NaN: no reading)
        and the empty ones after it."""
        steps = hours - self.hour[slots]
        width = self.hours - 1
        source = np.arange(width)[None, :] - steps[:, None]  # the old index each moves from
        old = self.past[slots]
        past = np.take_along_axis(old, np.clip(source, 0, width - 1), axis=1)
        past[source < 0] = np.nan
        past = np.where(source == -1, mean[:, None], past)  # the closed hour: steps - 1
        self.past[slots] = past
        self.hour[slots], self.sum[slots], self.n[slots] = hours, 0.0, 0
        self.weight[slots] = np.nan
        known = ~np.isnan(past)
        some = known.any(axis=1)
        self.lo[slots] = np.where(some, np.where(known, past, np.inf).min(axis=1), np.nan)
        self.hi[slots] = np.where(some, np.where(known, past, -np.inf).max(axis=1), np.nan)

    def _update(self, times: np.ndarray, values: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """`NowCast.update` of each slot by its rows, in order: the NowCasts, NaN for None.

        Along each slot's rows (`columns.rounds.Along`), in slot order: a row later than its
        slot's current hour closes it, so the rows fall into hour groups; each group's running
        sums are one sequential `cumsum` (the per-reading additions, in order) from 0 or the
        state's sum; the past hours change only where a group begins, one round per hour
        closed (every slot's k-th together); then each row's NowCast from its group's past."""
        n = len(slots)
        along = Along(slots)
        hours = times // 3600
        state_hour = self.hour[slots]
        current = along.previous(along.running_max(hours, state_hour), state_hour)
        later = hours > current  # a late reading counts in the current hour
        order = np.arange(n) if along.order is None else along.order
        first = along.first[order]  # in slot order from here on
        slot, later, hour = slots[order], later[order], hours[order]
        x = np.maximum(values[order], 0.0)
        begins = first | later
        group = np.cumsum(begins) - 1
        starts = np.flatnonzero(begins)
        g_slot, fresh = slot[starts], later[starts]
        at = np.arange(n) - starts[group]
        sums = np.zeros((len(starts), int(at.max()) + 2))
        sums[:, 0] = np.where(fresh, 0.0, self.sum[g_slot])
        sums[group, at + 1] = x
        total = np.cumsum(sums, axis=1)[group, at + 1]  # sequential, as `sum += value`
        count = np.where(fresh, 0, self.n[g_slot])[group] + at + 1
        ends = np.r_[starts[1:] - 1, n - 1]
        own = ~first[starts]  # a group after another of its slot closes that one's hour
        closed_total = np.where(own, np.r_[0.0, total[ends][:-1]], self.sum[g_slot])
        closed_count = np.where(own, np.r_[0, count[ends][:-1]], self.n[g_slot])
        width = self.hours - 1
        past = np.empty((len(starts), width))
        lo, hi = self.lo[g_slot], self.hi[g_slot]
        past[:] = self.past[g_slot]  # the groups that go on from the state's hour
        closing = np.flatnonzero(fresh)
        if len(closing):
            mean = np.full(len(closing), np.nan)
            held = closed_count[closing] > 0
            mean[held] = closed_total[closing][held] / closed_count[closing][held]
            k = occurrences(g_slot[closing])
            for r in range(int(k.max()) + 1):  # each slot's r-th hour closed in this batch
                these = np.flatnonzero(k == r)
                g, s = closing[these], g_slot[closing[these]]
                self._advance(s, hour[starts[g]], mean[these])
                past[g], lo[g], hi[g] = self.past[s], self.lo[s], self.hi[s]
        final = np.flatnonzero(np.r_[first[starts][1:], True])  # each slot's last group
        last = ends[final]
        self.sum[g_slot[final]], self.n[g_slot[final]] = total[last], count[last]
        ranked = np.full(n, np.nan)
        ready = ~(np.isnan(past[group, 0]) & np.isnan(past[group, 1]))
        rows = np.flatnonzero(ready)
        if len(rows):
            mean_now = total[rows] / count[rows]
            g = group[rows]
            low = np.where(np.isnan(lo[g]), mean_now, np.minimum(lo[g], mean_now))
            high = np.where(np.isnan(hi[g]), mean_now, np.maximum(hi[g], mean_now))
            positive = high > 0.0
            ratio = np.divide(low, high, out=np.ones(len(high)), where=positive)
            weight = np.where(positive, np.maximum(ratio, self.min_weight), 1.0)
            num, den = self._weighted(past[g], weight)
            ranked[rows] = (mean_now + num) / (1.0 + den)
            cached = ready[last]  # the cache of each slot: its last row's weight, when ready
            s, r = g_slot[final][cached], np.searchsorted(rows, last[cached])
            self.weight[s], self.num[s], self.den[s] = weight[r], num[r], den[r]
        out = np.empty(n)
        out[order] = ranked
        return out

    @staticmethod
    def _weighted(past: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Σ wᵏ c and Σ wᵏ over each row's past hours with data, summed in the per-reading
        class's order, hour by hour over all the rows at once (an hour without data adds an
        exact 0.0: every term is positive or +0.0)."""
        past = np.ascontiguousarray(past.T)
        known = ~np.isnan(past)
        values, present = np.where(known, past, 0.0), known.astype(np.float64)
        num = np.zeros(len(w))
        den = np.zeros(len(w))
        weight = w
        for hour in range(len(past)):
            num = num + weight * values[hour]
            den = den + weight * present[hour]
            weight = weight * w
        return num, den
