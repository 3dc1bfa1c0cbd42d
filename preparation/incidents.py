"""Incidents: one `open` record when a sensor's fault or an area's pollution event starts, one
`close` record when it clears, so an on-call person gets one page per incident, not one per
reading.

- A **sensor fault** incident opens at the first reading a rule flags (channels, flatline,
  ranges: `SensorIncidents` in the per-sensor step; neighbour disagreement: one per sensor in its
  home area's stage) and closes at the first clean reading (or window) `clear_after` seconds
  (1,800: 30 minutes) after the last flagged one, with every reason seen and how many readings
  (or windows) were flagged.
- A **pollution event** incident opens at an area's first event window and closes at the end of
  the first quiet window `clear_after` seconds after the last event window, with every sensor
  that rose during it.

A run that ends leaves its open incidents open: they have not cleared. State: a few numbers per
sensor and per area.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sources.times import iso_time

CLEAR_AFTER = 1800


@dataclass(slots=True)
class Incident:
    """An `open` or `close` record."""

    id: str
    state: str  # "open" or "close"
    kind: str  # "sensor_fault" or "pollution_event"
    time: int  # the first flagged reading (open), or the one that cleared it (close)
    started: int
    reasons: list[str]
    count: int  # flagged readings (sensors) or event windows (areas) so far
    sensor_index: int | None = None
    area: str = ""
    sensors: list[int] = field(default_factory=list)


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
    return record
