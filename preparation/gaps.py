"""Missing time steps per sensor: gap events or placeholder readings, and `sensor_offline` events.

A PurpleAir sensor reports every few minutes: 2 in real time, 10, 30 or 60 in the history endpoint's
averages. Its interval is each sensor's own, observed: the mean of its last `STEPS` (5) time steps,
leaving out any over twice their median (a gap), rounded to whole minutes (`observed_interval`;
`interval=None`, the default), so a 2-minute stream and a 10-minute history need no setting, and a
sensor whose cadence changes (a history, then real time) follows within three steps. A step is
judged against the steps before it; a sensor's first `MIN_STEPS` (3) steps set its cadence and are
not judged (one or two jittered polls, 94 s then 141 s, would make a gap of the second), though a
silence longer than `offline_after` is still reported. A number fixes the interval instead. Its
`last_seen` jitters, so a reading counts as late when it comes at least 1.5 intervals after the
previous one; the number of missed steps is the gap rounded to whole intervals, minus one
(`(dt + interval // 2) // interval - 1`). A late reading makes the gap visible, as one of:

- `"events"`: one `gap` event with its length and the number of missed steps;
- `"fill"`: one placeholder reading per missed step on the grid `last + k × interval`, every
  value None (so the imputer fills it) and `placeholder=True` (so it is counted apart). A silence
  longer than `offline_after` is not filled: that sensor was offline, not late. Nor is a gap of
  more than `max_fill` missed steps (720 by default, a day of 2-minute steps): it is one `gap`
  event, as in `"events"`, so a jump in time never makes millions of placeholders.

A silence longer than `offline_after` seconds is also a `sensor_offline` event. In event time it
is noticed when the sensor's next reading arrives (a replayed file has no clock). With
`clock="system"` (a live source) `GapLogic` also asks Bytewax to wake it `offline_after` seconds
of wall time after the sensor's last reading arrived, so silence is reported without waiting for
a next reading; it is reported once per silence.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from bytewax.operators import StatefulBatchLogic

from core.readings import Reading

MODES = ("events", "fill")
CLOCKS = ("event", "system")
#: PurpleAir's real-time reporting interval, seconds (the placeholder grid when fixed).
INTERVAL = 120
#: Time steps a sensor's observed interval is the median of.
STEPS = 5
#: Steps seen before a sensor's interval is known (and its gaps judged).
MIN_STEPS = 3
#: An observed interval of a minute or more is rounded to whole minutes.
MINUTE = 60
#: Silence after which a sensor is reported offline, seconds.
OFFLINE_AFTER = 3600
#: The most placeholders one gap is filled with (a day of 2-minute steps); a longer gap is an event.
MAX_FILL = 720


@dataclass(slots=True)
class GapEvent:
    """A gap in a sensor's readings (`kind="gap"`) or a sensor gone silent (`"sensor_offline"`)."""

    kind: str
    sensor_index: int
    last_seen: int  # event time of the sensor's last reading before the silence
    seconds: int  # length of the silence (to the next reading, or so far)
    missed: int  # whole intervals without a reading
    time: int | None = None  # event time of the reading that ended it; None while still silent
    clock: str = "event"  # what noticed it: event time, or the system clock


