"""Fault incidents over a batch: `preparation.incidents.SensorIncidents.observe` for every row.

Each non-placeholder row is observed with the reasons the rules before it gave (`work.reasons`;
`score` is not a fault): a flagged row opens its sensor's incident (an `open` record) or adds to
the open one; a clean row `clear_after` seconds or more after the open incident's last flagged
reading closes it (a `close` record with every reason seen, sorted, and the flagged count).
State per slot: open or not, when it started, its last flagged time, its count, and its reasons
as bits of `codes`. The clean rows are numpy over the batch (one comparison finds the rows that
close, and numpy updates the flagged rows' slots); what costs Python is reading each flagged
row's reasons (a list: its codes become bits) and making each record (an object).
"""

from __future__ import annotations

import numpy as np

from columns.batch import Work
from columns.grow import grown
from preparation.incidents import CLEAR_AFTER, Incident
from preparation.reasons import SCORE


class IncidentColumns:
    """Every slot's fault incident (`SensorIncidents`' options).

    `apply` returns the records its rows make, in row order (`out`, when given, is appended
    to and returned): the shard logic emits them as the per-reading step does (each right
    before its reading's own output). The sensor of a record is its row's: a slot must keep
    one sensor.

    >>> from columns.batch import Columns
    >>> track = IncidentColumns(clear_after=600)
    >>> track.grow(1)
    >>> got = []
    >>> for time, reasons in ((1000, ["flatline"]), (1120, ["flatline"]), (1500, []), (1720, [])):
    ...     work = Work.of(Columns(np.array([7]), np.array([time]), (), np.zeros((1, 0))))
    ...     work.reasons = {0: reasons} if reasons else {}
    ...     got += track.apply(work, np.array([0]), {})
    >>> [(i.state, i.time, i.started, i.reasons, i.count) for i in got]
    [('open', 1000, 1000, ['flatline'], 1), ('close', 1720, 1000, ['flatline'], 2)]
    """

    def __init__(self, clear_after: int = CLEAR_AFTER, prefix: str = "sensor"):
        self.clear_after = clear_after
        self.prefix = prefix
        self.codes: list[str] = []  # the fault codes seen: code i is bit i of `reasons`
        self.open = np.zeros(0, bool)  # per slot: an incident is open
        self.started = np.zeros(0, np.int64)  # per slot: its first flagged time ...
        self.last = np.zeros(0, np.int64)  # ... its last flagged time ...
        self.count = np.zeros(0, np.int64)  # ... its flagged readings ...
        self.reasons = np.zeros(0, np.uint64)  # ... and its codes, as bits

    def grow(self, slots: int) -> None:
        """Room for slots 0..slots-1; new slots have no open incident."""
        self.open = grown(self.open, slots, False)
        for name in ("started", "last", "count", "reasons"):
            setattr(self, name, grown(getattr(self, name), slots, 0))

    def _bits(self, reasons: list[str]) -> int:
        """The fault codes among `reasons` as bits of `codes` (new codes get the next bits)."""
        bits = 0
        for code in reasons:
            if code == SCORE:
                continue
            try:
                bit = self.codes.index(code)
            except ValueError:
                if len(self.codes) == 64:
                    raise ValueError("more than 64 distinct fault codes") from None
                bit = len(self.codes)
                self.codes.append(code)
            bits |= 1 << bit
        return bits

    def apply(
        self,
        work: Work,
        slots: np.ndarray,
        counts: dict[str, int],
        out: list[Incident] | None = None,
    ) -> list[Incident]:
        """Observe every non-placeholder row; the `open` and `close` records, in row order, added
        to `out` (a new list when None) and returned. Run it after the rules (it reads
        `work.reasons`). Counts nothing."""
        made: list[tuple[int, Incident]] = []
        sensors, times, placeholder = work.sensors, work.times, work.placeholder
        flagged = np.zeros(len(work), bool)
        rows: list[int] = []
        bits: list[int] = []
        for row, reasons in work.reasons.items():
            found = self._bits(reasons)
            if found:
                rows.append(row)
                bits.append(found)
        if rows:
            at = np.array(rows, np.intp)
            real = ~placeholder[at]
            at, found = at[real], np.array(bits, np.uint64)[real]
            flagged[at] = True
            slot, time = slots[at], times[at]
            new = ~self.open[slot]
            for i in np.flatnonzero(new).tolist():  # they open an incident: its record
                row, when, sensor = int(at[i]), int(time[i]), int(sensors[at[i]])
                faults = sorted(r for r in work.reasons[row] if r != SCORE)
                opened = Incident(self._id(sensor, when), "open", "sensor_fault", when, when,
                                  faults, 1, sensor)  # fmt: skip
                made.append((row, opened))
            fresh = slot[new]
            self.open[fresh], self.started[fresh] = True, time[new]
            self.count[fresh], self.reasons[fresh] = 0, 0
            self.reasons[slot] |= found
            self.count[slot] += 1
            self.last[slot] = time
        closing = self.open[slots] & ~flagged & ~placeholder
        closing &= times - self.last[slots] >= self.clear_after
        for row in np.flatnonzero(closing).tolist():
            slot, sensor, time = int(slots[row]), int(sensors[row]), int(times[row])
            started, held = int(self.started[slot]), int(self.reasons[slot])
            codes = sorted(code for i, code in enumerate(self.codes) if held >> i & 1)
            closed = Incident(self._id(sensor, started), "close", "sensor_fault", time, started,
                              codes, int(self.count[slot]), sensor)  # fmt: skip
            self.open[slot] = False
            made.append((row, closed))
        if out is None:
            out = []
        made.sort(key=lambda pair: pair[0])
        out.extend(incident for _, incident in made)
        return out

    def _id(self, sensor: int, started: int) -> str:
        return f"{self.prefix}:{sensor}:{started}"
