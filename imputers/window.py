"""Windowed imputation over the last N observed values of each field, in a numpy ring buffer.

Observed values enter the window; imputed ones never do, so an outage cannot feed on itself.
Per reading the cost is O(1) for each observed value (one slot written, a running sum updated)
and, for `median`, O(N) for each imputed value; the buffer is allocated once per sensor.
The running sum is recomputed exactly (`math.fsum`) each time the ring wraps, an amortised O(1)
that keeps its error within N roundings: it never builds up, however long the stream.
"""

from __future__ import annotations

import math
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
        self._buffer = np.zeros((n, window))  # row j: field j's last observations
        self._next = [0] * n  # slot the next observation of field j goes to
        self._count = [0] * n  # observations held (≤ window)
        self._sum = [0.0] * n  # running sum of the held observations
        self._attach()

    def _attach(self) -> None:
        # a flat memoryview of the buffer (field j's slot k at j * window + k): the buffer stays
        # numpy's, but a scalar read or write through a memoryview costs about half of numpy's
        # own indexing (the hot path does two per value)
        self._flat = memoryview(self._buffer.reshape(-1))
        self._layout = tuple((j, name, j * self.window) for j, name in enumerate(self.fields))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_flat"], state["_layout"]  # memoryviews do not pickle; rebuilt on load
        return state

    def __setstate__(self, state: dict) -> None:
        if "_carry" in state:  # a snapshot from before 2026-11-28: one column per field
            state = _from_columns(state)
        self.__dict__.update(state)
        self._attach()

    def copy(self) -> WindowImputer:
        """An independent copy (for snapshots): the buffer and counters are copied."""
        clone = object.__new__(WindowImputer)
        clone.__dict__.update(self.__dict__)
        clone._buffer = self._buffer.copy()
        clone._next, clone._count = self._next.copy(), self._count.copy()
        clone._sum = self._sum.copy()
        clone._attach()
        return clone

    def estimate(self, j: int) -> float | None:
        """The value to impute for field j now, or None when it has no observed history."""
        count = self._count[j]
        if count == 0:
            return None
        if self.strategy == "mean":
            return self._sum[j] / count
        if self.strategy == "median":
            return float(np.median(self._buffer[j, :count]))
        return self._buffer.item(j, self._next[j] - 1)  # the slot written last

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
        window, flat, counts, sums, nexts = (
            self.window,
            self._flat,
            self._count,
            self._sum,
            self._next,
        )
        for j, name, base in self._layout:
            value = values.get(name)
            if value is None:
                estimate = self.estimate(j)
                if estimate is None:
                    missing.append(name)
                else:
                    if out is values:
                        out = dict(values)
                    out[name] = estimate
                    imputed.append(name)
                continue
            # observed: it enters the window, evicting the oldest once the window is full
            value = float(value)
            slot = nexts[j]
            if counts[j] == window:
                sums[j] += value - flat[base + slot]
            else:
                counts[j] += 1
                sums[j] += value
            flat[base + slot] = value
            slot += 1
            if slot == window:  # each time round, the sum is made exact again
                slot, sums[j] = 0, math.fsum(flat[base : base + window])
            nexts[j] = slot
        return out, imputed, missing


def _from_columns(state: dict) -> dict:
    """An older snapshot's state (buffer column j = field j, a compensated sum, the last value
    kept apart) in today's layout (row j = field j; the last value is the slot written last)."""
    state = dict(state)
    state["_buffer"] = np.ascontiguousarray(state["_buffer"].T)
    carries = state.pop("_carry")
    state["_sum"] = [total + carry for total, carry in zip(state["_sum"], carries, strict=True)]
    state.pop("_last", None)
    return state
