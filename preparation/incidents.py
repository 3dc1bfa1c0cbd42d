"""Incidents: one `open` record when a sensor's fault or an area's pollution event starts, one
`close` record when it clears, so an on-call person gets one page per incident, not one per
reading.

- A **sensor fault** incident opens at the first reading a rule flags (channels, flatline,
  ranges: `SensorIncidents` in the per-sensor step; neighbour disagreement: one per sensor in its
  home area's stage) and closes at the first clean reading (or window) `clear_after` seconds
  (1,800: 30 minutes) after the last flagged one, with every reason seen and how many readings
  (or windows) were flagged.
- A **neighbour** incident (`local_source` above the neighbours, `anomaly` below them;
  `NeighbourTrack`, in the sensor's home area) opens when `k` of the sensor's last `n` windows
  (3 of 4) were off its neighbours on the same side, and closes at the end of the first window
  `clear_after` seconds after the last off one: it is judged over several windows before it is
  reported, and one short quiet spell does not close and re-open it. Its `details`: how far
  above (or below) the neighbours it read (median excess in µg/m³, median ratio), and the UTC
  hours of day it was off.
- A **calibration drift** finding (`DriftTrack`): a sensor off its neighbours in proportion for
  `drift_days` days in a row (`preparation.neighbours`); opens at the end of the last of those
  days, closes at the end of the first judged day back in proportion. A daily finding, not a
  page: no reading's alert carries it.
- A **pollution event** incident opens at an area's first event window and closes at the end of
  the first quiet window `clear_after` seconds after the last event window, with every sensor
  that rose during it.

A run that ends leaves its open incidents open: they have not cleared. State: a few numbers per
sensor and per area.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from preparation.neighbours import NeighbourRule
from preparation.reasons import (
    ABOVE_NEIGHBOURS,
    BELOW_NEIGHBOURS,
    CALIBRATION_DRIFT,
    LOCAL_SOURCE,
)
from sources.times import iso_time

CLEAR_AFTER = 1800


@dataclass(slots=True)
class Incident:
    """An `open` or `close` record."""

    id: str
    state: str  # "open" or "close"
    kind: str  # "sensor_fault", "local_source", "anomaly", "calibration_drift", "pollution_event"
    time: int  # the first flagged reading (open), or the one that cleared it (close)
    started: int
    reasons: list[str]
    count: int  # flagged readings (sensors) or event windows (areas) so far
    sensor_index: int | None = None
    area: str = ""
    sensors: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class SensorIncidents:
    """One sensor's fault incident.

    >>> track = SensorIncidents(clear_after=600)
    >>> [i.state for i in track.observe(7, 1000, ["flatline"])]
    ['open']
    >>> track.observe(7, 1120, ["flatline", "score"]), track.observe(7, 1500, [])
    ([], [])
    >>> [(i.state, i.time, i.started, i.reasons, i.count) for i in track.observe(7, 1720, [])]
    [('close', 1720, 1000, ['flatline'], 2)]
    """

    def __init__(self, clear_after: int = CLEAR_AFTER, prefix: str = "sensor"):
        self.clear_after = clear_after
        self.prefix = prefix  # "sensor" (per-sensor rules), "neighbour" (the area stage's)
        self.open: list | None = None  # [id, started, reasons, count, last flagged time]

    def copy(self) -> SensorIncidents:
        new = SensorIncidents(self.clear_after, self.prefix)
        if self.open is not None:
            new.open = [*self.open[:2], set(self.open[2]), *self.open[3:]]
        return new

    def observe(self, sensor: int, time: int, reasons: list[str]) -> list[Incident]:
        """The records this reading makes: an `open`, a `close`, or none."""
        faults = [r for r in reasons if r != "score"]
        current = self.open
        if faults:
            out = []
            if current is None:
                current = self.open = [f"{self.prefix}:{sensor}:{time}", time, set(), 0, time]
                out.append(self._record(sensor, "open", time, faults, 1))
            current[2].update(faults)
            current[3] += 1
            current[4] = time
            return out
        if current is not None and time - current[4] >= self.clear_after:
            self.open = None
            return [self._record(sensor, "close", time, sorted(current[2]), current[3], current)]
        return []

    def _record(
        self, sensor: int, state: str, time: int, reasons: list[str], count: int, current=None
    ) -> Incident:
        current = current or self.open
        return Incident(
            current[0], state, "sensor_fault", time, current[1], sorted(reasons), count, sensor
        )


class AreaIncidents:
    """One area's pollution-event incident, from its window verdicts.

    >>> track = AreaIncidents(clear_after=1200)
    >>> [i.state for i in track.observe("1:2", 0, 600, True, [5, 6])]
    ['open']
    >>> track.observe("1:2", 600, 1200, False, []), track.observe("1:2", 1200, 1800, True, [7])
    ([], [])
    >>> track.observe("1:2", 1800, 2400, False, [])
    []
    >>> [(i.state, i.time, i.count, i.sensors) for i in track.observe("1:2", 2400, 3000, False, [])]
    [('close', 3000, 2, [5, 6, 7])]
    """

    def __init__(self, clear_after: int = CLEAR_AFTER):
        self.clear_after = clear_after
        self.open: list | None = None  # [id, started, sensors, windows, last event end]

    def observe(
        self, area: str, start: int, end: int, event: bool, rising: list[int]
    ) -> list[Incident]:
        current = self.open
        if event:
            out = []
            if current is None:
                current = self.open = [f"area:{area}:{start}", start, set(), 0, end]
                opened = Incident(current[0], "open", "pollution_event", start, start,
                                  ["pollution_event"], 1, None, area, sorted(rising))  # fmt: skip
                out.append(opened)
            current[2].update(rising)
            current[3] += 1
            current[4] = end
            return out
        if current is not None and end - current[4] >= self.clear_after:
            self.open = None
            closed = Incident(current[0], "close", "pollution_event", end, current[1],
                              ["pollution_event"], current[3], None, area,
                              sorted(current[2]))  # fmt: skip
            return [closed]
        return []


class NeighbourTrack:
    """One sensor's standing against its neighbours, window by window: whether it is reported
    (open after `k` of the last `n` windows off on one side, close `clear_after` seconds after
    the last off window), and its incident records.

    >>> track = NeighbourTrack(k=2, n=3, clear_after=1200)
    >>> track.observe(7, 0, 600, 1, 50.0, 10.0, "local_source")  # one window: not yet
    (False, [])
    >>> reported, out = track.observe(7, 600, 1200, 1, 60.0, 10.0, "local_source")
    >>> reported, [(i.state, i.kind, i.started, i.details["excess"]) for i in out]
    (True, [('open', 'local_source', 600, 50.0)])
    >>> track.observe(7, 1200, 1800, 0, 12.0, 10.0, "local_source")[0]  # quiet: not reported
    False
    >>> reported, out = track.observe(7, 2400, 3000, 0, 10.0, 10.0, "local_source")
    >>> [(i.state, i.time, i.count, i.details["ratio"], i.details["hours_utc"]) for i in out]
    [('close', 3000, 1, 6.0, [0])]
    """

    __slots__ = ("k", "n", "clear_after", "bits", "side", "open")

    def __init__(self, k: int = 3, n: int = 4, clear_after: int = CLEAR_AFTER):
        self.k, self.n, self.clear_after = k, n, clear_after
        self.bits = 0  # the last n windows, newest in bit 0: off on `side`
        self.side = 0
        # [id, kind, started, windows, last off end, excesses, ratios, hours bitmask]
        self.open: list | None = None

    def __getstate__(self) -> tuple:
        return self.k, self.n, self.clear_after, self.bits, self.side, copy_open(self.open)

    def __setstate__(self, state: tuple) -> None:
        self.k, self.n, self.clear_after, self.bits, self.side, self.open = state

    def observe(
        self, sensor: int, start: int, end: int, side: int, x: float, centre: float, kind: str
    ) -> tuple[bool, list[Incident]]:
        """A judged window (`side` +1 above, -1 below, 0 within; `kind` of an incident it would
        open): whether its readings are reported, and the records it makes."""
        if side != self.side and side != 0:
            self.bits, self.side = 0, side  # the other side: counted afresh
        mask = (1 << self.n) - 1
        self.bits = ((self.bits << 1) | (side != 0)) & mask
        current, out = self.open, []
        if side != 0 and current is not None and current[1] != kind:
            out.append(self._record(sensor, "close", end, current))  # it turned over
            current = self.open = None
        if side != 0 and (current is not None or self.bits.bit_count() >= self.k):
            if current is None:
                current = self.open = [f"neighbour:{sensor}:{start}", kind, start, 0, end,
                                       [], [], 0]  # fmt: skip
                opened = True
            else:
                opened = False
            current[3] += 1
            current[4] = end
            if len(current[5]) < 1000:  # bounded: the median of the first 1,000 windows
                current[5].append(x - centre)
                current[6].append(x / centre if centre > 0 else None)
            current[7] |= 1 << (start // 3600 % 24)
            if opened:
                out.append(self._record(sensor, "open", start, current))
            return True, out
        if current is not None and end - current[4] >= self.clear_after:
            self.open = None
            out.append(self._record(sensor, "close", end, current))
        return False, out

    @staticmethod
    def _record(sensor: int, state: str, time: int, current: list) -> Incident:
        ratios = [r for r in current[6] if r is not None]
        details = {
            "excess": round(statistics.median(current[5]), 2),
            "ratio": round(statistics.median(ratios), 3) if ratios else None,
            "hours_utc": [h for h in range(24) if current[7] >> h & 1],
        }
        reason = ABOVE_NEIGHBOURS if current[1] == LOCAL_SOURCE else BELOW_NEIGHBOURS
        return Incident(current[0], state, current[1], time, current[2], [reason], current[3],
                        sensor, details=details)  # fmt: skip


def copy_open(current: list | None) -> list | None:
    """A copy of an open incident's mutable list (its own lists copied too)."""
    if current is None:
        return None
    return [list(v) if isinstance(v, list) else v for v in current]


