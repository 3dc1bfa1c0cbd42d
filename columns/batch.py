"""The two batch types of the column path: `Columns` (a shard's rows of one poll, as read) and
`Work` (those rows as the stages clean and score them).

Missing is NaN (the parser dead-letters non-finite input, so NaN never means anything else);
per-row extras that are rare (flags, reasons, text) are sparse: only rows that have them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: `Work.status` codes, the per-reading path's `Reading.status` strings by code.
NEW, WARMING_UP, SCORED, UNSCORED = 0, 1, 2, 3
STATUS_NAMES = ("new", "warming_up", "scored", "unscored")


@dataclass(slots=True)
class Columns:
    """One shard's rows of one poll (or of one batch of a history), in row order.

    `values[i, j]` is field `fields[j]` of row `i` (`Reading.values` order: the payload's numeric
    fields), NaN where the row had null; `text` is the rows' text fields (None: the payload has
    none); `origin` names where the rows came from (for the dead letters of later stages).

    >>> values = np.array([[1.0], [np.nan]])
    >>> c = Columns(np.array([7, 9]), np.array([60, 60]), ("pm1.0_cf_1",), values)
    >>> len(c), c.fields
    (2, ('pm1.0_cf_1',))
    """

    sensors: np.ndarray  # int64 (n,)
    times: np.ndarray  # int64 (n,), epoch seconds
    fields: tuple[str, ...]
    values: np.ndarray  # float64 (n, len(fields)), NaN = missing
    text: list[dict[str, str | None]] | None = None
    origin: str = ""

    def __len__(self) -> int:
        return len(self.sensors)


@dataclass(slots=True)
class Work:
    """A batch in flight through the stages: the `Columns` plus what the stages add.

    A sensor may have many rows in one `Work` (in order; a stage that cannot take them in one
    call gets them round by round from the shard's logic). Stages change it in place:
    - `values`/`fields`: a stage that derives a field adds its column with `add_column`;
    - `imputed`/`missing`: per row and column, what `Reading.imputed`/`.missing` would list;
    - `flags`/`reasons`: row -> `Reading.flags` / `Reading.reasons`, only rows that have any;
    - `score` (NaN = None) and `status` (`NEW`…`UNSCORED`): the detector's.
    """

    sensors: np.ndarray
    times: np.ndarray
    fields: list[str]
    values: np.ndarray
    placeholder: np.ndarray  # bool (n,): stands for a missed time step
    imputed: np.ndarray  # bool (n, len(fields))
    missing: np.ndarray  # bool (n, len(fields))
    score: np.ndarray  # float64 (n,), NaN = None
    status: np.ndarray  # uint8 (n,)
    flags: dict[int, dict[str, str]] = field(default_factory=dict)
    reasons: dict[int, list[str]] = field(default_factory=dict)
    text: list[dict[str, str | None]] | None = None
    origin: str = ""

    @classmethod
    def of(cls, columns: Columns, placeholder: np.ndarray | None = None) -> Work:
        """A fresh `Work` over `columns` (its arrays are copied: stages write in place)."""
        n, width = columns.values.shape
        return cls(
            columns.sensors,
            columns.times,
            list(columns.fields),
            columns.values.astype(np.float64, copy=True),
            np.zeros(n, bool) if placeholder is None else placeholder,
            np.zeros((n, width), bool),
            np.zeros((n, width), bool),
            np.full(n, np.nan),
            np.zeros(n, np.uint8),
            text=columns.text,
            origin=columns.origin,
        )

    def __len__(self) -> int:
        return len(self.sensors)

    def column(self, name: str) -> int | None:
        """The index of field `name`'s column, or None when the batch has no such field."""
        try:
            return self.fields.index(name)
        except ValueError:
            return None

    def add_column(self, name: str) -> int:
        """Append an all-missing column for field `name` (not imputed, not missing); its index."""
        n = len(self.sensors)
        self.fields.append(name)
        self.values = np.concatenate([self.values, np.full((n, 1), np.nan)], axis=1)
        self.imputed = np.concatenate([self.imputed, np.zeros((n, 1), bool)], axis=1)
        self.missing = np.concatenate([self.missing, np.zeros((n, 1), bool)], axis=1)
        return len(self.fields) - 1

    def reasons_of(self, row: int) -> list[str]:
        """Row `row`'s reasons list, created empty on first use (append to it)."""
        found = self.reasons.get(row)
        if found is None:
            found = self.reasons[row] = []
        return found

    def flags_of(self, row: int) -> dict[str, str]:
        """Row `row`'s flags dict, created empty on first use."""
        found = self.flags.get(row)
        if found is None:
            found = self.flags[row] = {}
        return found
