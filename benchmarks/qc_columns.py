"""Speed of the column path's quality-control stages, µs per reading (not a test).

Each stage is timed alone over `polls` calls of every slot (one shard's poll), on readings like
the QC scenario's (channels that mostly agree, a few stuck, dead or disagreeing sensors), and
beside it the per-reading rule it twins, called reading by reading as `SensorLogic.on_batch`
calls it. Median of `--runs` runs:

    python -m benchmarks.qc_columns --slots 1000 10000
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from columns.batch import Columns, Work
from columns.channels import ChannelColumns
from columns.flatline import FlatlineColumns
from preparation.channels import ChannelAgreement
from preparation.flatline import Flatline

FIELDS = (
    "pm1.0_cf_1", "pm2.5_cf_1", "pm10.0_cf_1", "humidity", "temperature", "pressure",
    "pm1.0_cf_1_a", "pm1.0_cf_1_b", "pm2.5_cf_1_a", "pm2.5_cf_1_b", "pm10.0_cf_1_a",
    "pm10.0_cf_1_b",
)  # fmt: skip


def polls(slots: int, count: int, seed: int = 7) -> list[Columns]:
    """`count` polls of `slots` sensors: PM around each sensor's level, 2 % stuck sensors (the
    same row again), 1 % with a dead channel A, 1 % disagreeing, 1 % of values missing."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(2, 40, slots)
    sensors = np.arange(slots, dtype=np.int64) * 7 + 1000
    stuck, dead, wild = rng.random((3, slots)) < [[0.02], [0.01], [0.01]]
    previous = None
    out = []
    for k in range(count):
        pm = np.round(level[:, None] + rng.normal(0, 1.0, (slots, 3)), 1).clip(0)
        a = np.round(pm + rng.normal(0, 0.5, (slots, 3)), 1).clip(0)
        b = np.round(pm + rng.normal(0, 0.5, (slots, 3)), 1).clip(0)
        a[dead] = 0.0
        b[wild] = b[wild] * 3 + 10
        weather = np.round(rng.uniform([20, 50, 1000], [80, 90, 1020], (slots, 3)), 1)
        values = np.concatenate([pm, weather, np.stack([a, b], 2).reshape(slots, 6)], axis=1)
        values[rng.random(values.shape) < 0.01] = np.nan
        if previous is not None:
            values[stuck] = previous[stuck]
        previous = values
        times = np.full(slots, 1_775_000_000 + 120 * k, np.int64)
        out.append(Columns(sensors, times, FIELDS, values))
    return out


def per_reading_rows(columns: Columns) -> list[dict[str, float | None]]:
    return [
        {f: (None if v != v else v) for f, v in zip(columns.fields, row, strict=True)}
        for row in columns.values.tolist()
    ]


def per_reading(rule: Callable[[], Any], rows: list[list[dict[str, float | None]]]) -> int:
    """The per-reading rule over the same polls, one object per sensor; how many readings."""
    rules = [rule() for _ in range(len(rows[0]))]
    counts: dict[str, int] = {}
    for poll in rows:
        for check, values in zip(rules, poll, strict=True):
            check.apply(values, {}, [], counts)
    return len(rules) * len(rows)


def median_us(run: Callable[[], int], runs: int) -> float:
    """Median µs per reading of `run` (which returns how many readings it did)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        n = run()
        times.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(times)


def columns_us(stage: Callable[[], Any], data: list[Columns]) -> float:
    """µs per reading of one run of a fresh column stage over `data` (its calls only, not the
    building of the batches)."""
    step = stage()
    step.grow(len(data[0]))
    slots = np.arange(len(data[0]))
    works = [Work.of(c) for c in data]
    counts: dict[str, int] = {}
    start = time.perf_counter()
    for work in works:
        step.apply(work, slots, counts)
    return (time.perf_counter() - start) / (len(works) * len(slots)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--polls", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    stages: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "flatline": (FlatlineColumns, Flatline),
        "channels": (ChannelColumns, ChannelAgreement),
    }
    print("stage       slots   columns µs/reading   per-reading µs/reading")
    for slots in args.slots:
        data = polls(slots, args.polls)
        rows = [per_reading_rows(c) for c in data]
        for name, (column_stage, reading_rule) in stages.items():
            col = statistics.median(columns_us(column_stage, data) for _ in range(args.runs))

            old = median_us(partial(per_reading, reading_rule, rows), max(1, args.runs // 2))
            print(f"{name:10} {slots:6}   {col:10.3f}           {old:10.3f}")


if __name__ == "__main__":
    main()
