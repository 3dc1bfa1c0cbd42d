"""The area stage, one reading at a time: the reference of its array form (`columns.areas`).

The flow runs `columns.areas` (each window's values as arrays, the neighbour sets found once per
set of positions); this per-reading form is its specification and the tests' oracle, as the
per-sensor stage classes are the column stages'. What it does, as the flow's second keyed stage:

After the per-sensor step, each reading goes to its home area and, as a neighbour only, to the
areas its neighbour radius reaches (`preparation.neighbours.areas_near`). `AreaLogic` gathers an
area's readings into tumbling windows of `window` seconds of event time and, when a window is
complete, applies the neighbour rules to it (`preparation.neighbours`): each home reading then
leaves with its spatial reasons and whether it is part of a pollution event.

**When a window is complete, the same way whatever the worker layout.** A sensor's readings
reach an area in the sensor's own order (one worker sends them, in order), but readings of
different sensors interleave differently with one worker, two, or two processes. So a window is
closed only when every member of the area has moved past it: its latest reading is at or after
the window's end, or it fell silent more than `offline_after` seconds before the window began.
Which readings count is decided by each sensor's own sequence, never by arrival: not a reading
within `grace` seconds of the sensor's first, not one more than `offline_after` after its
previous one (a sensor back from silence), not one that is not after the previous one. Those,
and readings without a position, leave at once, without spatial reasons.

The members: for a file, every sensor of the file is known before the run
(`preparation.registry`: one pass over it, positions and first times only), so every area knows
whom to wait for from the start, and the results are the same for every layout. A live source
has no such list: an area learns a sensor from its first reading, and the `grace` (30 minutes)
covers a worker running ahead of another by less than that in event time (the poller's batches
are one poll each).

Cost: an area keeps its open windows (a few) and, per sensor, six numbers; the neighbours of its
members come from one BallTree over them, built again only when a member joins; closing a window
costs a median of each home sensor's neighbours' window values.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass, field
from typing import Any

from bytewax.operators import StatefulBatchLogic

from core.readings import Reading
from preparation.incidents import CLEAR_AFTER, AreaIncidents, DriftTrack, NeighbourTrack
from preparation.neighbours import Neighbourhood, NeighbourRule, areas_near, robust_centre
from preparation.reasons import (
    ABOVE_NEIGHBOURS,
    BELOW_NEIGHBOURS,
    CHANNEL_DISAGREEMENT,
    CHANNEL_DOWNGRADED,
    CHANNEL_ZERO,
    FAULTS,
    LOCAL_SOURCE,
)
from preparation.registry import Registry

CHANNEL_CODES = frozenset({CHANNEL_DISAGREEMENT, CHANNEL_ZERO, CHANNEL_DOWNGRADED})
#: Seconds of event time per window, and the defaults of the other timings.
WINDOW = 600
GRACE = 1800
OFFLINE_AFTER = 3600


@dataclass(slots=True)
class Observation:
    """What an area needs of one reading; `reading` only in the home area (it leaves from there)."""

    sensor_index: int
    time: int
    latitude: float
    longitude: float
    value: float | None  # the spatial field, None when missing or the reading broke a rule
    channels_ok: bool  # no channel fault
    reading: Reading | None = None
    area: str = ""  # the area it is sent to (set by `route`)


@dataclass(slots=True)
class Placed:
    """A home reading leaving the area stage: its spatial reasons, and whether it is part of a
    pollution event of its area."""

    reading: Reading
    reasons: list[str] = field(default_factory=list)
    event: bool = False
    neighbours: dict[str, float] | None = None  # centre, excess, ratio when off them


@dataclass(slots=True)
class AreaWindow:
    """An area's verdict on one window, for incidents: in an event or not, and who rose."""

    area: str  # set from the key once out of the stage
    start: int
    end: int
    event: bool
    rising: list[int]
    sensors: int  # home sensors with a baseline


def observe(reading: Reading, field_name: str) -> Observation | None:
    """The observation of a cleaned reading, or None without a position."""
    values = reading.values
    lat, lon = values.get("latitude"), values.get("longitude")
    if lat is None or lon is None:
        return None
    faulty = not FAULTS.isdisjoint(reading.reasons)
    value = None if faulty else values.get(field_name)
    ok = CHANNEL_CODES.isdisjoint(reading.reasons)
    return Observation(reading.sensor_index, reading.time, lat, lon, value, ok)


