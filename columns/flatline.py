"""The flatline rule over a batch: `preparation.flatline.Flatline.apply` for every row at once.

The rule (see `preparation/flatline.py`) compares each reading's values, as received, with the same
sensor's previous reading: PM all unchanged (none missing, not all 0) or every value unchanged (with
a non-PM field in the layout), for `seconds` and `readings` readings in a row, flags the reading.
Each row depends only on its slot's previous row (the batch's, or the slot's state for its
first row): the runs are counted along each sensor's rows (`columns.rounds.Along`), so a whole
batch, whatever the number of rows per sensor, is a few numpy operations. State per slot: the
previous reading's values (a row of `previous`, NaN = None), the field layout they had (an
index into `layouts`: a sensor whose payload fields change starts its runs afresh, as the
per-reading rule does), the two run counters, the previous reading's time and the time each
run began. Only flagged rows cost Python (their reason, flag text and count).
"""

from __future__ import annotations

import numpy as np

from columns.batch import Work
from columns.grow import grown, span
from columns.rounds import Along
from preparation.flatline import FLAG, READINGS, SECONDS, covers
from preparation.reasons import FLATLINE

#: `time` of a slot that has had no reading.
NEVER = np.iinfo(np.int64).min
#: Distinct field layouts kept before the ones no slot uses any more are dropped.
MAX_LAYOUTS = 16


