"""Rounds: a batch where a sensor appears more than once, taken as pieces that hold each slot once.

The vectorised stages update each slot's state once per call, so a batch with a sensor's rows
of two polls (or a placeholder before its reading) is split: round k holds every slot's k-th
row, in batch order, and rounds run one after another, so each sensor's rows are taken in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from columns.batch import Work


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


def piece(work: Work, rows: np.ndarray) -> Work:
    """The rows `rows` of a `Work`, as a `Work` of their own (arrays copied; the rows' flags
    and reasons are the same dicts and lists, under the piece's row numbers)."""
    where = {int(i): n for n, i in enumerate(rows.tolist())}
    return Work(
        work.sensors[rows],
        work.times[rows],
        list(work.fields),
        work.values[rows],
        work.placeholder[rows],
        work.imputed[rows],
        work.missing[rows],
        work.score[rows],
        work.status[rows],
        {where[i]: f for i, f in work.flags.items() if i in where},
        {where[i]: r for i, r in work.reasons.items() if i in where},
        None if work.text is None else [work.text[i] for i in rows.tolist()],
        work.origin,
    )


def put_back(work: Work, rows: np.ndarray, part: Work) -> None:
    """Write what a stage did to `part` (the rows `rows` of `work`) into `work`: values, masks,
    score and status, flags and reasons, and the columns it added (all missing elsewhere)."""
    for name in part.fields[len(work.fields) :]:
        work.add_column(name)
    width = len(part.fields)
    work.values[rows, :width] = part.values
    work.imputed[rows, :width] = part.imputed
    work.missing[rows, :width] = part.missing
    work.score[rows] = part.score
    work.status[rows] = part.status
    at = rows.tolist()
    for n, found in part.flags.items():
        work.flags[at[n]] = found
    for n, found in part.reasons.items():
        work.reasons[at[n]] = found


def by_rounds(
    apply: Callable[[Work, np.ndarray, dict[str, int]], Any],
    work: Work,
    slots: np.ndarray,
    counts: dict[str, int],
    occurrence: np.ndarray | None = None,
) -> list[Any]:
    """Run a stage's `apply` that takes each slot at most once a call on a batch where slots
    repeat: round k (every slot's k-th row, in batch order) after round k-1, each on a `piece`
    written back into `work`. What the rounds return (records) comes out in round order."""
    if occurrence is None:
        occurrence = occurrences(slots)
    made: list[Any] = []
    rounds = int(occurrence.max()) + 1 if len(occurrence) else 0
    if rounds <= 1:
        return list(apply(work, slots, counts) or ())
    order = np.argsort(occurrence, kind="stable")
    bounds = np.searchsorted(occurrence[order], np.arange(rounds + 1))
    for k in range(rounds):
        rows = order[bounds[k] : bounds[k + 1]]
        part = piece(work, rows)
        found = apply(part, slots[rows], counts)
        put_back(work, rows, part)
        if found:
            made.extend(found)
    return made


def takes_repeats(stage: Any) -> bool:
    """Whether a stage takes a batch where a slot repeats (its rows in order) in one call:
    its class says so with `ALONG = True`; else the shard logic runs it `by_rounds`."""
    return getattr(stage, "ALONG", False)
