"""Random sensor streams for the column QC stages' equivalence tests (`test_columns_qc.py`).

A stream is a list of calls; a call is the rows one stage call sees: distinct sensors, in a
random order, one field layout, as the shard logic hands them over. Sensors come and go, get
stuck, read 0 on a channel, disagree, send `channel_flags`, miss values, have placeholders and
change their payload's fields now and then: what the per-sensor rules have to get right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    reasons: list[str] = field(default_factory=list)  # the rules' codes so far


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


def plan(rng: np.random.Generator, sensors: int, calls: int, big: int) -> list[np.ndarray]:
    """Each call's sensors (positions in the pool), distinct: `calls` calls over a pool that
    grows (some sensors sit a call out; 1 row 20 % of the time) and `big` calls of every
    sensor, shuffled together. Rows come in a random order, or (now and then) in the order the
    sensors first appeared, so that their slots are consecutive, as a steady poll's are."""
    kinds = ["small"] * calls + ["all"] * big
    rng.shuffle(kinds)
    live = max(1, sensors // 4)  # sensors appear over the stream
    order: list[int] = []  # positions in order of first appearance: their slots
    out = []
    for kind in kinds:
        live = min(sensors, live + int(rng.integers(0, 3)))
        if kind == "all":
            chosen = rng.permutation(sensors)
            if rng.random() < 0.5:
                seen = set(order)
                chosen = np.array(order + [i for i in chosen.tolist() if i not in seen])
        elif order and rng.random() < 0.2:
            start = int(rng.integers(len(order)))
            chosen = np.array(order[start : start + int(rng.integers(1, len(order) + 1))])
        else:
            size = 1 if rng.random() < 0.2 else int(rng.integers(1, live + 1))
            chosen = rng.choice(live, size, replace=False)
        seen = set(order)
        order += [i for i in chosen.tolist() if i not in seen]
        out.append(chosen)
    return out


def indices(rng: np.random.Generator, sensors: int) -> list[int]:
    """Distinct sensor indices, up to 2**40."""
    return [int(i) for i in rng.choice(2**40, sensors + 1, replace=False)[1:]]


def stream(
    seed: int, sensors: int = 40, calls: int = 80, big: int = 0
) -> tuple[list[list[Row]], int]:
    """Readings as received (for flatline and channels): calls over a pool of sensors that
    grows, a layout that changes now and then. Returns the calls and the number of sensors."""
    rng = np.random.default_rng(seed)
    pool = [Sensor(rng, i) for i in indices(rng, sensors)]
    out: list[list[Row]] = []
    layout = FULL
    for chosen in plan(rng, sensors, calls, big):
        if rng.random() < 0.08:
            layout = LAYOUTS[rng.integers(len(LAYOUTS))]
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


#: Layouts of the rows the NowCast sees: with pm2.5_epa, without, with an `aqi` of its own.
EPA_LAYOUTS = (("pm2.5_cf_1", "pm2.5_epa"), ("pm2.5_cf_1",), ("aqi", "pm2.5_epa"))
FAULT_CODES = ("flatline", "out_of_range", "channel_zero", "channel_disagreement",
               "channel_downgraded")  # fmt: skip


def step(rng: np.random.Generator) -> int:
    """Seconds to a sensor's next reading: mostly 2 minutes; hours now and then; late (back in
    time) or at the same time sometimes."""
    kind = rng.random()
    if kind < 0.8:
        return 120
    if kind < 0.9:
        return 120 * int(rng.integers(2, 400))
    if kind < 0.95:
        return 0
    return -int(rng.integers(1, 7200))


def reasons(rng: np.random.Generator, rate: float) -> list[str]:
    """Rule codes, in an order the rules could give; `score` among them now and then."""
    if rng.random() >= rate:
        return ["score"] if rng.random() < 0.02 else []
    picked = [c for c in FAULT_CODES if rng.random() < 0.3] or [FAULT_CODES[rng.integers(5)]]
    if rng.random() < 0.1:
        picked.append("score")
    return picked


def epa_stream(
    seed: int, sensors: int = 30, calls: int = 150, big: int = 0
) -> tuple[list[list[Row]], int]:
    """Rows as the NowCast sees them: pm2.5_epa (negative, zero, -0.0, missing now and then),
    placeholders, `flatline` reasons, times that jump hours, repeat or go back."""
    rng = np.random.default_rng(seed)
    names = indices(rng, sensors)
    level = rng.uniform(-2, 80, sensors)
    clock = [int(t) for t in rng.integers(-3 * 3600, 10**9, sensors)]  # some before 1970
    layout = EPA_LAYOUTS[0]
    out = []
    for chosen in plan(rng, sensors, calls, big):
        if rng.random() < 0.05:
            layout = EPA_LAYOUTS[rng.integers(len(EPA_LAYOUTS))]
        rows = []
        for i in chosen.tolist():
            clock[i] += step(rng)
            pm: float | None = round(float(level[i] + rng.normal(0, 5)), 2)
            draw = rng.random()
            if draw < 0.05:
                pm = None
            elif draw < 0.08:
                pm = 0.0 if draw < 0.065 else -0.0
            values = {name: (pm if name == "pm2.5_epa" else 12.5) for name in layout}
            placeholder = rng.random() < 0.03
            if placeholder:
                values = dict.fromkeys(layout)
            rows.append(Row(names[i], clock[i], values, placeholder, reasons(rng, 0.05)))
        out.append(rows)
    return out, sensors


def fault_stream(
    seed: int, sensors: int = 30, calls: int = 150, big: int = 0
) -> tuple[list[list[Row]], int]:
    """Rows as the incident tracker sees them: runs of flagged readings (codes in rule order,
    `score` too), clean stretches shorter and longer than the clearing time, placeholders,
    times that jump, repeat or go back."""
    rng = np.random.default_rng(seed)
    names = indices(rng, sensors)
    clock = [int(t) for t in rng.integers(0, 10**9, sensors)]
    faulty = [False] * sensors
    out = []
    for chosen in plan(rng, sensors, calls, big):
        rows = []
        for i in chosen.tolist():
            clock[i] += step(rng)
            if rng.random() < 0.1:
                faulty[i] = not faulty[i]
            placeholder = rng.random() < 0.03  # (with reasons too: they must not count)
            rate = 0.7 if faulty[i] else 0.03
            rows.append(Row(names[i], clock[i], {}, placeholder, reasons(rng, rate)))
        out.append(rows)
    return out, sensors


def work_of(rows: list[Row], slot_of: dict[int, int]) -> tuple[Work, np.ndarray]:
    """The `Work` of one call (its layout is its first row's, its reasons the rows') and its
    rows' slots (new sensors get the next slots)."""
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
    work = Work.of(columns, np.array([r.placeholder for r in rows], bool))
    work.reasons = {i: list(r.reasons) for i, r in enumerate(rows) if r.reasons}
    return work, slots


def same_float(want: float | None, got: float) -> bool:
    """`got` is `want` bit for bit (NaN where `want` is None; the sign of a zero counts)."""
    if want is None:
        return bool(np.isnan(got))
    return float(got) == want and np.signbit(got) == np.signbit(want)
