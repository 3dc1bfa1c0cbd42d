"""What the shard step hands the area stage: a piece's rows as arrays, not a `Reading` each.

`area_piece` takes, from a piece the stages have cleaned and scored, what the area stage needs
of each row (`preparation.areas.observe` says the same of one reading): the sensor, its time and
position, the compared field's value (NaN when missing or when a fault rule fired), whether its
channels agreed, and whether it is an alert already. The `Work` rows travel with them, so that
the few rows that leave as alerts become `Reading`s at the end (`work_rows`, `ReadingMaker`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from columns.batch import Work
from columns.rounds import piece
from preparation.areas import CHANNEL_CODES
from preparation.reasons import FAULTS


@dataclass(slots=True)
class AreaPiece:
    """One piece's readings (placeholders left out), row `i` of every array being row `i` of
    `work`; `base`: how many of `work.fields` the batch came with (for `ReadingMaker`)."""

    sensors: np.ndarray  # int64
    times: np.ndarray  # int64
    latitude: np.ndarray  # float64, NaN: no position
    longitude: np.ndarray
    values: np.ndarray  # float64: the compared field, NaN when missing or a fault rule fired
    ok: np.ndarray  # bool: no channel fault
    alert: np.ndarray  # bool: an alert whatever the area stage finds
    work: Work
    base: int

    def __len__(self) -> int:
        return len(self.sensors)


def work_rows(work: Work, rows: np.ndarray | slice) -> Work:
    """Rows `rows` of a `Work` (a slice: views of its arrays), in that order.

    >>> from columns.batch import Columns
    >>> values = np.array([[1.0], [2.0], [3.0]])
    >>> w = Work.of(Columns(np.array([7, 9, 8]), np.array([0, 0, 60]), ("pm",), values))
    >>> w.reasons[2] = ["flatline"]
    >>> part = work_rows(w, np.array([2, 0]))
    >>> part.sensors.tolist(), part.reasons, work_rows(w, slice(1, 3)).reasons
    ([8, 7], {0: ['flatline']}, {1: ['flatline']})
    """
    if not isinstance(rows, slice):  # chosen rows: the engine's own `piece`
        return piece(work, rows)
    start, stop, _ = rows.indices(len(work))

    def moved(sparse: dict) -> dict:
        return {i - start: v for i, v in sparse.items() if start <= i < stop}

    text = None if work.text is None else work.text[start:stop]
    return Work(
        work.sensors[rows],
        work.times[rows],
        work.fields,
        work.values[rows],
        work.placeholder[rows],
        work.imputed[rows],
        work.missing[rows],
        work.score[rows],
        work.status[rows],
        moved(work.flags),
        moved(work.reasons),
        text,
        work.origin,
    )


def area_piece(work: Work, alerts: np.ndarray, base: int, field: str) -> AreaPiece | None:
    """The area stage's view of a cleaned, scored piece (None when it holds only
    placeholders): `alerts` are the rows that are alerts already; `field` is compared."""
    real = ~work.placeholder
    if not real.all():
        if not real.any():
            return None
        rows = np.flatnonzero(real)
        work, alerts = work_rows(work, rows), alerts[rows]
    n = len(work)
    lat, lon, value = (work.column(name) for name in ("latitude", "longitude", field))
    nan = np.full(n, np.nan)
    latitude = nan if lat is None or lon is None else work.values[:, lat]
    longitude = nan if lat is None or lon is None else work.values[:, lon]
    values = nan.copy() if value is None else work.values[:, value].copy()
    ok = np.ones(n, bool)
    for i, codes in work.reasons.items():
        if not FAULTS.isdisjoint(codes):
            values[i] = np.nan
        if not CHANNEL_CODES.isdisjoint(codes):
            ok[i] = False
    return AreaPiece(
        work.sensors, work.times, latitude, longitude, values, ok, alerts.copy(), work, base
    )