class DriftTrack:
    """One sensor's daily ratio to its neighbours, and its `calibration_drift` finding.

    >>> track = DriftTrack()
    >>> rule = NeighbourRule(drift_windows=2, drift_days=2)
    >>> day = 86400
    >>> [track.observe(rule, 5, t, 1.6) for t in (0, 600)]
    [[], []]
    >>> track.observe(rule, 5, day, 1.5)  # day 0 closes: off (1.6), one day
    []
    >>> track.observe(rule, 5, day + 600, 1.5)
    []
    >>> [(i.state, i.time, i.started, i.details) for i in track.observe(rule, 5, 2 * day, 1.0)]
    [('open', 172800, 0, {'ratio': 1.5, 'days': 2})]
    """

    __slots__ = ("day", "ratios", "off_days", "open")

    def __init__(self) -> None:
        self.day = -1
        self.ratios: list[float] = []
        self.off_days = 0
        self.open: list | None = None  # [id, started, days, ratio]

    def __getstate__(self) -> tuple:
        return self.day, list(self.ratios), self.off_days, copy_open(self.open)

    def __setstate__(self, state: tuple) -> None:
        self.day, self.ratios, self.off_days, self.open = state

    def observe(
        self, rule: NeighbourRule, sensor: int, start: int, ratio: float | None
    ) -> list[Incident]:
        """A window's ratio to the neighbours (None: not judged); the records a finished day
        makes."""
        out: list[Incident] = []
        day = start // 86400
        if day != self.day:
            out = self._close_day(rule, sensor) if self.day >= 0 else []
            self.day, self.ratios = day, []
        if ratio is not None and len(self.ratios) < 1440:
            self.ratios.append(ratio)
        return out

    def _close_day(self, rule: NeighbourRule, sensor: int) -> list[Incident]:
        if len(self.ratios) < rule.drift_windows:
            return []  # not judged: neither off nor back
        ratio = statistics.median(self.ratios)
        end = (self.day + 1) * 86400
        if rule.drifted(ratio):
            self.off_days += 1
            if self.open is not None:
                self.open[2] += 1
                return []
            if self.off_days >= rule.drift_days:
                started = end - self.off_days * 86400
                self.open = [f"drift:{sensor}:{started}", started, self.off_days, ratio]
                return [self._record(sensor, "open", end, ratio)]
            return []
        self.off_days = 0
        if self.open is None:
            return []
        closed = self._record(sensor, "close", end, ratio)
        self.open = None
        return [closed]

    def _record(self, sensor: int, state: str, time: int, ratio: float) -> Incident:
        current = self.open
        assert current is not None
        details = {"ratio": round(ratio, 3), "days": current[2]}
        return Incident(current[0], state, CALIBRATION_DRIFT, time, current[1],
                        [CALIBRATION_DRIFT], current[2], sensor, details=details)  # fmt: skip


def incident_record(incident: Incident) -> dict[str, Any]:
    """The JSON line of an incident."""
    record: dict[str, Any] = {
        "id": incident.id,
        "state": incident.state,
        "kind": incident.kind,
        "time": iso_time(incident.time),
        "started": iso_time(incident.started),
        "reasons": incident.reasons,
        "count": incident.count,
    }
    if incident.sensor_index is not None:
        record["sensor_index"] = incident.sensor_index
    if incident.area:
        record["area"] = incident.area
        record["sensors"] = incident.sensors
    if incident.details:
        record["details"] = incident.details
    return record
