"""Per-slot state arrays that grow with a shard's sensors.

A stage of the column path keeps each sensor's state at its slot's index in arrays; `grown`
gives an array room for more slots, the new ones set to the stage's fresh value. Capacity grows
by at least a quarter each time, so a shard whose sensors arrive one at a time copies its state
O(log n) times, not n times, and holds at most a quarter more than it needs.
"""

from __future__ import annotations

import numpy as np


def capacity(have: int, need: int) -> int:
    """The capacity to grow to from `have` for `need` slots (`have` when it is enough).

    >>> capacity(0, 3), capacity(100, 101), capacity(100, 300), capacity(8, 5)
    (3, 125, 300, 8)
    """
    if need <= have:
        return have
    return max(need, have + have // 4)


def grown(array: np.ndarray, slots: int, fresh: float | int | bool) -> np.ndarray:
    """`array` (slots along its first axis) with room for `slots` slots, new ones `fresh`.

    >>> grown(np.array([1, 2]), 4, -1).tolist()
    [1, 2, -1, -1]
    >>> grown(np.zeros((1, 2)), 2, np.nan).tolist()
    [[0.0, 0.0], [nan, nan]]
    """
    have = len(array)
    size = capacity(have, slots)
    if size == have:
        return array
    out = np.full((size, *array.shape[1:]), fresh, dtype=array.dtype)
    out[:have] = array
    return out


def span(slots: np.ndarray) -> slice | np.ndarray:
    """`slots` as a slice when they are consecutive and ascending (a shard's usual poll: every
    sensor, in the payload's order), else `slots` itself: state read through a slice is a view
    and written through one is a block copy, several times cheaper than gathering rows.

    >>> span(np.array([3, 4, 5])), span(np.array([3, 5])).tolist(), span(np.array([], int))
    (slice(3, 6, None), [3, 5], slice(0, 0, None))
    """
    n = len(slots)
    if not n:
        return slice(0, 0)
    first = int(slots[0])
    if int(slots[-1]) - first != n - 1 or (n > 2 and not (np.diff(slots) == 1).all()):
        return slots
    return slice(first, first + n)