class AreaLogic(StatefulBatchLogic):
    """One area's members, open windows and home sensors' baselines."""

    def __init__(
        self,
        rule: NeighbourRule,
        window: int = WINDOW,
        grace: int = GRACE,
        offline_after: int = OFFLINE_AFTER,
        resume: dict[str, Any] | None = None,
        registry: Registry | None = None,
        incidents: int | None = None,
        clear: int = CLEAR_AFTER,
    ):
        self.rule = rule
        self.clear = clear  # seconds of quiet that clear a sensor off its neighbours
        self.window = window
        self.grace = grace
        self.offline_after = offline_after
        state = resume or {}
        # sensor: [latest time, first time, latitude, longitude]
        self.members: dict[int, list] = state.get("members", {})
        self.windows: dict[int, dict[int, list[Observation]]] = state.get("windows", {})
        self.baselines: dict[int, list] = state.get("baselines", {})  # sensor: [baseline, n]
        self.counts: dict[str, int] = state.get("counts", {})
        self.registry = registry  # members known in advance (a file's), loaded on first use
        self.incidents = incidents  # seconds that clear an incident; None: no incident records
        self.event_incident: AreaIncidents | None = state.get("event_incident")
        self.tracks: dict[int, NeighbourTrack] = state.get("tracks", {})
        self.drifts: dict[int, DriftTrack] = state.get("drifts", {})
        self.registered = bool(state)
        self._near: dict[int, list[int]] | None = None  # members' neighbours (rebuilt on resume)

    def _count(self, tag: str, n: int = 1) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + n

    def _register(self, area: str) -> None:
        """Members known in advance: each will first report at its first time."""
        self.registered = True
        for sensor, (first, lat, lon) in (self.registry or {}).get(area, {}).items():
            self.members.setdefault(sensor, [first - 1, first, lat, lon])
        self._near = None

    def on_batch(self, values: list[Observation]) -> tuple[list[Any], bool]:
        out: list[Any] = []
        if not self.registered and values:
            self._register(values[0].area)
        members, window, windows = self.members, self.window, self.windows
        offline_after, grace = self.offline_after, self.grace
        for obs in values:
            member = members.get(obs.sensor_index)
            if member is None:
                members[obs.sensor_index] = [obs.time, obs.time, obs.latitude, obs.longitude]
                self._near = None  # a new member: neighbour lists to be found again
                included = False
            else:
                latest, first = member[0], member[1]
                included = latest < obs.time <= latest + offline_after and obs.time >= first + grace
                if obs.time > latest:
                    member[0] = obs.time
            if included:
                by_sensor = windows.get(obs.time // window)
                if by_sensor is None:
                    by_sensor = windows[obs.time // window] = {}
                by_sensor.setdefault(obs.sensor_index, []).append(obs)
            elif obs.reading is not None:
                out.append(Placed(obs.reading))
                self._count("spatial:unplaced")
        while windows:
            oldest = min(windows)
            if not self._complete(oldest * window):
                break
            out.extend(self._close(oldest))
        return out, StatefulBatchLogic.RETAIN

    def _complete(self, start: int) -> bool:
        end, silent, grace = start + self.window, start - self.offline_after, self.grace
        return all(
            m[0] >= end or m[0] < silent or m[1] + grace >= end for m in self.members.values()
        )

    def _neighbours(self) -> dict[int, list[int]]:
        """Every member's neighbours within the radius (positions are fixed: found again only
        when a member joins), by a BallTree over the members."""
        if self._near is None:
            sensors = sorted(self.members)
            lat = [self.members[s][2] for s in sensors]
            lon = [self.members[s][3] for s in sensors]
            found = Neighbourhood(lat, lon, self.rule.radius_km).within(range(len(sensors)))
            self._near = {
                s: [sensors[i] for i in ids.tolist()] for s, ids in zip(sensors, found, strict=True)
            }
        return self._near

    def _close(self, index: int) -> list[Any]:
        """The window's verdict: each home reading with its spatial reasons and event flag."""
        rule = self.rule
        by_sensor = self.windows.pop(index)
        self._count("spatial:windows")
        values: dict[int, float] = {}  # the window value of each sensor with one
        ok: dict[int, bool] = {}
        for sensor, observations in by_sensor.items():
            observed = [o.value for o in observations if o.value is not None]
            if observed:
                values[sensor] = observed[0] if len(observed) == 1 else statistics.median(observed)
                ok[sensor] = all(o.channels_ok for o in observations)
        home = sorted(s for s in values if by_sensor[s][0].reading is not None)
        near = self._neighbours() if home else {}
        judged: dict[int, tuple[int, float]] = {}  # sensor: (side, centre), agreeing channels
        for sensor in home:
            around = [values[n] for n in near.get(sensor, ()) if n in values]
            if len(around) >= rule.min_neighbours and ok[sensor]:
                centre, spread = robust_centre(around)
                judged[sensor] = (rule.side(values[sensor], centre, spread), centre)
        rising, ready = [], 0
        for sensor in home:
            base = self.baselines.get(sensor)
            if base is not None and base[1] >= rule.baseline_windows:
                ready += 1
                if ok[sensor] and rule.rises(values[sensor], base[0]):
                    rising.append(sensor)
        event = len(rising) >= max(rule.min_rising, rule.event_share * ready)
        up = set(rising)
        inside = list(rising)  # the event's sensors: those that rose, and (during it) those
        if event:  # up by more than `join_abs` on agreeing channels, however high they sat
            for sensor in home:
                base = self.baselines.get(sensor)
                ready_base = base is not None and base[1] >= rule.baseline_windows
                joins = ready_base and values[sensor] - base[0] > rule.join_abs
                if sensor not in up and ok[sensor] and joins:
                    inside.append(sensor)
        up = set(inside)
        for sensor in home:  # learn the baselines of the sensors that did not rise, not during an
            if not event and sensor not in up:  # event (a plume's slow edge is no baseline)
                base = self.baselines.setdefault(sensor, [values[sensor], 0])
                base[0] += rule.baseline_alpha * (values[sensor] - base[0])
                base[1] += 1
        start = index * self.window
        end = start + self.window
        out: list[Any] = [AreaWindow("", start, end, event, rising, ready)]
        if event:
            self._count("spatial:event_windows")
            for sensor, (side, centre) in judged.items():
                if side > 0 and sensor in up or side < 0:  # the event explains it
                    judged[sensor] = (0, centre)
        reported = self._judge(start, end, values, judged, (event, inside), out)
        for sensor, observations in by_sensor.items():
            if observations[0].reading is None:
                continue
            found = reported.get(sensor)
            reasons = [] if found is None else [found[0]]
            detail = None if found is None else found[1]
            in_event = event and sensor in up
            for obs in observations:
                out.append(Placed(obs.reading, list(reasons), in_event, detail))
            if reasons:
                self._count("spatial:" + reasons[0], len(observations))
            if in_event:
                self._count("spatial:in_event", len(observations))
        return out

    def _judge(
        self,
        start: int,
        end: int,
        values: dict[int, float],
        judged: dict[int, tuple[int, float]],
        verdict: tuple[bool, list[int]],
        out: list[Any],
    ) -> dict[int, tuple[str, dict[str, float]]]:
        """Each judged sensor's standing over its recent windows (`NeighbourTrack`) and its daily
        ratio (`DriftTrack`); the sensors reported off their neighbours, with the reason and
        how far off; incident records (when kept) into `out`."""
        rule, emit, (event, rising) = self.rule, self.incidents is not None, verdict
        if emit:
            if self.event_incident is None:
                self.event_incident = AreaIncidents(self.incidents)
            out.extend(self.event_incident.observe("", start, end, event, rising))
        reported: dict[int, tuple[str, dict[str, float]]] = {}
        for sensor, (side, centre) in judged.items():
            x = values[sensor]
            track = self.tracks.get(sensor)
            if track is None and side != 0:
                track = self.tracks[sensor] = NeighbourTrack(
                    rule.open_windows, rule.of_windows, self.clear
                )
            if track is not None:
                kind = LOCAL_SOURCE if side > 0 or (side == 0 and track.side > 0) else "anomaly"
                shown, records = track.observe(sensor, start, end, side, x, centre, kind)
                if shown:
                    ratio = round(x / centre, 3) if centre > 0 else None
                    detail = {"centre": round(centre, 2), "excess": round(x - centre, 2)}
                    if ratio is not None:
                        detail["ratio"] = ratio
                    code = ABOVE_NEIGHBOURS if side > 0 else BELOW_NEIGHBOURS
                    reported[sensor] = (code, detail)
                if emit:
                    out.extend(records)
            ratio = x / centre if not event and centre >= rule.drift_level else None
            drift = self.drifts.get(sensor)
            if drift is None:
                drift = self.drifts[sensor] = DriftTrack()
            found = drift.observe(rule, sensor, start, ratio)
            if found:
                self._count("spatial:calibration_drift", sum(i.state == "open" for i in found))
                if emit:
                    out.extend(found)
        return reported

    def on_eof(self) -> tuple[list[Any], bool]:
        out: list[Any] = []
        for start in sorted(self.windows):
            out.extend(self._close(start))
        out.append(dict(self.counts))
        self.counts = {}
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> dict[str, Any]:
        return {
            "members": {s: list(m) for s, m in self.members.items()},
            "windows": {w: {s: list(o) for s, o in by.items()} for w, by in self.windows.items()},
            "baselines": {s: list(b) for s, b in self.baselines.items()},
            "counts": dict(self.counts),
            "event_incident": None
            if self.event_incident is None
            else copy.deepcopy(self.event_incident),
            "tracks": {s: copy.copy(t) for s, t in self.tracks.items()},
            "drifts": {s: copy.copy(t) for s, t in self.drifts.items()},
        }


def route(
    batch: list[Reading], field_name: str, area_km: float, radius_km: float, places: dict
) -> list[tuple[str, Any]]:
    """Each cleaned reading to its home area (with the reading) and, as a neighbour, to the other
    areas its radius reaches; a reading without a position (or a placeholder) as `("", Placed)`,
    to leave at once. `places` memoises a position's areas (a pure function of it)."""
    out: list[tuple[str, Any]] = []
    for reading in batch:
        if reading.placeholder:
            continue
        obs = observe(reading, field_name)
        if obs is None:
            out.append(("", Placed(reading)))
            continue
        where = (obs.latitude, obs.longitude)
        areas = places.get(where)
        if areas is None:
            areas = places[where] = areas_near(obs.latitude, obs.longitude, area_km, radius_km)
        obs.reading, obs.area = reading, areas[0]
        out.append((areas[0], obs))
        if len(areas) > 1:
            s, t, lat, lon, v, ok = obs.sensor_index, obs.time, *where, obs.value, obs.channels_ok
            out.extend((area, Observation(s, t, lat, lon, v, ok, None, area)) for area in areas[1:])
    return out
