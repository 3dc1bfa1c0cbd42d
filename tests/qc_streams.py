"""Random sensor streams for the column QC stages' equivalence tests (`test_columns_qc.py`).

A stream is a list of calls; a call is the rows one stage call sees: distinct sensors, in a
random order, one field layout, as the shard logic hands them over. Sensors come and go, get
stuck, read 0 on a channel, disagree, send `channel_flags`, miss values, have placeholders and
change their payload's fields now and then: what the per-sensor rules have to get right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from columns.batch import Columns, Work

FULL = (
    "pm1.0_cf_1", "pm2.5_cf_1", "pm10.0_cf_1", "humidity", "temperature",
    "pm1.0_cf_1_a", "pm1.0_cf_1_b", "pm2.5_cf_1_a", "pm2.5_cf_1_b", "pm2.5_atm_a", "pm2.5_atm_b",
    "pm2.5_atm", "channel_flags",
)  # fmt: skip
LAYOUTS = (
    FULL,
    FULL[:-1],  # no channel_flags
    FULL[::-1],  # the same fields in another order: a new layout for the flatline rule
    ("pm2.5_cf_1", "pm2.5_cf_1_a", "pm2.5_cf_1_b"),  # PM only
    ("humidity", "temperature"),  # no PM at all
    ("pm2.5_cf_1_a", "pm2.5_cf_1_b", "pm2.5_atm_a", "pm2.5_atm_b", "humidity"),  # no means
    ("pm2.5_cf_1", "humidity", "pressure"),  # no channels
)
MODES = ("normal", "normal", "normal", "stuck", "zeros", "dead_a", "dead_b", "disagree",
         "flags", "missing")  # fmt: skip


@dataclass
class Row:
    sensor: int
    time: int
    values: dict[str, float | None]
    placeholder: bool = False


class Sensor:
    """One simulated sensor: a PM level, a mode that changes now and then, its last values."""

    def __init__(self, rng: np.random.Generator, index: int):
        self.rng, self.index = rng, index
        self.level = float(rng.uniform(0, 60))
        self.mode = "normal"
        self.last: dict[str, float | None] | None = None
        self.time = int(rng.integers(0, 10**6)) * 120

    def values(self, layout: tuple[str, ...]) -> dict[str, float | None]:
        rng = self.rng
        if rng.random() < 0.06:
            self.mode = MODES[rng.integers(len(MODES))]
        if self.mode == "stuck" and self.last is not None and tuple(self.last) == layout:
            return dict(self.last)
        spread = 0.0 if rng.random() < 0.2 else 1.5  # identical PM now and then
        pm = max(0.0, round(self.level + rng.normal(0, spread), 1))
        a = max(0.0, round(pm + rng.normal(0, spread), 1))
        b = max(0.0, round(pm + rng.normal(0, spread), 1))
        if self.mode == "zeros":
            pm = a = b = 0.0 if rng.random() < 0.8 else -0.0  # JSON's -0.0 is a float too
        elif self.mode == "dead_a":
            a = 0.0
        elif self.mode == "dead_b":
            b = 0.0 if rng.random() < 0.9 else round(float(rng.uniform(0, 3)), 1)
        elif self.mode == "disagree":
            b = round(a * float(rng.uniform(1.5, 4)) + float(rng.uniform(0, 12)), 1)
            if rng.random() < 0.5:
                a, b = b, a
        out: dict[str, float | None] = {}
        for name in layout:
            if name == "channel_flags":
                out[name] = (
                    float(rng.choice([0.0, 1.0, 2.0, 3.0, 4.0, 1.5]))
                    if self.mode == "flags" or rng.random() < 0.05
                    else 0.0
                )
            elif name.endswith("_a"):
                out[name] = a if name.startswith("pm2.5_cf") else round(a * 0.7, 1)
            elif name.endswith("_b"):
                out[name] = b if name.startswith("pm2.5_cf") else round(b * 0.7, 1)
            elif name.startswith("pm"):
                out[name] = pm
            else:
                out[name] = round(float(rng.uniform(10, 90)), 0 if spread == 0.0 else 1)
            if self.mode == "missing" and rng.random() < 0.4:
                out[name] = None
        if rng.random() < 0.02:
            out = {name: None for name in layout}  # nothing came
        self.last = out
        return dict(out)


def stream(
    seed: int, sensors: int = 40, calls: int = 80, big: int = 0
) -> tuple[list[list[Row]], int]:
    """Calls over a pool of sensors that grows; `big`: also that many calls of every sensor.
    Returns the calls and the number of sensors (slots) there will be."""
    rng = np.random.default_rng(seed)
    pool = [Sensor(rng, int(i)) for i in rng.choice(2**40, sensors + 1, replace=False)[1:]]
    out: list[list[Row]] = []
    live = max(1, sensors // 4)  # sensors appear over the stream
    layout = FULL
    plan = ["small"] * calls + ["all"] * big
    rng.shuffle(plan)
    for kind in plan:
        live = min(sensors, live + int(rng.integers(0, 3)))
        if rng.random() < 0.08:
            layout = LAYOUTS[rng.integers(len(LAYOUTS))]
        if kind == "all":
            chosen = rng.permutation(sensors)
        else:
            size = 1 if rng.random() < 0.2 else int(rng.integers(1, live + 1))
            chosen = rng.choice(live, size, replace=False)  # some sensors sit a call out
        rows = []
        for i in chosen.tolist():
            sensor = pool[i]
            sensor.time += 120 * int(rng.choice([1, 1, 1, 1, 2, 16, 40]))
            if rng.random() < 0.05:  # a placeholder: every value missing
                rows.append(Row(sensor.index, sensor.time, dict.fromkeys(layout), True))
            else:
                rows.append(Row(sensor.index, sensor.time, sensor.values(layout)))
        out.append(rows)
    return out, sensors


def work_of(rows: list[Row], slot_of: dict[int, int]) -> tuple[Work, np.ndarray]:
    """The `Work` of one call (its layout is its first row's) and its rows' slots (new sensors
    get the next slots)."""
    fields = tuple(rows[0].values)
    values = np.array([[np.nan if r.values[f] is None else r.values[f] for f in fields]
                       for r in rows]).reshape(len(rows), len(fields))  # fmt: skip
    columns = Columns(
        np.array([r.sensor for r in rows], np.int64),
        np.array([r.time for r in rows], np.int64),
        fields,
        values,
    )
    slots = np.array([slot_of.setdefault(r.sensor, len(slot_of)) for r in rows], np.int64)
    return Work.of(columns, np.array([r.placeholder for r in rows], bool)), slots


def same_float(want: float | None, got: float) -> bool:
    """`got` is `want` bit for bit (NaN where `want` is None; the sign of a zero counts)."""
    if want is None:
        return bool(np.isnan(got))
    return float(got) == want and np.signbit(got) == np.signbit(want)
