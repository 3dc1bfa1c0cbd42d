"""Fault incidents over a batch: `preparation.incidents.SensorIncidents.observe` for every row.

Each non-placeholder row is observed with the reasons the rules before it gave (`work.reasons`;
`score` is not a fault): a flagged row opens its sensor's incident (an `open` record) or adds to
the open one; a clean row `clear_after` seconds or more after the open incident's last flagged
reading closes it (a `close` record with every reason seen, sorted, and the flagged count).
State per slot: open or not, when it started, its last flagged time, its count, and its reasons
as bits of `codes`. The clean rows are numpy over the batch, along each sensor's rows
(`columns.rounds.Along`): the only clean row that can close an incident is the first one
`clear_after` after the last flagged reading in each stretch between flagged readings. Those
rows and the flagged ones then go through the state in row order, in Python: reading each
flagged row's reasons (a list: its codes become bits) and making each record (an object)
cost Python anyway.
"""

from __future__ import annotations

import numpy as np

from columns.batch import Work
from columns.grow import grown
from columns.rounds import Along
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

    #: Takes a slot's several rows in one call, in order (along time).
    ALONG = True

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
        n = len(work)
        flagged = np.zeros(n, bool)
        bits = np.zeros(n, np.uint64)
        for row, reasons in work.reasons.items():
            found = self._bits(reasons)
            if found and not placeholder[row]:
                flagged[row] = True
                bits[row] = found
        along = Along(slots)
        # a clean row can close its slot's incident: the first one `clear_after` after the last
        # flagged reading, in each stretch between flagged readings (an incident is open after
        # a flagged reading, or from the state before the slot's first)
        last = along.carry(flagged, times, self.last[slots])
        stretch = along.counter(~flagged, np.zeros(n, np.int64))  # clean rows since a flag
        behind = along.carry(flagged, np.ones(n, bool), self.open[slots])  # open or a flag before
        can = ~flagged & ~placeholder & behind & (times - last >= self.clear_after)
        can_rows = np.flatnonzero(can)
        if len(can_rows):  # the first of each stretch: its start row is unique per stretch
            start = can_rows - stretch[can_rows] + 1
            if along.order is not None:
                start = _stretch_start(along, can_rows, stretch)
            _, first = np.unique(start, return_index=True)
            can_rows = can_rows[first]
        events = np.union1d(np.flatnonzero(flagged), can_rows)
        if not len(events):
            return self._out(made, out)
        is_open, started, until = self.open, self.started, self.last
        count, held = self.count, self.reasons
        for row in events.tolist():
            slot, time, sensor = int(slots[row]), int(times[row]), int(sensors[row])
            if flagged[row]:
                if not is_open[slot]:  # it opens an incident: its record
                    faults = sorted(r for r in work.reasons[row] if r != SCORE)
                    opened = Incident(self._id(sensor, time), "open", "sensor_fault", time, time,
                                      faults, 1, sensor)  # fmt: skip
                    made.append((row, opened))
                    is_open[slot], started[slot], count[slot], held[slot] = True, time, 0, 0
                held[slot] |= bits[row]
                count[slot] += 1
                until[slot] = time
            elif is_open[slot] and time - until[slot] >= self.clear_after:
                begun, codes_held = int(started[slot]), int(held[slot])
                codes = sorted(code for i, code in enumerate(self.codes) if codes_held >> i & 1)
                closed = Incident(self._id(sensor, begun), "close", "sensor_fault", time, begun,
                                  codes, int(count[slot]), sensor)  # fmt: skip
                is_open[slot] = False
                made.append((row, closed))
        return self._out(made, out)

    @staticmethod
    def _out(made: list[tuple[int, Incident]], out: list[Incident] | None) -> list[Incident]:
        if out is None:
            out = []
        out.extend(incident for _, incident in made)  # (in row order)
        return out

    def _id(self, sensor: int, started: int) -> str:
        return f"{self.prefix}:{sensor}:{started}"


def _stretch_start(along: Along, rows: np.ndarray, stretch: np.ndarray) -> np.ndarray:
    """For rows of a batch where slots repeat: a number unique to the stretch of clean rows
    each is in (its position in slot order, less the clean rows before it)."""
    rank = np.empty(along.n, np.int64)
    rank[along.order] = np.arange(along.n)
    return rank[rows] - stretch[rows]
