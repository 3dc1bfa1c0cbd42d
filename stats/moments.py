"""Count, mean, variance and standard deviation, cumulative (mergeable) and over a window.

Both use Welford's update on values shifted by a reference value (the stream's first value, or
the window's mean at its last exact re-sum). The shift is what makes them stable far from zero:
on 10**6 values drawn from N(1e9, 1), plain Welford and river's `stats.Var` (the same update)
end 3.4e-9 relative from numpy's two-pass variance; the shifted update ends 2e-14 from it
(measured with numpy 2.4, river 0.26). That is why these are written here rather than taken from
river, whose `Mean` and `Var` merge but are not shifted.
"""

from __future__ import annotations

import math

from stats.base import is_missing


class _ShiftedMoments:
    """Mean, variance and std from the count `n`, the `shift`, and the mean and M2 of the shifted
    values, which both the cumulative and the rolling statistics keep."""

    n: int
    ddof: int
    shift: float
    _mean: float
    _m2: float

    @property
    def mean(self) -> float | None:
        return self.shift + self._mean if self.n else None

    @property
    def variance(self) -> float | None:
        return self._m2 / (self.n - self.ddof) if self.n > self.ddof else None

    @property
    def std(self) -> float | None:
        var = self.variance
        return None if var is None else math.sqrt(var)


class Moments(_ShiftedMoments):
    """Cumulative count, mean, variance (`ddof`) and std; `merge` uses Chan et al.'s formula.

    >>> m = Moments()
    >>> for x in (2.0, None, 4.0, float("nan"), 9.0):
    ...     m.update(x)
    >>> m.n, m.n_missing, m.mean, m.variance
    (3, 2, 5.0, 13.0)
    >>> a, b = Moments(), Moments()
    >>> a.update(2.0); a.update(4.0); b.update(9.0)
    >>> a.merge(b).variance
    13.0
    """

    def __init__(self, ddof: int = 1):
        self.ddof = ddof
        self.n = 0
        self.n_missing = 0
        self.shift = 0.0  # the first observed value
        self._mean = 0.0  # mean of (x - shift)
        self._m2 = 0.0  # sum of squared deviations from the mean

    def update(self, x: float | None) -> None:
        """Fold in one value (a missing one is only counted)."""
        if is_missing(x):
            self.n_missing += 1
            return
        if self.n == 0:
            self.shift = float(x)
        d = x - self.shift
        self.n += 1
        delta = d - self._mean
        self._mean += delta / self.n
        self._m2 += delta * (d - self._mean)

    def merge(self, other: Moments) -> Moments:
        """The moments of this stream followed by `other` (neither is changed)."""
        out = Moments(self.ddof)
        out.n_missing = self.n_missing + other.n_missing
        if other.n == 0 or self.n == 0:
            src = self if other.n == 0 else other
            out.n, out.shift, out._mean, out._m2 = src.n, src.shift, src._mean, src._m2
            return out
        n = self.n + other.n
        delta = (other._mean + (other.shift - self.shift)) - self._mean
        out.n = n
        out.shift = self.shift
        out._mean = self._mean + delta * other.n / n
        out._m2 = self._m2 + other._m2 + delta * delta * self.n * other.n / n
        return out


class RollingMoments(_ShiftedMoments):
    """Count, mean, variance and std of the last `window` observed values.

    Each value is added and the oldest removed with Welford's update and its inverse (O(1)); once
    per lap of the ring the sums are recomputed exactly around the window's mean (O(window) every
    `window` values, so O(1) amortised), so rounding errors never build up: the error stays within
    a few ulps of the largest value of the last two laps (a value that has just left the window
    can leave its rounding behind until the next re-sum).

    >>> r = RollingMoments(3)
    >>> for x in (1.0, 2.0, None, 3.0, 10.0):
    ...     r.update(x)
    >>> r.n, r.n_missing, r.mean, r.variance
    (3, 1, 5.0, 19.0)
    """

    def __init__(self, window: int, ddof: int = 1):
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.ddof = ddof
        self.n = 0
        self.n_missing = 0
        self._ring = [0.0] * window
        self._next = 0
        self.shift = 0.0
        self._mean = 0.0
        self._m2 = 0.0

    def update(self, x: float | None) -> None:
        """Push one value into the window (a missing one is only counted)."""
        if is_missing(x):
            self.n_missing += 1
            return
        x = float(x)
        if self.n == 0:
            self.shift = x
        if self.n == self.window:
            self._remove(self._ring[self._next] - self.shift)
        self._ring[self._next] = x
        self._add(x - self.shift)
        self._next += 1
        if self._next == self.window:
            self._next = 0
            self._resum()

    def _add(self, d: float) -> None:
        self.n += 1
        delta = d - self._mean
        self._mean += delta / self.n
        self._m2 += delta * (d - self._mean)

    def _remove(self, d: float) -> None:
        self.n -= 1
        if self.n == 0:
            self._mean = self._m2 = 0.0
            return
        delta = d - self._mean
        self._mean -= delta / self.n
        self._m2 = max(0.0, self._m2 - delta * (d - self._mean))

    def _resum(self) -> None:
        values = self._ring[: self.n]
        self.shift = math.fsum(values) / self.n
        deviations = [v - self.shift for v in values]
        self._mean = math.fsum(deviations) / self.n
        self._m2 = math.fsum((d - self._mean) ** 2 for d in deviations)
