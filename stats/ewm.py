"""Exponentially weighted moving average, cumulative (mergeable) and over a window.

The cumulative one is the usual recursion m ← α·x + (1 − α)·m started at the first value (pandas
`ewm(alpha=α, adjust=False)`, river's `EWMean(fading_factor=α)`); it is written here because
river's (a Rust object) cannot merge. The merge keeps each partial's first value: in the
concatenation that value gets weight α(1 − α)^(n−1) instead of (1 − α)^(n−1), and the first
partial's mean gets (1 − α)^n.
"""

from __future__ import annotations

import math

from stats.base import is_missing


class EWMean:
    """m₁ = x₁, mₜ = α·xₜ + (1 − α)·mₜ₋₁ over the observed values.

    >>> e = EWMean(0.5)
    >>> for x in (2.0, None, 4.0, 8.0):
    ...     e.update(x)
    >>> e.mean, e.n, e.n_missing
    (5.5, 3, 1)
    >>> a, b = EWMean(0.5), EWMean(0.5)
    >>> a.update(2.0); b.update(4.0); b.update(8.0)
    >>> a.merge(b).mean
    5.5
    """

    def __init__(self, alpha: float = 0.5):
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.n = 0
        self.n_missing = 0
        self.first: float | None = None
        self.mean: float | None = None

    def update(self, x: float | None) -> None:
        if is_missing(x):
            self.n_missing += 1
            return
        self.n += 1
        if self.mean is None:
            self.first = self.mean = float(x)
        else:
            self.mean += self.alpha * (x - self.mean)

    def merge(self, other: EWMean) -> EWMean:
        """The EWMA of this stream followed by `other` (same α; neither is changed)."""
        if other.alpha != self.alpha:
            raise ValueError("cannot merge EWMeans with different alpha")
        out = EWMean(self.alpha)
        out.n = self.n + other.n
        out.n_missing = self.n_missing + other.n_missing
        if self.n == 0 or other.n == 0:
            src = self if other.n == 0 else other
            out.first, out.mean = src.first, src.mean
            return out
        out.first = self.first
        decay = (1.0 - self.alpha) ** other.n
        out.mean = other.mean + decay * (self.mean - other.first)
        return out


class RollingEWMean:
    """Exponentially weighted mean of the last `window` observed values, weights normalised.

    The newest value weighs 1, one of age k weighs (1 − α)^k; the mean is Σ wx / Σ w. The sum is
    kept in O(1) per value (decay, add the new value, drop the one leaving the window) and
    recomputed exactly once per lap of the ring, so its rounding error stays within a few ulps of
    the largest value of the last two windows.

    >>> r = RollingEWMean(2, alpha=0.5)
    >>> for x in (8.0, 2.0, None, 4.0):
    ...     r.update(x)
    >>> r.mean  # (4 + 0.5 * 2) / 1.5
    3.3333333333333335
    """

    def __init__(self, window: int, alpha: float = 0.5):
        if window < 1:
            raise ValueError("window must be at least 1")
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self.window = window
        self.alpha = alpha
        self.n = 0
        self.n_missing = 0
        self._ring = [0.0] * window
        self._next = 0
        self._sum = 0.0  # Σ (1 − α)^age · x over the window
        self._tail = (1.0 - alpha) ** window  # the weight a value leaving the window would have

    def update(self, x: float | None) -> None:
        if is_missing(x):
            self.n_missing += 1
            return
        x = float(x)
        keep = 1.0 - self.alpha
        self._sum = keep * self._sum + x
        if self.n == self.window:
            self._sum -= self._tail * self._ring[self._next]
        else:
            self.n += 1
        self._ring[self._next] = x
        self._next += 1
        if self._next == self.window:
            self._next = 0
            # ring now holds oldest..newest in index order: re-sum exactly
            self._sum = math.fsum(
                keep ** (self.window - 1 - i) * v for i, v in enumerate(self._ring)
            )

    @property
    def mean(self) -> float | None:
        if self.n == 0:
            return None
        total_weight = (1.0 - (1.0 - self.alpha) ** self.n) / self.alpha
        return self._sum / total_weight
