"""How rare a value is among a key's recent values, from a fixed-size histogram (per key or arrays).

`stats.tail.TailRank` keeps the exact top of a key's values in a sorted list: a Python object
per key, a list insertion per value, and 2·size floats of state. Here the values are counted in
the bins of a fixed grid instead, so a key's state is a fixed-size array of small counts and
many keys' states stack into one 2-D array (keys × bins) that numpy updates in one pass
(`HistogramRanks`, the column engine's twin of `HistogramRank`, bit for bit).

Why a histogram on an octave grid (and not a reservoir or a quantile sketch): the ranks that
matter are those of values against the key's own spread, on series whose units and levels are
unknown (PM in µg/m³, a CPU metric, a run of repeats), so the grid is relative: a value x is
placed by u = (x − centre) / unit (the key's own centre and unit: for the gate, its first
window's median and span; for runs of repeats, 0 and 1) and |u| is binned by its binary
exponent and `per_octave` equal steps within the octave (`math.frexp`: exact arithmetic, so
the scalar and the array forms place every value in the same bin). Bins are thus a constant
share (1/per_octave to 2/per_octave) of the distance from the centre, from 2^(low−1) units to
2^high: fine near the key's usual values, coarse far out, with a bounded count of bins. A
reservoir or a KLL sketch would need a sort or a merge per value and do not stack into arrays;
a P² estimator gives one quantile, not a rank.

The rank of x is its mid-rank among the past values rounded to their bins: the values of the
bins below x count whole, those of x's own bin half (as ties), so the rank is exact for values
that fall on distinct bins and off by at most half of one bin's share otherwise. A value beyond
every past one (above the exact maximum, or below the exact minimum, both kept) ranks by how far
it goes, relative to the spread of the past (`NEW_EXTREME`, as `TailRank` ranks a new extreme),
so new extremes keep their order and never reach 1.

History is bounded by `horizon` as in `TailRank`: two generations count side by side, the
younger started half a horizon after the older; when the older has counted `horizon` values its
counts are cleared and the younger answers. Ranks are among the last horizon/2 to horizon values.
Memory per key is 2·bins counts (uint16 up to a horizon of 65,535) and six numbers; each value
costs one bin look-up and O(bins) additions for a rank (a constant: 329 bins for the gate's grid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stats.tail import NEW_EXTREME


@dataclass(frozen=True)
class OctaveGrid:
    """Bins of u: a centre bin for |u| < 2^(low−1), `per_octave` bins per octave of |u| up to
    2^high (beyond: the outermost bin), on both sides of 0 when `signed`.

    >>> g = OctaveGrid(low=1, high=3, per_octave=2, signed=False)
    >>> g.bins, [g.locate(u) for u in (0.0, 0.9, 1.0, 1.6, 2.0, 3.0, 7.9, 8.0, 1e9)]
    (7, [0, 0, 1, 2, 3, 4, 6, 6, 6])
    >>> OctaveGrid(low=1, high=3, per_octave=2, signed=True).locate(-1.0)
    5
    """

    low: int
    high: int
    per_octave: int
    signed: bool

    @property
    def side(self) -> int:
        """Bins on one side of the centre bin."""
        return (self.high - self.low + 1) * self.per_octave

    @property
    def bins(self) -> int:
        """Bins in all."""
        return 2 * self.side + 1 if self.signed else self.side + 1

    def locate(self, u: float) -> int:
        """The bin of u (NaN: the centre bin; ±inf: the outermost)."""
        a = abs(u)
        if a != a or a == 0.0:  # NaN and 0: the centre
            step = 0
        elif a == math.inf:
            step = self.side
        else:
            m, e = math.frexp(a)
            if e < self.low:
                step = 0
            elif e > self.high:
                step = self.side
            else:
                step = 1 + (e - self.low) * self.per_octave
                step += math.floor((m - 0.5) * (2 * self.per_octave))
        if not self.signed:
            return step
        return self.side + step if u >= 0.0 else self.side - step

    def locate_many(self, u: np.ndarray) -> np.ndarray:
        """`locate` of each element of u (the same bins: frexp is exact)."""
        a = np.abs(u)
        m, e = np.frexp(a)
        k = self.per_octave
        with np.errstate(invalid="ignore"):
            within = np.floor((m - 0.5) * (2 * k)).astype(np.int64)
        step = 1 + (e.astype(np.int64) - self.low) * k + within
        step = np.where((e < self.low) | (a == 0.0) | np.isnan(a), 0, step)
        step = np.where((e > self.high) | (a == np.inf), self.side, step)
        if not self.signed:
            return step
        return np.where(u >= 0.0, self.side + step, self.side - step)


#: Runs of repeats (0, 1, 2, ... readings): each length up to 7 its own bin, 4 bins an octave
#: above, up to 2^20 (81 bins).
RUN_GRID = OctaveGrid(low=1, high=20, per_octave=4, signed=False)
#: A key's values in units of its first window's span around that window's median: 4 bins an
#: octave from 2^-11 of the span out to 2^30 spans, both sides (329 bins). The range is wide
#: because a first window can be far narrower than what follows (a disk's zero writes, then
#: megabytes): on NAB's files 2^-6 to 2^13 lost alarms the exact ranks found; finer octaves
#: (8 or 16 bins) changed little.
VALUE_GRID = OctaveGrid(low=-10, high=30, per_octave=4, signed=True)


#: Bins per block of `HistogramRanks`' block totals.
BLOCK = 16


def count_dtype(horizon: int) -> type:
    """The smallest unsigned integer type that counts up to `horizon`."""
    return np.uint16 if horizon <= np.iinfo(np.uint16).max else np.uint32


class HistogramRank:
    """Rank of a value among a key's last horizon/2–horizon values, from a fixed-size histogram.

    >>> r = HistogramRank(RUN_GRID, horizon=1000)
    >>> for x in (0.0, 0.0, 1.0, 2.0, 0.0, 5.0, 1.0, 0.0):
    ...     r.update(x)
    >>> r.count, r.rank(0.0), r.rank(1.0), r.rank(5.0)  # mid-ranks: (0 + 4/2)/8, (4 + 2/2)/8, ...
    (8, 0.249975, 0.6249375, 0.93740625)
    >>> 0.9999 < r.rank(6.0) < r.rank(20.0) < 1.0  # new extremes, in order
    True
    >>> r.rank_low(0.0)  # the rank of −0 among the values negated: (4 + 4/2)/8
    0.749925
    """

    def __init__(
        self, grid: OctaveGrid, horizon: int, centre: float = 0.0, unit: float = 1.0
    ):
        if horizon < 2 or not unit > 0.0:
            raise ValueError("need horizon ≥ 2 and unit > 0")
        self.grid = grid
        self.horizon = horizon
        self.centre = centre
        self.unit = unit
        bins = grid.bins
        self.counts = [[0] * bins, [0] * bins]  # two generations
        self.n = [0, 0]
        self.top = [-math.inf, -math.inf]  # each generation's exact maximum and minimum
        self.bottom = [math.inf, math.inf]
        self.older = 0  # the generation that answers

    @property
    def count(self) -> int:
        """How many values the answering generation holds."""
        return self.n[self.older]

    def locate(self, x: float) -> int:
        return self.grid.locate((x - self.centre) / self.unit)

    def ranks(self, x: float) -> tuple[float, float]:
        """(`rank`, `rank_low`) of x, with one pass over the bins."""
        g = self.older
        n, top, bottom = self.n[g], self.top[g], self.bottom[g]
        if not n:
            return 0.0, 0.0
        b = self.locate(x)
        counts = self.counts[g]
        below, inside = sum(counts[:b]), counts[b]
        spread = top - bottom
        high = beyond(x - top, spread) if x > top else mid_rank(below, inside, n)
        above = n - below - inside
        return high, beyond(bottom - x, spread) if x < bottom else mid_rank(above, inside, n)

    def rank(self, x: float) -> float:
        """The share of the values below x (its bin's half), scaled into [0, 1 − NEW_EXTREME];
        above the maximum, 1 − NEW_EXTREME plus a share of the rest that grows with the excess."""
        return self.ranks(x)[0]

    def rank_low(self, x: float) -> float:
        """The rank of −x among the values negated: how far into the low tail x is."""
        return self.ranks(x)[1]

    def update(self, x: float) -> None:
        b = self.locate(x)
        g = self.older
        self._count(g, b, x)
        if self.n[g] > self.horizon // 2:
            self._count(1 - g, b, x)
        if self.n[g] >= self.horizon:
            self.counts[g] = [0] * self.grid.bins
            self.n[g], self.top[g], self.bottom[g] = 0, -math.inf, math.inf
            self.older = 1 - g

    def _count(self, g: int, b: int, x: float) -> None:
        self.counts[g][b] += 1
        self.n[g] += 1
        self.top[g] = max(self.top[g], x)
        self.bottom[g] = min(self.bottom[g], x)


def mid_rank(below, inside, n):
    """(below + inside/2) / n, scaled into [0, 1 − NEW_EXTREME] (floats or arrays alike)."""
    return (1.0 - NEW_EXTREME) * (below + 0.5 * inside) / n


def beyond(excess, spread):
    """The rank of a value `excess` beyond every past one, whose values spread over `spread`
    (a flat past counts as a spread of 1): in (1 − NEW_EXTREME, 1), growing with the excess."""
    room = np.where(spread > 0.0, spread, 1.0) if isinstance(spread, np.ndarray) else (
        spread if spread > 0.0 else 1.0
    )
    return 1.0 - NEW_EXTREME * (1.0 - excess / (excess + room))


class HistogramRanks:
    """`HistogramRank` for many keys at once (slots 0, 1, ...), in arrays: each key's counts a
    row of `counts` (slots × 2 generations × bins), its centre and unit its own. The methods take
    each slot at most once per call, as a round of the column engine does.

    A rank needs the count of the bins below x: rather than a prefix sum over every bin of every
    row, each generation also keeps the totals of its blocks of `BLOCK` bins (`blocks`), so the
    count below is the blocks below plus the bins below within x's block (the bins are padded to
    whole blocks).

    >>> many = HistogramRanks(RUN_GRID, horizon=1000)
    >>> many.grow(2)
    >>> for x in (0.0, 0.0, 1.0, 2.0, 0.0, 5.0, 1.0, 0.0):
    ...     many.update(np.array([0, 1]), np.array([x, 2 * x]))
    >>> many.rank(np.array([0, 1]), np.array([1.0, 2.0])).tolist()
    [0.6249375, 0.6249375]
    """

    def __init__(self, grid: OctaveGrid, horizon: int):
        if horizon < 2:
            raise ValueError("need horizon ≥ 2")
        self.grid = grid
        self.horizon = horizon
        self.width = -(-grid.bins // BLOCK) * BLOCK  # the bins, padded to whole blocks
        self.counts = np.zeros((0, 2, self.width), count_dtype(horizon))
        self.blocks = np.zeros((0, 2, self.width // BLOCK), count_dtype(horizon))
        self.n = np.zeros((0, 2), np.int32)
        self.top = np.zeros((0, 2))
        self.bottom = np.zeros((0, 2))
        self.older = np.zeros(0, np.uint8)
        self.centre = np.zeros(0)
        self.unit = np.zeros(0)

    @property
    def slots(self) -> int:
        return len(self.older)

    def grow(self, slots: int) -> None:
        """Room for slots 0..slots-1 (at least); new slots are empty, centre 0 and unit 1."""
        have = self.slots
        if slots <= have:
            return
        extra = max(slots, have + have // 4) - have

        def more(a: np.ndarray, fill: float = 0) -> np.ndarray:
            return np.concatenate([a, np.full((extra, *a.shape[1:]), fill, a.dtype)])

        self.counts, self.n, self.older = more(self.counts), more(self.n), more(self.older)
        self.blocks = more(self.blocks)
        self.top, self.bottom = more(self.top, -np.inf), more(self.bottom, np.inf)
        self.centre, self.unit = more(self.centre), more(self.unit, 1.0)

    def __setstate__(self, state: dict) -> None:
        """Unpickled arrays are made C-contiguous: updates write through flat views of them."""
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                value = np.ascontiguousarray(value)
            setattr(self, name, value)

    def locate(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The bin of x[i] on slot s[i]."""
        return self.grid.locate_many((x - self.centre[s]) / self.unit[s])

    def rank(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        """`HistogramRank.rank` of x[i] on slot s[i]."""
        return self.ranks(s, x)[0]

    def ranks(
        self, s: np.ndarray, x: np.ndarray, b: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(`rank`, `rank_low`) of x[i] on slot s[i] (`b`: their bins, if located already)."""
        q = 2 * s + self.older[s]  # the answering generation's row of (slots · 2) × bins
        n = self.n.reshape(-1)[q]
        if b is None:
            b = self.locate(s, x)
        block, within = np.divmod(b, BLOCK)
        totals = self.blocks.reshape(-1, self.width // BLOCK)[q]
        below = np.where(np.arange(totals.shape[1]) < block[:, None], totals, 0).sum(1, np.int64)
        counts = self.counts.reshape(-1)
        first = q * self.width + block * BLOCK
        bins = counts[first[:, None] + np.arange(BLOCK)]
        below += np.where(np.arange(BLOCK) < within[:, None], bins, 0).sum(1, np.int64)
        inside = counts[q * self.width + b].astype(np.int64)
        top, bottom = self.top.reshape(-1)[q], self.bottom.reshape(-1)[q]
        spread = top - bottom
        safe = np.maximum(n, 1)
        with np.errstate(invalid="ignore", divide="ignore"):  # the branch np.where drops
            high = np.where(x > top, beyond(x - top, spread), mid_rank(below, inside, safe))
            above = n - below - inside
            low = np.where(x < bottom, beyond(bottom - x, spread), mid_rank(above, inside, safe))
        empty = n == 0
        return np.where(empty, 0.0, high), np.where(empty, 0.0, low)

    def update(self, s: np.ndarray, x: np.ndarray, b: np.ndarray | None = None) -> None:
        """`HistogramRank.update(x[i])` on slot s[i] (each slot at most once; `b`: their bins,
        if located already)."""
        if not len(s):
            return
        if b is None:
            b = self.locate(s, x)
        g = self.older[s].astype(np.intp)
        q = 2 * s + g
        self._count(q, b, x)
        n = self.n.reshape(-1)[q]
        young = n > self.horizon // 2
        if young.any():
            self._count((q + 1 - 2 * g)[young], b[young], x[young])
        done = n >= self.horizon
        if done.any():
            k, old = s[done], g[done]
            self.counts[k, old] = 0
            self.blocks[k, old] = 0
            self.n[k, old] = 0
            self.top[k, old], self.bottom[k, old] = -np.inf, np.inf
            self.older[k] = 1 - old

    def _count(self, q: np.ndarray, b: np.ndarray, x: np.ndarray) -> None:
        """Count x[i] in bin b[i] of generation row q[i] (2 · slot + generation)."""
        self.counts.reshape(-1)[q * self.width + b] += 1
        self.blocks.reshape(-1)[q * (self.width // BLOCK) + b // BLOCK] += 1
        self.n.reshape(-1)[q] += 1
        top, bottom = self.top.reshape(-1), self.bottom.reshape(-1)
        top[q] = np.maximum(top[q], x)
        bottom[q] = np.minimum(bottom[q], x)
