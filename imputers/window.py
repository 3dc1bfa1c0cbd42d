"""Windowed imputation over the last N observed values of each field, in a numpy ring buffer.

Observed values enter the window; imputed ones never do, so an outage cannot feed on itself.
Per reading the cost is O(1) for each observed value (one slot written, a running sum updated)
and, for `median`, O(N) for each imputed value; the buffer is allocated once per sensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STRATEGIES = ("mean", "median", "last")


class WindowImputer:
    """Fill missing values with the mean, median or last of the field's last `window` observations.

    >>> imp = WindowImputer(["pm"], window=3)
    >>> [imp.impute_one({"pm": v})[0]["pm"] for v in (1.0, 2.0, None, 6.0, 7.0, None)]
    [1.0, 2.0, 1.5, 6.0, 7.0, 5.0]
    """

    def __init__(self, fields: Sequence[str], window: int = 10, strategy: str = "mean"):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
        if window < 1:
            raise ValueError("window must be at least 1")
        self.fields = tuple(fields)
        self.window = window
        self.strategy = strategy
        n = len(self.fields)
        self._buffer = np.zeros((window, n))  # column j: field j's last observations
        self._next = [0] * n  # slot the next observation of field j goes to
        self._count = [0] * n  # observations held (≤ window)
        self._sum = [0.0] * n  # running sum of the held observations
        self._carry = [0.0] * n  # its compensation (the low-order bits the sum lost)
        self._last: list[float | None] = [None] * n

    def copy(self) -> WindowImputer:
        """An independent copy (for snapshots): the buffer and counters are copied."""
        clone = object.__new__(WindowImputer)
        clone.__dict__.update(self.__dict__)
        clone._buffer = self._buffer.copy()
        clone._next, clone._count = self._next.copy(), self._count.copy()
        clone._sum, clone._last = self._sum.copy(), self._last.copy()
        clone._carry = self._carry.copy()
        return clone

    def learn(self, j: int, value: float) -> None:
        """Push an observed value of field j into its window.

        The running sum is compensated (Neumaier), so adding the new value and removing the
        evicted one never lets rounding errors build up, however long the stream.
        """
        slot = self._next[j]
        total, carry = self._sum[j], self._carry[j]
        if self._count[j] == self.window:
            old = -self._buffer.item(slot, j)
            new = total + old
            carry += (total - new) + old if abs(total) >= abs(old) else (old - new) + total
            total = new
        else:
            self._count[j] += 1
        new = total + value
        carry += (total - new) + value if abs(total) >= abs(value) else (value - new) + total
        self._sum[j], self._carry[j] = new, carry
        self._buffer[slot, j] = value
        self._last[j] = value
        slot += 1
        self._next[j] = 0 if slot == self.window else slot

    def estimate(self, j: int) -> float | None:
        """The value to impute for field j now, or None when it has no observed history."""
        count = self._count[j]
        if count == 0:
            return None
        if self.strategy == "mean":
            return (self._sum[j] + self._carry[j]) / count
        if self.strategy == "median":
            return float(np.median(self._buffer[:count, j]))
        return self._last[j]

    def impute_one(
        self, values: dict[str, float | None]
    ) -> tuple[dict[str, float | None], list[str], list[str]]:
        """Return `(values with gaps filled, imputed field names, still-missing field names)`.

        The filled values are a new dict, or `values` itself when nothing was filled (it is
        never modified). Fields not handled by this imputer pass through unchanged.
        """
        out = values  # copied only when a value is filled in
        imputed: list[str] = []
        missing: list[str] = []
        for j, name in enumerate(self.fields):
            value = values.get(name)
            if value is not None:
                self.learn(j, value)
                continue
            estimate = self.estimate(j)
            if estimate is None:
                missing.append(name)
            else:
                if out is values:
                    out = dict(values)
                out[name] = estimate
                imputed.append(name)
        return out, imputed, missing
