"""Linear interpolation in a stream: a delayed imputer that answers when the gap closes.

Interpolating a gap needs the observation after it, so a stream can only do it late. This imputer
holds a reading with a missing field until that field is observed again, fills the gap on the line
between the observations on either side (by event time), and then releases the held readings in
arrival order. It learns from the past only; what it pays is delay, which it makes explicit:
`impute_one` returns the readings it releases now, possibly none, possibly several.

A gap with no observation before it (the start of a series) cannot be interpolated: its fields stay
missing and the reading is not held for them. A gap longer than `max_delay` readings, or still open
at `flush()`, is filled with the last observed value (carried forward), so memory and delay stay
bounded. Each update costs O(1) amortised: every held value is filled exactly once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

Released = tuple[dict[str, float | None], list[str], list[str]]


class _Held:
    """A reading waiting for the end of one or more of its gaps."""

    __slots__ = ("values", "time", "waiting", "imputed", "missing")

    def __init__(self, values: dict[str, float | None], time: float):
        self.values = values
        self.time = time
        self.waiting: set[int] = set()
        self.imputed: list[str] = []
        self.missing: list[str] = []


class LinearGapImputer:
    """Fill each gap by linear interpolation between its neighbouring observations, late.

    >>> imp = LinearGapImputer(["pm"])
    >>> imp.impute_one({"pm": 1.0}, time=0)
    [({'pm': 1.0}, [], [])]
    >>> imp.impute_one({"pm": None}, time=1), imp.impute_one({"pm": None}, time=2)
    ([], [])
    >>> [values["pm"] for values, _, _ in imp.impute_one({"pm": 4.0}, time=3)]
    [2.0, 3.0, 4.0]
    """

    def __init__(self, fields: Sequence[str], max_delay: int = 60):
        if max_delay < 1:
            raise ValueError("max_delay must be at least 1")
        self.fields = tuple(fields)
        self.max_delay = max_delay
        self.held: deque[_Held] = deque()
        self.gaps: list[deque[_Held]] = [deque() for _ in self.fields]  # held per open gap
        self.last: list[tuple[float, float] | None] = [None] * len(self.fields)  # (time, value)
        self.count = 0

    def impute_one(
        self, values: Mapping[str, float | None], time: float | None = None
    ) -> list[Released]:
        """Take one reading (its event `time`; arrival count when None); return released readings
        as `(values, imputed names, missing names)`, oldest first."""
        entry = _Held(dict(values), self.count if time is None else time)
        self.count += 1
        for j, name in enumerate(self.fields):
            value = values.get(name)
            if value is not None:
                self._close_gap(j, entry.time, value)
            elif self.last[j] is None:
                entry.missing.append(name)
            else:
                entry.waiting.add(j)
                self.gaps[j].append(entry)
        self.held.append(entry)
        if len(self.held) > self.max_delay:
            self._carry_forward(self.held[0])
        return self._release()

    def flush(self) -> list[Released]:
        """End of stream: fill the gaps still open with the last observed value; release all."""
        for entry in self.held:
            self._carry_forward(entry)
        return self._release()

    def _close_gap(self, j: int, time: float, value: float) -> None:
        gap = self.gaps[j]
        if gap:
            t0, v0 = self.last[j]  # a gap is only opened after an observation
            span = time - t0
            while gap:
                entry = gap.popleft()
                share = (entry.time - t0) / span if span > 0 else 1.0
                self._fill(entry, j, v0 + share * (value - v0))
        self.last[j] = (time, value)

    def _carry_forward(self, entry: _Held) -> None:
        for j in sorted(entry.waiting):
            self.gaps[j].remove(entry)  # the oldest held entry: at the front of its gaps
            self._fill(entry, j, self.last[j][1])

    def _fill(self, entry: _Held, j: int, value: float) -> None:
        name = self.fields[j]
        entry.values[name] = value
        entry.imputed.append(name)
        entry.waiting.discard(j)

    def _release(self) -> list[Released]:
        out: list[Released] = []
        while self.held and not self.held[0].waiting:
            entry = self.held.popleft()
            imputed = [name for name in self.fields if name in entry.imputed]
            out.append((entry.values, imputed, entry.missing))
        return out
