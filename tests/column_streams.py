"""Random sensor streams for testing the column stages against their per-reading twins.

A stream is a list of polls; each poll is a list of `(sensor, values)` rows, every sensor at most
once (the shard logic splits repeats into rounds before a stage sees them). Sensors come and go
(each has a random span of polls and skips some), new ones keep appearing (so slots grow), and
some polls hold a single row or thousands. Values are missing at a rate drawn per stream, some
are out of range, and some sensors go silent on a field for long runs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np

from columns.batch import Columns, Work

Row = tuple[int, dict[str, float | None]]
Value = Callable[[random.Random, str, int], float]


def stream(
    seed: int,
    fields: Sequence[str],
    value: Value,
    *,
    polls: int = 60,
    sensors: int = 40,
    big: int = 0,
) -> list[list[Row]]:
    """`polls` polls over about `sensors` sensors (more when `big`: one poll of `big` rows)."""
    rng = random.Random(seed)
    p_missing = rng.choice((0.0, 0.05, 0.3, 0.8))
    spans = {}
    for sensor in rng.sample(range(10**6), sensors):
        start = rng.randrange(polls)
        spans[sensor] = (start, rng.randrange(start, polls + 1))
    silent = {(s, f) for s in spans for f in fields if rng.random() < 0.1}
    big_poll = rng.randrange(polls) if big else -1
    out = []
    for t in range(polls):
        if t == big_poll:
            present = [10**7 + k for k in range(big)]
        elif rng.random() < 0.1:  # a poll of one row
            present = [rng.choice(list(spans))]
        else:
            present = [s for s, (a, b) in spans.items() if a <= t < b and rng.random() < 0.9]
            rng.shuffle(present)
        rows = []
        for sensor in present:
            values: dict[str, float | None] = {}
            for name in fields:
                gone = (sensor, name) in silent and t % 20 < 15
                values[name] = None if gone or rng.random() < p_missing else value(rng, name, t)
            rows.append((sensor, values))
        out.append(rows)
    return out


def work_of(rows: Sequence[Row], fields: Sequence[str]) -> Work:
    """The poll as the shard logic hands it to the stages (NaN where None)."""
    values = np.array(
        [[np.nan if v[f] is None else v[f] for f in fields] for _, v in rows], dtype=np.float64
    ).reshape(len(rows), len(fields))
    sensors = np.array([s for s, _ in rows], dtype=np.int64)
    return Work.of(Columns(sensors, np.zeros(len(rows), np.int64), tuple(fields), values))


class Slots:
    """Sensor -> slot, as the shard logic assigns them: in order of first appearance."""

    def __init__(self) -> None:
        self.of: dict[int, int] = {}

    def __call__(self, rows: Sequence[Row]) -> np.ndarray:
        for sensor, _ in rows:
            self.of.setdefault(sensor, len(self.of))
        return np.array([self.of[s] for s, _ in rows], dtype=np.intp)


def bits(value: float | None) -> int | None:
    """A float's exact bits (None for None or NaN), to compare values bit for bit."""
    if value is None or value != value:
        return None
    return int(np.float64(value).view(np.int64))
