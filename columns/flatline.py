"""The flatline rule over a batch: `preparation.flatline.Flatline.apply` for every row at once.

The rule (see `preparation/flatline.py`) compares each reading's values, as received, with the
same sensor's previous reading: PM all unchanged (none missing, not all 0) or every value
unchanged (with a non-PM field in the layout), `readings` times in a row, flags the reading.
Every row of a call is a different sensor, so each row depends only on its slot's state: the
whole batch is a few numpy operations. State per slot: the previous reading's values (a row of
`previous`, NaN = None), the field layout they had (an index into `layouts`: a sensor whose
payload fields change starts its runs afresh, as the per-reading rule does) and the two run
counters. Only flagged rows cost Python (their reason, flag text and count).
"""

from __future__ import annotations

import numpy as np

from columns.batch import Work
from columns.grow import grown, span
from preparation.flatline import FLAG, READINGS
from preparation.reasons import FLATLINE

#: Distinct field layouts kept before the ones no slot uses any more are dropped.
MAX_LAYOUTS = 16


class FlatlineColumns:
    """Every slot's flatline rule; `apply` is `Flatline.apply` on each non-placeholder row.

    >>> from columns.batch import Columns
    >>> rule, counts, got, fields = FlatlineColumns(readings=3), {}, [], ("pm2.5_cf_1", "humidity")
    >>> rule.grow(1)
    >>> for pm in (4.0, 4.0, 4.0, 4.0, 4.1):
    ...     work = Work.of(Columns(np.array([7]), np.array([0]), fields, np.array([[pm, 40.0]])))
    ...     rule.apply(work, np.array([0]), counts)
    ...     got.append(work.reasons.get(0, []))
    >>> got, counts
    ([[], [], ['flatline'], ['flatline'], []], {'flatline': 2})
    """

    def __init__(self, readings: int = READINGS):
        if readings < 2:
            raise ValueError(f"flatline readings must be >= 2, got {readings}")
        self.readings = readings
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
            rows, values = None, work.values
        else:
            rows = np.flatnonzero(keep)
            if not len(rows):
                return
            slots, values = slots[rows], work.values[rows]
        k = self._intern(tuple(work.fields))
        width = values.shape[1]
        slots = span(slots)
        previous = self.previous[slots, :width]
        if type(slots) is slice:  # a view: copied before the slots are written
            previous = previous.copy()
        same = self.layout[slots] == k  # else: the slot's first reading, or a new layout
        self.previous[slots, :width] = values
        self.layout[slots] = k
        pm = self.pm_columns[k]
        if not len(pm):  # no PM field: the runs stay as they are (0, since the layout began)
            self.run_pm[slots] = np.where(same, self.run_pm[slots], 0)
            self.run_all[slots] = np.where(same, self.run_all[slots], 0)
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
        run_pm = np.where(pm_still, self.run_pm[slots] + 1, 0)
        if has_other:
            run_all = np.where(same & equal.all(axis=1), self.run_all[slots] + 1, 0)
        else:
            run_all = np.zeros(len(values), np.int64)
        self.run_pm[slots] = run_pm
        self.run_all[slots] = run_all
        run = np.maximum(run_pm, run_all) + 1  # readings in the run, this one included
        hits = np.flatnonzero(run >= self.readings)
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
