"""Quantiles (median, p95, ...): a mergeable sketch for the whole stream, exact over a window.

`QuantileSketch` is a deterministic compactor sketch (Manku, Rajagopalan and Lindsay, SIGMOD
1998; the deterministic core of Karnin, Lang and Liberty's KLL, FOCS 2016): level h holds values
that each stand for 2^h observations; a full level is sorted and every other value (alternating
offset) moves up a level. Each compaction at level h moves any rank by at most 2^h, and the sketch
adds that up in `rank_error`, a guaranteed bound: the value returned for q has a true rank within
`rank_error` of q·(n − 1). Memory is O(k·log(n/k)). river's `stats.Quantile` (P²) uses constant
memory but has no error bound and cannot merge, hence this class.

`RollingQuantile` wraps river's `stats.RollingQuantile` (exact, numpy's linear interpolation,
O(log window) search and an O(window) insertion per value), adding only the missing-value count.
"""

from __future__ import annotations

from river import stats as river_stats

from stats.base import is_missing


class QuantileSketch:
    """Approximate quantiles of the whole stream with a guaranteed rank error; mergeable.

    >>> s = QuantileSketch(k=8)
    >>> for x in range(100):
    ...     s.update(float(x))
    >>> s.n, s.rank_error <= 100 * 4 / 8
    (100, True)
    >>> abs(s.quantile(0.5) - 49.5) <= s.rank_error
    True
    """

    def __init__(self, k: int = 200):
        if k < 2:
            raise ValueError("k must be at least 2")
        self.k = k
        self.n = 0
        self.n_missing = 0
        self.rank_error = 0  # proven bound on |estimated rank − true rank|
        self.levels: list[list[float]] = [[]]
        self._offsets: list[int] = [0]  # alternating 0/1 per level

    def update(self, x: float | None) -> None:
        if is_missing(x):
            self.n_missing += 1
            return
        self.n += 1
        self.levels[0].append(float(x))
        if len(self.levels[0]) >= self.k:
            self._compress()

    def _compress(self) -> None:
        h = 0
        while h < len(self.levels):
            if len(self.levels[h]) >= self.k:
                self._compact(h)
            h += 1

    def _compact(self, h: int) -> None:
        items = sorted(self.levels[h])
        kept = [items.pop()] if len(items) % 2 else []
        offset = self._offsets[h]
        self._offsets[h] = 1 - offset
        if h + 1 == len(self.levels):
            self.levels.append([])
            self._offsets.append(0)
        self.levels[h + 1].extend(items[offset::2])
        self.levels[h] = kept
        self.rank_error += 1 << h

    def quantile(self, q: float) -> float | None:
        """A value whose rank in the stream is within `rank_error` of q·(n − 1)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be in [0, 1]")
        if self.n == 0:
            return None
        weighted = sorted((v, 1 << h) for h, level in enumerate(self.levels) for v in level)
        target = q * (self.n - 1)
        cumulative = 0
        for value, weight in weighted:
            cumulative += weight
            if cumulative > target:
                return value
        return weighted[-1][0]

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A sketch of this stream followed by `other` (neither is changed); its `rank_error` is
        the sum of both bounds plus that of the compactions the merge makes."""
        out = QuantileSketch(max(self.k, other.k))
        out.n = self.n + other.n
        out.n_missing = self.n_missing + other.n_missing
        out.rank_error = self.rank_error + other.rank_error
        depth = max(len(self.levels), len(other.levels))
        out.levels = [[] for _ in range(depth)]
        out._offsets = [0] * depth
        for sketch in (self, other):
            for h, level in enumerate(sketch.levels):
                out.levels[h].extend(level)
        out._compress()
        return out


class RollingQuantile:
    """The q-quantile of the last `window` observed values (numpy's default interpolation).

    >>> r = RollingQuantile(0.5, window=3)
    >>> for x in (5.0, None, 1.0, 3.0, 9.0):
    ...     r.update(x)
    >>> r.value, r.n, r.n_missing
    (3.0, 3, 1)
    """

    def __init__(self, q: float, window: int):
        if window < 1:
            raise ValueError("window must be at least 1")
        self.q = q
        self.window = window
        self.n_seen = 0
        self.n_missing = 0
        self._inner = river_stats.RollingQuantile(q, window)

    @property
    def n(self) -> int:
        return min(self.n_seen, self.window)

    def update(self, x: float | None) -> None:
        if is_missing(x):
            self.n_missing += 1
            return
        self.n_seen += 1
        self._inner.update(float(x))

    @property
    def value(self) -> float | None:
        return self._inner.get() if self.n_seen else None
