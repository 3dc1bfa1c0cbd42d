"""Minimum and maximum, cumulative (mergeable) and over a window.

The rolling version keeps two monotonic deques (van Herk / Gil–Werman style "ascending minima"):
each value is pushed and popped at most once, so an update is O(1) amortised whatever the
window. river's `RollingMin`/`RollingMax` keep a sorted list of the window instead, which costs
an O(window) insertion per value; hence this module.
"""

from __future__ import annotations

from collections import deque

from stats.base import is_missing


class Extremes:
    """Cumulative min and max of the observed values.

    >>> e = Extremes()
    >>> for x in (3.0, None, -1.0, 7.0):
    ...     e.update(x)
    >>> e.min, e.max, e.n, e.n_missing
    (-1.0, 7.0, 3, 1)
    """

    def __init__(self):
        self.n = 0
        self.n_missing = 0
        self.min: float | None = None
        self.max: float | None = None

    def update(self, x: float | None) -> None:
        if is_missing(x):
            self.n_missing += 1
            return
        self.n += 1
        if self.min is None or x < self.min:
            self.min = x
        if self.max is None or x > self.max:
            self.max = x

    def merge(self, other: Extremes) -> Extremes:
        """The extremes of this stream followed by `other` (neither is changed)."""
        out = Extremes()
        out.n = self.n + other.n
        out.n_missing = self.n_missing + other.n_missing
        lows = [v for v in (self.min, other.min) if v is not None]
        highs = [v for v in (self.max, other.max) if v is not None]
        out.min = min(lows) if lows else None
        out.max = max(highs) if highs else None
        return out


class RollingExtremes:
    """Min and max of the last `window` observed values.

    >>> r = RollingExtremes(3)
    >>> out = []
    >>> for x in (5.0, 1.0, None, 4.0, 6.0, 2.0):
    ...     r.update(x)
    ...     out.append((r.min, r.max))
    >>> out
    [(5.0, 5.0), (1.0, 5.0), (1.0, 5.0), (1.0, 5.0), (1.0, 6.0), (2.0, 6.0)]
    """

    def __init__(self, window: int):
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.n_seen = (
            0  # observed values so far; value i is in the window while i > n_seen - window
        )
        self.n_missing = 0
        self._lows: deque[tuple[int, float]] = deque()  # increasing values, oldest first
        self._highs: deque[tuple[int, float]] = deque()  # decreasing values, oldest first

    @property
    def n(self) -> int:
        """Observed values in the window."""
        return min(self.n_seen, self.window)

    def update(self, x: float | None) -> None:
        if is_missing(x):
            self.n_missing += 1
            return
        i = self.n_seen
        self.n_seen += 1
        while self._lows and self._lows[-1][1] >= x:
            self._lows.pop()
        self._lows.append((i, x))
        while self._highs and self._highs[-1][1] <= x:
            self._highs.pop()
        self._highs.append((i, x))
        oldest = self.n_seen - self.window
        if self._lows[0][0] < oldest:
            self._lows.popleft()
        if self._highs[0][0] < oldest:
            self._highs.popleft()

    @property
    def min(self) -> float | None:
        return self._lows[0][1] if self._lows else None

    @property
    def max(self) -> float | None:
        return self._highs[0][1] if self._highs else None
