"""Flatline: a sensor whose PM does not move at all is stuck, not measuring.

A Plantower counter reports 2-minute averages of particle counts; real air, even clean air, moves
them in the first decimal from one reading to the next. A stuck sensor (frozen firmware, a
buffer replayed) repeats its last values. The rule, on the values as received:

- **frozen PM**: every PM field of the reading (every name starting with `pm`: each channel and
  the means) equal to the previous reading's, for `readings` readings in a row (15 by default:
  30 minutes of PurpleAir's 2-minute averages; this project's choice, an option). PM that is
  all 0 does not count: a very clean site reads 0.0 on every channel for long stretches.
- **everything frozen**: every field (PM, humidity, temperature, pressure, ...) equal to the
  previous reading's, for the same number of readings, with at least one non-PM field observed:
  then zeros count too, since weather never freezes.

Missing PM (all None) breaks a run. Each reading from the `readings`-th of a run on is flagged
(code `flatline`, `flags["flatline"]` says for how many readings); its values are kept as
received. State per sensor: the previous reading's values and two counters; O(fields) a reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from preparation.reasons import FLATLINE

#: 15 readings = 30 minutes at PurpleAir's 2-minute interval.
READINGS = 15
FLAG = "flatline"


class Flatline:
    """One sensor's flatline rule.

    >>> rule = Flatline(readings=3)
    >>> out = []
    >>> for pm in (4.0, 4.0, 4.0, 4.0, 4.1):
    ...     reasons = []
    ...     _ = rule.apply({"pm2.5_cf_1": pm, "humidity": 40.0}, {}, reasons, {})
    ...     out.append(reasons)
    >>> out
    [[], [], ['flatline'], ['flatline'], []]
    """

    def __init__(self, readings: int = READINGS):
        if readings < 2:
            raise ValueError(f"flatline readings must be >= 2, got {readings}")
        self.readings = readings
        self.previous: tuple[Any, ...] | None = None  # every value of the previous reading
        self.keys: tuple[str, ...] = ()  # its field names
        self.pm_of: Any = None  # itemgetter of the PM values, for `keys`
        self.has_other = False  # a non-PM field among `keys`
        self.run_pm = 0  # readings in a row whose PM equal the previous ones (not all 0)
        self.run_all = 0  # readings in a row whose every value equals the previous ones

    def copy(self) -> Flatline:
        new = object.__new__(Flatline)
        new.__dict__.update(self.__dict__)
        return new

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["pm_of"] = None  # rebuilt from `keys`
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.keys:
            self._layout(self.keys)

    def _layout(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        pm = [i for i, name in enumerate(keys) if name.startswith("pm")]
        self.has_other = len(pm) < len(keys)
        if not pm:
            self.pm_of = None
        elif len(pm) == 1:
            self.pm_of = itemgetter(slice(pm[0], pm[0] + 1))  # a 1-tuple, like itemgetter(i, j)
        else:
            self.pm_of = itemgetter(*pm)

    def apply(
        self,
        values: Mapping[str, float | None],
        flags: dict[str, str],
        reasons: list[str],
        counts: dict[str, int],
    ) -> None:
        """In the flow: add `flatline` to `reasons` (and count `flatline`) when the run is long."""
        now = tuple(values.values())
        keys = tuple(values)
        previous = self.previous
        self.previous = now
        if previous is None or keys != self.keys:
            self._layout(keys)
            self.run_pm = self.run_all = 0
            return
        pm_of = self.pm_of
        if pm_of is None:
            return
        pm = pm_of(now)
        if now == previous and self.has_other:
            self.run_all += 1
        else:
            self.run_all = 0
        if pm == pm_of(previous) and None not in pm and any(pm):
            self.run_pm += 1
        else:
            self.run_pm = 0
        run = max(self.run_pm, self.run_all) + 1  # readings in the run, this one included
        if run >= self.readings:
            reasons.append(FLATLINE)
            flags[FLAG] = f"unchanged for {run} readings"
            counts[FLAG] = counts.get(FLAG, 0) + 1
