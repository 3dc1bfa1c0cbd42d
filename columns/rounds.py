"""A batch where a sensor appears many times (a long history of few sensors, or a placeholder
before its reading): its rows along time, or in rounds.

The shard logic runs the stages one after another over a whole batch. A stage that takes a
slot's several rows in one call, in order (`ALONG = True`), computes its recurrences along
each slot's rows with `Along`: a value carried from the slot's previous row, a run counted, a
value held since a reset, a running maximum, every row at once from each slot's state. Any
other stage is run `by_rounds`: round k holds every slot's k-th row, in batch order, each round
a `piece` of its own written back (`put_back`) before the next, so each sensor's rows are taken
in order.
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


def piece(
    work: Work,
    rows: np.ndarray,
    flags: dict[int, dict[str, str]] | None = None,
    reasons: dict[int, list[str]] | None = None,
) -> Work:
    """The rows `rows` of a `Work`, as a `Work` of their own (arrays copied; the rows' flags
    and reasons are the same dicts and lists, under the piece's row numbers: `flags` and
    `reasons` when the caller has them so already)."""
    if flags is None or reasons is None:
        where = {int(i): n for n, i in enumerate(rows.tolist())}
        flags = {where[i]: f for i, f in work.flags.items() if i in where}
        reasons = {where[i]: r for i, r in work.reasons.items() if i in where}
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
        flags,
        reasons,
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
    local = np.empty(len(order), np.int64)  # each row's number in its round's piece
    local[order] = np.arange(len(order)) - bounds[occurrence[order]]
    flags: list[dict] = [{} for _ in range(rounds)]
    reasons: list[dict] = [{} for _ in range(rounds)]
    for split, found in ((flags, work.flags), (reasons, work.reasons)):
        for i, value in found.items():
            split[occurrence[i]][int(local[i])] = value
    for k in range(rounds):
        rows = order[bounds[k] : bounds[k + 1]]
        part = piece(work, rows, flags[k], reasons[k])
        found = apply(part, slots[rows], counts)
        put_back(work, rows, part)
        if found:
            made.extend(found)
    return made


def takes_repeats(stage: Any) -> bool:
    """Whether a stage takes a batch where a slot repeats (its rows in order) in one call:
    its class says so with `ALONG = True`; else the shard logic runs it `by_rounds`."""
    return getattr(stage, "ALONG", False)


class Along:
    """A batch's rows as each slot's rows in order: the recurrences a stage computes along time
    (a value carried from a slot's previous row, a run counted, a value held since a reset),
    for every row at once, starting from each slot's state. Arrays are per row, in batch order;
    `state` arguments are each row's slot's state (`state_array[slots]`), read at a slot's first
    row. When every slot is once in the batch, each is just the state's one step.

    >>> along = Along(np.array([5, 2, 5, 5]))
    >>> along.previous(np.array([1.0, 2.0, 3.0, 4.0]), np.array([9.0, 8.0, 9.0, 9.0])).tolist()
    [9.0, 8.0, 1.0, 3.0]
    >>> along.counter(np.array([True, True, False, True]), np.array([4, 0, 4, 4])).tolist()
    [5, 1, 0, 1]
    >>> along.last.tolist()
    [1, 3]
    """

    def __init__(self, slots: np.ndarray):
        n = len(slots)
        self.n = n
        if not n or np.bincount(slots).max() <= 1:  # each slot once: no order to keep
            self.order = None
            self.first = np.ones(n, bool)
            self.last = np.arange(n)
            return
        order = np.argsort(slots, kind="stable")
        ranked = slots[order]
        first = np.r_[True, ranked[1:] != ranked[:-1]]
        self.order = order
        self._first = first  # in slot order
        self._start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        self.first = np.empty(n, bool)
        self.first[order] = first
        self.last = np.sort(order[np.r_[first[1:], True]])  # each slot's last row

    def _back(self, ranked: np.ndarray) -> np.ndarray:
        out = np.empty_like(ranked)
        out[self.order] = ranked
        return out

    def previous(self, x: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Each row's slot's previous row's `x` (along the first axis), `state` at a first row."""
        if self.order is None:
            return state.copy()
        ranked = x[self.order]
        out = np.empty_like(ranked)
        out[1:] = ranked[:-1]
        out[self._first] = state[self.order][self._first]
        return self._back(out)

    def _since(self, reset: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """In slot order: each row's position, its slot's last reset at or before it, and
        whether that reset is its slot's (else the run goes back to the state)."""
        pos = np.arange(self.n)
        at = np.maximum.accumulate(np.where(reset[self.order], pos, -1))
        return pos, at, at >= self._start

    def counter(self, go_on: np.ndarray, state: np.ndarray) -> np.ndarray:
        """A run counted along each slot's rows: the previous row's (or the state's) count + 1
        where `go_on`, else 0."""
        if self.order is None:
            return np.where(go_on, state + 1, 0)
        pos, at, own = self._since(~go_on)
        from_state = state[self.order] + (pos - self._start + 1)
        return self._back(np.where(own, pos - at, from_state))

    def carry(self, reset: np.ndarray, value: np.ndarray, state: np.ndarray) -> np.ndarray:
        """A value held along each slot's rows: `value` where `reset`, else the previous row's
        (the state's before a slot's first reset)."""
        if self.order is None:
            return np.where(reset, value, state)
        pos, at, own = self._since(reset)
        return self._back(np.where(own, value[self.order][np.maximum(at, 0)], state[self.order]))

    def running_max(self, x: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The largest of each slot's `x` so far (integers), and of its state."""
        if self.order is None or not self.n:
            return np.maximum(x, state)
        ranked = x[self.order]
        low = int(ranked.min())
        span = int(ranked.max()) - low + 1
        group = np.cumsum(self._first) - 1  # each slot's rows apart: offset by its group
        lifted = np.maximum.accumulate((ranked - low) + group * span)
        return self._back(np.maximum(lifted - group * span + low, state[self.order]))