def observed_interval(steps: tuple[int, ...]) -> int | None:
    """The mean of a sensor's last time steps, leaving out a gap (a step over twice their
    median, the upper one of an even count), in whole minutes from a minute up; None before
    `MIN_STEPS` steps. A median alone follows jitter: polls 92 s, 148 s, 95 s, 147 s apart would
    make it 95 and the next 147 a gap. Whole minutes, since PurpleAir's cadences are (2 in real
    time; 10, 30, 60 in the history) and a jittered 122 s would count a 5058 s silence as 41
    missed polls, not 42.

    >>> observed_interval((148, 92, 147, 95, 147)), observed_interval((600, 600, 3000))
    (120, 600)
    >>> observed_interval((117, 139, 111, 120, 5058)), observed_interval((5, 6, 5))
    (120, 5)
    >>> observed_interval((94, 141)) is None
    True
    """
    if len(steps) < MIN_STEPS:
        return None
    limit = 2 * sorted(steps)[len(steps) // 2]
    kept = [step for step in steps if step <= limit]
    mean = (sum(kept) + len(kept) // 2) // len(kept)
    return mean if mean < MINUTE else (mean + MINUTE // 2) // MINUTE * MINUTE


def on_time_limit(interval: int | None, offline_after: int) -> int:
    """Steps shorter than this miss nothing (1.5 intervals; with no interval yet, only a silence
    longer than `offline_after` is noticed)."""
    if interval is None:
        return offline_after + 1
    return min(2 * interval - interval // 2, offline_after + 1)


def missed_steps(seconds: int, interval: int = INTERVAL) -> int:
    """Intervals without a reading in a silence of `seconds`.

    >>> [missed_steps(s) for s in (90, 150, 179, 180, 240, 600)]
    [0, 0, 0, 1, 1, 4]
    """
    return max((seconds + interval // 2) // interval - 1, 0)


class GapTracker:
    """One sensor's last event time; what to emit for each new reading.

    >>> gaps = GapTracker(mode="fill", interval=120, offline_after=3600)
    >>> [r.time for r in gaps.observe(Reading(7, 1000, {"pm": 1.0}))]
    [1000]
    >>> out = gaps.observe(Reading(7, 1360, {"pm": 2.0}))
    >>> [(r.time, r.placeholder, r.values) for r in out]
    [(1120, True, {'pm': None}), (1240, True, {'pm': None}), (1360, False, {'pm': 2.0})]
    """

    steps: tuple[int, ...] = ()  # (a snapshot from before the observed interval has none)

    def __init__(
        self,
        mode: str = "events",
        interval: int | None = None,
        offline_after: int = OFFLINE_AFTER,
        max_fill: int = MAX_FILL,
    ):
        if mode not in MODES:
            raise ValueError(f"gaps must be one of {MODES}, got {mode!r}")
        if interval is not None and (interval < 1 or offline_after < interval):
            raise ValueError("need interval >= 1 and offline_after >= interval")
        if offline_after < 1:
            raise ValueError("offline_after must be at least 1")
        if max_fill < 1:
            raise ValueError("max_fill must be at least 1")
        self.mode = mode
        self.interval = interval
        self.offline_after = offline_after
        self.max_fill = max_fill
        self.sensor_index: int | None = None
        self.last_time: int | None = None
        self.last_fields: tuple[str, ...] = ()  # fill mode: the placeholders' fields
        self.arrived: float | None = None  # wall time the last reading arrived (system clock)
        self.offline_reported = False
        self.steps: tuple[int, ...] = ()  # interval None: the last STEPS time steps, oldest first

    def step(self) -> int | None:
        """The interval the next step is judged against: fixed, or this sensor's observed one."""
        return self.interval if self.interval is not None else observed_interval(self.steps)

    def _stepped(self, seconds: int) -> None:
        if self.interval is None:
            self.steps = (*self.steps[1 - STEPS :], seconds)

    def observe(self, reading: Reading, arrived: float | None = None) -> list[Reading | GapEvent]:
        """Events and placeholders for the silence before `reading` (if any), then the reading.

        A reading not after the previous one (duplicate or late) passes through unchanged.
        """
        out: list[Reading | GapEvent] = []
        last = self.last_time
        if last is not None and reading.time > last:
            seconds = reading.time - last
            interval = self.step()
            missed = 0 if interval is None else missed_steps(seconds, interval)
            offline = seconds > self.offline_after
            if offline and not self.offline_reported:
                out.append(self._event("sensor_offline", reading, last, seconds, missed))
            if missed and (self.mode == "events" or (missed > self.max_fill and not offline)):
                out.append(self._event("gap", reading, last, seconds, missed))
            elif missed and not offline:
                out.extend(
                    self._placeholder(reading.sensor_index, last, k, interval or INTERVAL)
                    for k in range(missed)
                )
            self._stepped(seconds)
        if last is None or reading.time > last:
            self.sensor_index = reading.sensor_index
            self.last_time = reading.time
            if self.mode == "fill":
                self.last_fields = tuple(reading.values)
            self.offline_reported = False
        self.arrived = arrived
        out.append(reading)
        return out

    def observe_all(
        self, readings: Iterable[Reading], arrived: float | None = None
    ) -> list[Reading | GapEvent]:
        """`observe` for each reading, in order, into one list: a reading that comes less than
        1.5 intervals after the previous one (the usual case) is handled without a call."""
        out: list[Reading | GapEvent] = []
        on_time = on_time_limit(self.step(), self.offline_after)
        fill = self.mode == "fill"
        observed = self.interval is None
        for reading in readings:
            last = self.last_time
            if last is not None and 0 < reading.time - last < on_time:  # nothing missed
                if observed:
                    self._stepped(reading.time - last)
                    on_time = on_time_limit(self.step(), self.offline_after)
                self.last_time = reading.time
                if fill:
                    self.last_fields = tuple(reading.values)
                self.offline_reported = False
                out.append(reading)
            else:
                out.extend(self.observe(reading, arrived))
                on_time = on_time_limit(self.step(), self.offline_after)
        self.arrived = arrived
        return out

    def wake_at(self) -> float | None:
        """Wall time at which the sensor's silence makes it offline, unless already reported."""
        if self.arrived is None or self.offline_reported:
            return None
        return self.arrived + self.offline_after

    def offline_by_clock(self, now: float) -> GapEvent | None:
        """A `sensor_offline` event when the wall clock says the sensor is silent too long."""
        wake = self.wake_at()
        if wake is None or now < wake or self.sensor_index is None or self.last_time is None:
            return None
        self.offline_reported = True
        seconds = int(now - wake) + self.offline_after
        return GapEvent(
            "sensor_offline",
            self.sensor_index,
            self.last_time,
            seconds,
            missed_steps(seconds, self.step() or seconds),
            None,
            "system",
        )

    def _event(self, kind: str, reading: Reading, last: int, seconds: int, missed: int) -> GapEvent:
        return GapEvent(kind, reading.sensor_index, last, seconds, missed, reading.time)

    def _placeholder(self, sensor_index: int, last: int, k: int, interval: int) -> Reading:
        values: dict[str, float | None] = dict.fromkeys(self.last_fields)
        return Reading(sensor_index, last + (k + 1) * interval, values, placeholder=True)


def _wall_now() -> datetime:
    return datetime.now(UTC)


class GapLogic(StatefulBatchLogic[Reading, Reading | GapEvent, GapTracker]):
    """Bytewax per-key logic around a `GapTracker`; with `clock="system"`, wake-ups for offline.

    `now` returns the current UTC time (injectable for tests); it is read once per batch.
    """

    def __init__(
        self,
        tracker: GapTracker,
        clock: str = "event",
        now: Callable[[], datetime] = _wall_now,
    ):
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}")
        self.tracker = tracker
        self.clock = clock
        self.now = now

    def on_batch(self, values: list[Reading]) -> tuple[Iterable[Reading | GapEvent], bool]:
        arrived = self.now().timestamp() if self.clock == "system" else None
        return self.tracker.observe_all(values, arrived), StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[Reading | GapEvent], bool]:
        wake = self.tracker.wake_at()
        if wake is None:
            return [], StatefulBatchLogic.RETAIN
        # Bytewax calls this once the wake time has passed by its own clock: trust it.
        event = self.tracker.offline_by_clock(max(self.now().timestamp(), wake))
        return ([] if event is None else [event]), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        wake = self.tracker.wake_at() if self.clock == "system" else None
        return None if wake is None else datetime.fromtimestamp(wake, UTC)

    def snapshot(self) -> GapTracker:
        return copy.copy(self.tracker)  # its attributes are numbers and tuples: never shared
