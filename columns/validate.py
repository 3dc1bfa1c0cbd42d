"""Physical ranges on a column batch: the twin of `preparation.validation.RangeValidator.apply`.

The test is one comparison per value for the whole batch (`v < lo or v > hi`, which is
`not lo <= v <= hi` for every number, and False for NaN = missing); only the rare rows with a
value out of range cost Python (their flag text, count and reason). The rule has no state.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from columns.batch import Work
from preparation.reasons import OUT_OF_RANGE
from preparation.validation import RangeValidator


class ValidateColumns:
    """Out-of-range values become missing (NaN), `flags[field]` says what they were, and each
    counts as `invalid:<field>`; a row that lost any value gets the reason `out_of_range`,
    after the reasons already given (flatline runs before), exactly as the per-sensor chain.

    >>> from columns.batch import Columns
    >>> work = Work.of(Columns(np.array([1, 2]), np.array([0, 0]), ("humidity", "pm"),
    ...                        np.array([[104.0, 3.0], [55.0, np.nan]])))
    >>> counts = {}
    >>> ValidateColumns({"humidity": (0, 100)}).apply(work, np.array([0, 1]), counts)
    >>> work.values.tolist(), work.flags, work.reasons, counts
    ([[nan, 3.0], [55.0, nan]], {0: {'humidity': '104.0 outside [0, 100]'}}, {0: ['out_of_range']}, {'invalid:humidity': 1})
    """  # noqa: E501

    #: Takes a slot's several rows in one call, in order (no state).
    ALONG = True

    def __init__(self, ranges: Mapping[str, tuple[float, float]] | None = None):
        self.ranges = RangeValidator(ranges).ranges  # checked as the per-reading rule checks
        self._plan: tuple = ((), None)  # the last batch layout: (fields, its columns to check)

    @classmethod
    def of(cls, validator: RangeValidator) -> ValidateColumns:
        """The twin of a configured per-reading `RangeValidator`."""
        return cls(validator.ranges)

    def grow(self, slots: int) -> None:
        """Stateless: nothing to grow."""

    def _columns(self, fields: list[str]) -> tuple | None:
        key = tuple(fields)
        if self._plan[0] != key:
            cols = [j for j, name in enumerate(fields) if name in self.ranges]
            bounds = [self.ranges[fields[j]] for j in cols]
            plan = None
            if cols:
                plan = (
                    np.array(cols, dtype=np.intp),
                    np.array([float(lo) for lo, _ in bounds]),
                    np.array([float(hi) for _, hi in bounds]),
                    [fields[j] for j in cols],
                    [f" outside [{lo:g}, {hi:g}]" for lo, hi in bounds],  # the flag text's tail
                )
            self._plan = (key, plan)
        return self._plan[1]

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        """Remove the batch's out-of-range values in place (see the class)."""
        plan = self._columns(work.fields)
        if plan is None or not len(work):
            return
        cols, lo, hi, names, tails = plan
        block = work.values[:, cols]
        bad = (block < lo) | (block > hi)
        if not bad.any():
            return
        rows, which = np.nonzero(bad)  # row by row, each row's fields in values order
        seen = block[rows, which].tolist()  # Python floats: their repr is the flag's text
        work.values[rows, cols[which]] = np.nan
        flags_of = work.flags_of
        for row, k, value in zip(rows.tolist(), which.tolist(), seen, strict=True):
            flags_of(row)[names[k]] = repr(value) + tails[k]
        for k, n in enumerate(np.bincount(which, minlength=len(names)).tolist()):
            if n:
                tag = "invalid:" + names[k]
                counts[tag] = counts.get(tag, 0) + n
        reasons_of = work.reasons_of
        for row in np.unique(rows).tolist():  # once per row that lost a value
            reasons_of(row).append(OUT_OF_RANGE)

    def __getstate__(self) -> dict:
        return {"ranges": self.ranges}  # the layout cache is rebuilt on the next batch

    def __setstate__(self, state: dict) -> None:
        self.ranges = state["ranges"]
        self._plan = ((), None)
