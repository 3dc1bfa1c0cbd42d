"""The NowCast and AQI fields over a batch: `preparation.aqi.NowCast.update` and `aqi`, as
the per-sensor chain sets `pm2.5_nowcast` and `aqi` on every reading.

A row feeds its slot's NowCast when it is not a placeholder, has a `pm2.5_epa` and no
`flatline` reason; it then gets the NowCast (or None) and `float(aqi(nowcast))`; every other row
gets None in both. Every row of a call is a different sensor, so the update is numpy over the
batch from per-slot arrays, in the per-reading class's float operations and order (bit-equal):
the current hour's sum and count, the past hours' means (`past`, NaN = None), their extremes,
and the cached weighted sums of the past hours for the last weight, recomputed for the rows
whose weight changed or whose hour closed (eleven vector steps over those rows, in the
per-reading loop's order).
"""

from __future__ import annotations

import numpy as np

from columns.batch import Work
from columns.grow import grown
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

    def _advance(self, slots: np.ndarray, hours: np.ndarray) -> None:
        """`NowCast._advance` for these slots: close their hour (and the empty ones after it)."""
        steps = hours - self.hour[slots]
        count = self.n[slots]
        mean = np.where(count > 0, self.sum[slots] / np.maximum(count, 1), np.nan)
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
        """`NowCast.update` of each slot by its row: the NowCasts, NaN for None."""
        hours = times // 3600
        later = hours > self.hour[slots]  # a late reading counts in the current hour
        if later.any():
            self._advance(slots[later], hours[later])
        total = self.sum[slots] + np.maximum(values, 0.0)
        count = self.n[slots] + 1
        self.sum[slots], self.n[slots] = total, count
        current = total / count
        out = np.full(len(slots), np.nan)
        past = self.past
        ready = ~(np.isnan(past[slots, 0]) & np.isnan(past[slots, 1]))
        if not ready.all():  # (in a steady state every slot is)
            ready = np.flatnonzero(ready)
            if not len(ready):
                return out
            slots, current = slots[ready], current[ready]
        lo, hi = self.lo[slots], self.hi[slots]
        lo = np.where(np.isnan(lo), current, np.minimum(lo, current))
        hi = np.where(np.isnan(hi), current, np.maximum(hi, current))
        positive = hi > 0.0
        ratio = np.divide(lo, hi, out=np.ones(len(hi)), where=positive)
        weight = np.where(positive, np.maximum(ratio, self.min_weight), 1.0)
        stale = self.weight[slots] != weight  # NaN (no cache) is never equal
        if stale.any():
            self._weigh(slots[stale], weight[stale])
        out[ready] = (current + self.num[slots]) / (1.0 + self.den[slots])
        return out

    def _weigh(self, slots: np.ndarray, w: np.ndarray) -> None:
        """The cache for weight `w`: Σ wᵏ c and Σ wᵏ over the past hours with data, summed in
        the per-reading class's order, hour by hour over all the rows at once (an hour without
        data adds an exact 0.0: every term is positive or +0.0)."""
        past = np.ascontiguousarray(self.past[slots].T)
        known = ~np.isnan(past)
        values, present = np.where(known, past, 0.0), known.astype(np.float64)
        num = np.zeros(len(slots))
        den = np.zeros(len(slots))
        weight = w
        for hour in range(len(past)):
            num = num + weight * values[hour]
            den = den + weight * present[hour]
            weight = weight * w
        self.weight[slots], self.num[slots], self.den[slots] = w, num, den