class FlatlineColumns:
    """Every slot's flatline rule; `apply` is `Flatline.apply` on each non-placeholder row.

    >>> from columns.batch import Columns
    >>> rule, counts, got = FlatlineColumns(readings=3, seconds=1200), {}, []
    >>> fields = ("pm2.5_cf_1", "humidity")
    >>> rule.grow(1)
    >>> for t, pm in ((0, 4.0), (600, 4.0), (1200, 4.0), (1800, 4.0), (2400, 4.1)):
    ...     values = np.array([[pm, 40.0]])
    ...     work = Work.of(Columns(np.array([7]), np.array([t]), fields, values))
    ...     rule.apply(work, np.array([0]), counts)
    ...     got.append(work.reasons.get(0, []))
    >>> got, counts
    ([[], [], ['flatline'], ['flatline'], []], {'flatline': 2})
    """

    #: Takes a slot's several rows in one call, in order (along time).
    ALONG = True

    def __init__(self, readings: int = READINGS, seconds: int = SECONDS):
        if readings < 2:
            raise ValueError(f"flatline readings must be >= 2, got {readings}")
        if seconds < 0:
            raise ValueError(f"flatline seconds must be >= 0, got {seconds}")
        self.readings = readings
        self.seconds = seconds
        self.time = np.zeros(0, np.int64)  # per slot: the previous reading's time; NEVER: none
        self.start_pm = np.zeros(0, np.int64)  # when its PM run began (the reading before)
        self.start_all = np.zeros(0, np.int64)  # when its run of every value began
        self.layouts: list[tuple[str, ...]] = []  # field layouts seen (interned)
        self.pm_columns: list[np.ndarray] = []  # per layout: its PM columns
        self.layout = np.zeros(0, np.int32)  # per slot: its previous reading's layout; -1: none
        self.previous = np.zeros((0, 0))  # per slot: the previous reading's values, NaN = None
        self.run_pm = np.zeros(0, np.int64)  # readings in a row with PM unchanged (not all 0)
        self.run_all = np.zeros(0, np.int64)  # readings in a row with every value unchanged

    def grow(self, slots: int) -> None:
        """Room for slots 0..slots-1; new slots have seen no reading."""
        self.layout = grown(self.layout, slots, -1)
        self.previous = grown(self.previous, slots, np.nan)
        self.run_pm = grown(self.run_pm, slots, 0)
        self.run_all = grown(self.run_all, slots, 0)
        self.time = grown(self.time, slots, NEVER)
        self.start_pm = grown(self.start_pm, slots, 0)
        self.start_all = grown(self.start_all, slots, 0)

    def _intern(self, keys: tuple[str, ...]) -> int:
        """The index of layout `keys`, added when new (dropping layouts no slot uses)."""
        try:
            return self.layouts.index(keys)
        except ValueError:
            pass
        if len(self.layouts) >= MAX_LAYOUTS:
            self._compact()
        self.layouts.append(keys)
        self.pm_columns.append(
            np.array([i for i, name in enumerate(keys) if name.startswith("pm")], np.intp)
        )
        width = len(keys)
        if width > self.previous.shape[1]:
            wider = np.full((len(self.previous), width), np.nan)
            wider[:, : self.previous.shape[1]] = self.previous
            self.previous = wider
        return len(self.layouts) - 1

    def _compact(self) -> None:
        used = np.unique(self.layout[self.layout >= 0])
        renumber = np.full(len(self.layouts) + 1, -1, np.int32)  # index -1 maps -1 to -1
        renumber[used] = np.arange(len(used), dtype=np.int32)
        self.layout = renumber[self.layout]
        self.layouts = [self.layouts[i] for i in used]
        self.pm_columns = [self.pm_columns[i] for i in used]

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        """Flag the rows whose run is long enough: `flatline` in their reasons, `flags["flatline"]`
        (for how many readings), count `flatline`. Placeholders are skipped (the per-reading
        path does not apply the rule to them) and leave their slot's state as it was. Run this
        first: it reads `work.values` as received."""
        keep = ~work.placeholder
        if keep.all():
            rows, values, times = None, work.values, work.times
        else:
            rows = np.flatnonzero(keep)
            if not len(rows):
                return
            slots, values, times = slots[rows], work.values[rows], work.times[rows]
        times = np.asarray(times, np.int64)
        k = self._intern(tuple(work.fields))
        width = values.shape[1]
        along = Along(slots)
        first, last_rows = along.first, along.last
        if along.order is None:  # each slot once: state through a slice where it can be
            slots, last_rows = span(slots), slice(None)
        # each row against its slot's previous row: the batch's, or the state's for its first
        previous = along.previous(values, self.previous[slots, :width])
        same = ~first | (self.layout[slots] == k)  # else: the slot's first reading, or a new layout
        state_time = self.time[slots]
        before = along.previous(times, np.where(state_time == NEVER, times, state_time))
        ends = slots if along.order is None else slots[last_rows]
        self.previous[ends, :width] = values[last_rows]
        self.layout[ends] = k
        self.time[ends] = times[last_rows]
        pm = self.pm_columns[k]
        if not len(pm):  # no PM field: the runs stay as they are (0, since the layout began)
            zero = np.zeros(len(values), np.int64)
            for name in ("run_pm", "run_all"):
                state = getattr(self, name)
                state[ends] = along.carry(~same, zero, state[slots])[last_rows]
            for name in ("start_pm", "start_all"):
                state = getattr(self, name)
                state[ends] = along.carry(~same, before, state[slots])[last_rows]
            return
        nan = np.isnan(values)
        equal = (values == previous) | (nan & np.isnan(previous))
        has_other = len(pm) < width
        pm_values = values[:, pm]
        pm_still = (
            same
            & equal[:, pm].all(axis=1)
            & ~nan[:, pm].any(axis=1)
            & (pm_values != 0.0).any(axis=1)
        )
        run_pm = along.counter(pm_still, self.run_pm[slots])
        start_pm = along.carry(~pm_still, before, self.start_pm[slots])
        if has_other:
            all_still = same & equal.all(axis=1)
            run_all = along.counter(all_still, self.run_all[slots])
            start_all = along.carry(~all_still, before, self.start_all[slots])
        else:
            run_all = np.zeros(len(values), np.int64)
            start_all = before
        self.run_pm[ends] = run_pm[last_rows]
        self.run_all[ends] = run_all[last_rows]
        self.start_pm[ends] = start_pm[last_rows]
        self.start_all[ends] = start_all[last_rows]
        run = np.maximum(run_pm, run_all) + 1  # readings in the run, this one included
        long_pm = (run_pm + 1 >= self.readings) & covers(run_pm + 1, times - start_pm, self.seconds)
        long_all = (run_all + 1 >= self.readings) & covers(
            run_all + 1, times - start_all, self.seconds
        )
        hits = np.flatnonzero(long_pm | long_all)
        if not len(hits):
            return
        flags, reasons = work.flags, work.reasons
        where = hits if rows is None else rows[hits]
        for row, n in zip(where.tolist(), run[hits].tolist(), strict=True):
            found = reasons.get(row)  # (the first rule: the row has no reasons nor flags yet,
            if found is None:  # unless the shard logic gave it some)
                reasons[row] = [FLATLINE]
            else:
                found.append(FLATLINE)
            text = f"unchanged for {n} readings"
            found = flags.get(row)
            if found is None:
                flags[row] = {FLAG: text}
            else:
                found[FLAG] = text
        counts[FLAG] = counts.get(FLAG, 0) + len(hits)
