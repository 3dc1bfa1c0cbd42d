"""Rounds: a batch where a sensor appears more than once, taken as pieces that hold each slot once.

The vectorised stages update each slot's state once per call, so a batch with a sensor's rows
of two polls (or a placeholder before its reading) is split: round k holds every slot's k-th
row, in batch order, and rounds run one after another, so each sensor's rows are taken in order.
"""

from __future__ import annotations

import numpy as np

from columns.batch import Columns


def occurrences(slots: np.ndarray) -> np.ndarray:
    """For each row, how many earlier rows have its slot (0 for a slot's first row): its round.

    >>> occurrences(np.array([4, 2, 4, 4, 2])).tolist()
    [0, 0, 1, 2, 1]
    >>> occurrences(np.array([3, 1])).tolist()
    [0, 0]
    """
    if not len(slots) or np.bincount(slots).max() <= 1:  # the usual case: each slot once
        return np.zeros(len(slots), np.int64)
    order = np.argsort(slots, kind="stable")
    ranked = slots[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    sizes = np.diff(np.r_[starts, len(slots)])
    within = np.arange(len(slots)) - np.repeat(starts, sizes)
    out = np.empty(len(slots), np.int64)
    out[order] = within
    return out


def take(columns: Columns, rows: np.ndarray) -> Columns:
    """The rows `rows` of a batch, in that order.

    >>> values = np.array([[1.0], [2.0], [3.0]])
    >>> c = Columns(np.array([7, 9, 7]), np.array([0, 0, 120]), ("pm",), values)
    >>> take(c, np.array([0, 2])).values.ravel().tolist()
    [1.0, 3.0]
    """
    text = None if columns.text is None else [columns.text[i] for i in rows.tolist()]
    return Columns(
        columns.sensors[rows],
        columns.times[rows],
        columns.fields,
        columns.values[rows],
        text,
        columns.origin,
    )
