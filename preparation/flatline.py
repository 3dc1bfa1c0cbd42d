"""Flatline: a sensor whose PM does not move at all is stuck, not measuring.

A Plantower counter reports 2-minute averages of particle counts; real air, even clean air, moves
them in the first decimal from one reading to the next. A stuck sensor (frozen firmware, a
buffer replayed) repeats its last values. The rule, on the values as received:

- **frozen PM**: every PM field of the reading (every name starting with `pm`: each channel and
  the means) equal to the previous reading's, for `seconds` (1800: 30 minutes) and at least
  `readings` readings in a row (5); this project's choice, both options. PM that is all 0 does
  not count: a very clean site reads 0.0 on every channel for long stretches.
- **everything frozen**: every field (PM, humidity, temperature, pressure, ...) equal to the
  previous reading's, for as long, with at least one non-PM field observed: then zeros count
  too, since weather never freezes.

A run covers the time from the reading before its first (the end of the last different average) to
the reading now (`covers`: to the nearest reading at the run's mean step): 15 readings of
PurpleAir's 2-minute averages make 30 minutes, and so do 3 of the history's 10-minute ones. Three is
too few: on the real 10-minute history (`../shared/data/purpleair-ajl`, 11 sensors, 557k readings)
identical PM comes 220 times for 2 readings in a row and 10 times for 3, never for 4 or more; so a
run needs both, 30 minutes and 5 readings: 15 readings at 2 minutes, 5 (50 minutes) at 10. Without a
time (a rule used outside the flow) only the readings count.

Missing PM (all None) breaks a run. Each reading from the one that completes a run on is flagged
(code `flatline`, `flags["flatline"]` says for how many readings); its values are kept as
received. State per sensor: the previous reading's values and time, two counters and the time
each run began; O(fields) a reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from preparation.reasons import FLATLINE


def covers(readings: int, span: int, seconds: int) -> bool:
    """Whether `readings` readings over `span` seconds make `seconds`: they do when the readings
    `seconds` takes at their mean step (`span / readings`), rounded to the nearest, are at most
    `readings` (`2·readings·seconds ≤ span·(2·readings + 1)`, in integers), so a jittered poll
    (15 readings over 1790 s) does not put a 30-minute run off by a reading.

    >>> covers(15, 1790, 1800), covers(14, 1680, 1800), covers(3, 1800, 1800), covers(2, 1200, 1800)
    (True, False, True, False)
    """
    return 2 * readings * seconds <= span * (2 * readings + 1)


#: The fewest identical readings that make a flatline, whatever the cadence.
READINGS = 5
#: The time they must cover: 15 readings at PurpleAir's 2-minute interval, 3 at 10 minutes.
SECONDS = 1800
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

    # a snapshot from before the span in seconds has none: its runs count readings until reset
    seconds = SECONDS
    time: int | None = None
    start_pm: int | None = None
    start_all: int | None = None

    def __init__(self, readings: int = READINGS, seconds: int = SECONDS):
        if readings < 2:
            raise ValueError(f"flatline readings must be >= 2, got {readings}")
        if seconds < 0:
            raise ValueError(f"flatline seconds must be >= 0, got {seconds}")
        self.readings = readings
        self.seconds = seconds
        self.time: int | None = None  # the previous reading's time
        self.start_pm: int | None = None  # when the PM run began (the reading before its first)
        self.start_all: int | None = None  # when the run of every value began
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
        at: int | None = None,
    ) -> None:
        """In the flow: add `flatline` to `reasons` (and count `flatline`) when the run is long
        (`at`: the reading's time; None: count readings only)."""
        now = tuple(values.values())
        keys = tuple(values)
        previous = self.previous
        self.previous = now
        before = at if self.time is None else self.time
        self.time = at
        if previous is None or keys != self.keys:
            self._layout(keys)
            self.run_pm = self.run_all = 0
            self.start_pm = self.start_all = before
            return
        pm_of = self.pm_of
        if pm_of is None:
            return
        pm = pm_of(now)
        if now == previous and self.has_other:
            self.run_all += 1
        else:
            self.run_all = 0
            self.start_all = before
        if pm == pm_of(previous) and None not in pm and any(pm):
            self.run_pm += 1
        else:
            self.run_pm = 0
            self.start_pm = before
        run = max(self.run_pm, self.run_all) + 1  # readings in the run, this one included
        if run >= self.readings and (
            at is None
            or self._long(self.run_pm, self.start_pm, at)
            or self._long(self.run_all, self.start_all, at)
        ):
            reasons.append(FLATLINE)
            flags[FLAG] = f"unchanged for {run} readings"
            counts[FLAG] = counts.get(FLAG, 0) + 1

    def _long(self, run: int, start: int | None, at: int) -> bool:
        """Whether a run (of `run` + 1 readings, begun at `start`) makes a flatline at `at`."""
        return (
            run + 1 >= self.readings
            and start is not None
            and covers(run + 1, at - start, self.seconds)
        )
