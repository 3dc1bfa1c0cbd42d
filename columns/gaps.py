"""Missed time steps over a batch: `preparation.gaps.GapTracker` for every slot, in arrays.

The per-reading tracker keeps a sensor's last event time, whether its silence was reported, when
its last reading arrived (system clock) and, in fill mode, its last reading's fields. Here they
are arrays by slot, and the usual row (the next reading, less than 1.5 intervals after the last:
nothing missed) is a few numpy operations over the batch; a row that is anything else (a
sensor's first reading, a gap, a silence, a repeat or a late reading) goes through a
`GapTracker` made from its slot's state, so its events and placeholders are the per-reading
path's own. A sensor seen many times in one batch is taken along time: each pass takes every
slot's rows up to its first rare one (each row's interval limit from the steps before it, the
slot's then the batch's, `columns.rounds.Along`), that rare row through its tracker, and the
rest in the next pass.

>>> gaps = GapColumns(lambda resume: GapLogic(resume or GapTracker("fill", 120, 3600)))
>>> gaps.grow(1)
>>> gaps.expand([7], [1000], ("pm",), np.array([0]))
([], {})
>>> events, before = gaps.expand([7, 7], [1120, 1480], ("pm",), np.array([0, 0]))
>>> events, before
([], {1: [(1240, ('pm',)), (1360, ('pm',))]})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from columns.grow import grown
from columns.rounds import Along
from core.readings import Reading
from preparation.gaps import MIN_STEPS, MINUTE, STEPS, GapEvent, GapLogic, GapTracker

#: `last` of a slot that has had no reading (the tracker's None).
NEVER = np.iinfo(np.int64).min


class GapColumns:
    """Every slot's gap tracking; `build` is the flow's per-key gap logic factory
    (`SensorConfig.gaps`): it gives the mode, interval, silence and clock. The arrays pickle;
    `attach` gives `build` back after a resume."""

    def __init__(self, build: Callable[[GapTracker | None], GapLogic]):
        self.sensor = np.zeros(0, np.int64)  # per slot: the sensor (of its last reading)
        self.last = np.zeros(0, np.int64)  # its last event time, NEVER: none yet
        self.reported = np.zeros(0, bool)  # its silence was reported offline
        self.arrived = np.zeros(0)  # wall time its last batch arrived, NaN: None
        self.layout = np.zeros(0, np.int32)  # fill mode: index of its last fields in `layouts`
        self.steps = np.zeros((0, STEPS), np.int64)  # observed interval: last steps, 0: none
        self.layouts: list[tuple[str, ...]] = [()]
        self.attach(build)

    def attach(self, build: Callable[[GapTracker | None], GapLogic]) -> None:
        logic = build(None)
        tracker = logic.tracker
        self.build, self.clock, self.now = build, logic.clock, logic.now
        self.mode, self.interval = tracker.mode, tracker.interval
        self.offline_after = tracker.offline_after
        self.max_fill = tracker.max_fill

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in ("build", "clock", "now"):
            state.pop(name)  # the configuration's: `attach` gives them back
        return state

    def grow(self, slots: int) -> None:
        self.sensor = grown(self.sensor, slots, 0)
        self.last = grown(self.last, slots, NEVER)
        self.reported = grown(self.reported, slots, False)
        self.arrived = grown(self.arrived, slots, np.nan)
        self.layout = grown(self.layout, slots, 0)
        self.steps = grown(self.steps, slots, 0)

    def _on_time(self, steps: np.ndarray) -> np.ndarray:
        """`on_time_limit` of rows whose slots' last steps are `steps` (a row each): from the
        fixed interval, or each one's observed one (`observed_interval` of its steps)."""
        limit = self.offline_after + 1
        if self.interval is not None:
            return np.full(len(steps), min(2 * self.interval - self.interval // 2, limit), np.int64)
        n = (steps > 0).sum(axis=1)
        ordered = np.sort(np.where(steps > 0, steps, np.iinfo(np.int64).max), axis=1)
        median = ordered[np.arange(len(steps)), n // 2]
        kept = (steps > 0) & (steps <= 2 * median[:, None])
        count = np.maximum(kept.sum(axis=1), 1)
        interval = (np.where(kept, steps, 0).sum(axis=1) + count // 2) // count
        minutes = (interval + MINUTE // 2) // MINUTE * MINUTE
        interval = np.where(interval < MINUTE, interval, minutes)
        known = n >= MIN_STEPS
        return np.where(known, np.minimum(2 * interval - interval // 2, limit), limit)

    def _layout(self, fields: tuple[str, ...]) -> int:
        try:
            return self.layouts.index(fields)
        except ValueError:
            self.layouts.append(fields)
            return len(self.layouts) - 1

    def _tracker(self, slot: int) -> GapTracker:
        """A per-reading tracker holding slot `slot`'s state."""
        tracker = GapTracker(self.mode, self.interval, self.offline_after, self.max_fill)
        if self.last[slot] != NEVER:
            tracker.sensor_index = int(self.sensor[slot])
            tracker.last_time = int(self.last[slot])
        tracker.last_fields = self.layouts[self.layout[slot]]
        arrived = self.arrived[slot]
        tracker.arrived = None if arrived != arrived else float(arrived)
        tracker.offline_reported = bool(self.reported[slot])
        tracker.steps = tuple(int(x) for x in self.steps[slot] if x)
        return tracker

    def _store(self, slot: int, tracker: GapTracker) -> None:
        if tracker.last_time is not None:
            self.sensor[slot] = tracker.sensor_index
            self.last[slot] = tracker.last_time
        self.layout[slot] = self._layout(tracker.last_fields)
        self.arrived[slot] = np.nan if tracker.arrived is None else tracker.arrived
        self.reported[slot] = tracker.offline_reported
        if self.interval is None:
            self.steps[slot] = 0
            if tracker.steps:
                self.steps[slot, STEPS - len(tracker.steps) :] = tracker.steps

    def expand(
        self,
        sensors: Sequence[int],
        times: Sequence[int],
        fields: tuple[str, ...],
        slots: np.ndarray,
    ) -> tuple[list[GapEvent], dict[int, list[tuple[int, tuple[str, ...]]]]]:
        """`(events, placeholders)` of a batch's rows, as `GapLogic.on_batch` gives them:
        `placeholders[i]` is the `(time, fields)` of each placeholder that goes before row `i`
        (only rows that have any)."""
        arrived = self.now().timestamp() if self.clock == "system" else None
        events: list[GapEvent] = []
        before: dict[int, list[tuple[int, tuple[str, ...]]]] = {}
        times_array = np.asarray(times, np.int64)
        fill = self.mode == "fill"
        layout = self._layout(fields) if fill else 0
        pending = np.arange(len(slots))
        while len(pending):  # each pass: every slot's rows up to its first that is not on time
            at, when = slots[pending], times_array[pending]
            along = Along(at)
            last = along.previous(when, self.last[at])  # as if the rows before were on time
            late = when - last  # NEVER makes it huge: not on time
            steps = self.steps[at]
            if self.interval is None:  # each row's last steps: its slot's, then the rows'
                state = steps
                for _ in range(STEPS):
                    steps = along.previous(np.c_[steps[:, 1:], late[:, None]], state)
            on_time = (last != NEVER) & (late > 0) & (late < self._on_time(steps))
            behind = along.carry(~on_time, np.ones(len(at), bool), np.zeros(len(at), bool))
            rare = behind & ~along.previous(behind, np.zeros(len(at), bool))
            fast = np.flatnonzero(~behind)
            if len(fast):
                ends = fast[Along(at[fast]).last]  # each slot's last row on time
                done = at[ends]
                if self.interval is None:
                    self.steps[done] = np.c_[steps[ends, 1:], late[ends, None]]
                self.last[done] = when[ends]
                self.reported[done] = False
                if fill:
                    self.layout[done] = layout
            for i in pending[rare].tolist():  # the rare rows: the per-reading tracker
                slot = int(slots[i])
                tracker = self._tracker(slot)
                proxy = Reading(sensors[i], times[i], dict.fromkeys(fields))
                for item in tracker.observe(proxy, arrived):
                    if type(item) is GapEvent:
                        events.append(item)
                    elif item is not proxy:
                        before.setdefault(i, []).append((item.time, tuple(item.values)))
                self._store(slot, tracker)
            pending = pending[behind & ~rare]
        if arrived is not None:  # observe_all's last step: when each sensor's batch arrived
            self.arrived[slots] = arrived
        return events, before

    def _wakes(self) -> np.ndarray:
        """Each slot's `GapTracker.wake_at()`, NaN for None."""
        return np.where(self.reported, np.nan, self.arrived + self.offline_after)

    def notify_at(self) -> datetime | None:
        if self.clock != "system":
            return None
        wakes = self._wakes()
        if np.isnan(wakes).all():
            return None
        return datetime.fromtimestamp(float(np.nanmin(wakes)), UTC)

    def on_notify(self) -> list[GapEvent]:
        """`sensor_offline` events of the slots whose silence is due (`GapLogic.on_notify`:
        Bytewax wakes the step once the first is due)."""
        wakes = self._wakes()
        if np.isnan(wakes).all():
            return []
        now = self.now().timestamp()
        due = max(now, float(np.nanmin(wakes)))
        out = []
        for slot in np.flatnonzero(wakes <= due).tolist():
            tracker = self._tracker(slot)
            event = tracker.offline_by_clock(max(now, float(wakes[slot])))
            if event is not None:
                out.append(event)
            self._store(slot, tracker)
        return out
