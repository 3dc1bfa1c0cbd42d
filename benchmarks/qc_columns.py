"""Speed of the column path's quality-control stages, µs per reading (not a test).

Each stage is timed alone over `polls` calls of every slot (one shard's poll per call), on
readings like the QC scenario's (channels that mostly agree; 2 % stuck sensors, 1 % with a dead
channel, 1 % disagreeing, 1 % of values missing; pm2.5_epa for the NowCast), each stage on the
batches as the stages before it left them; beside it, the per-reading rule it twins, called
reading by reading as the per-sensor chain (`tests/sensor_chain.py`) calls it; and the NowCast
stage again on batches that already have its two columns (what `Work.add_column`'s copies cost).
Median (and best) of `--runs` runs:

    python -m benchmarks.qc_columns --slots 1000 10000
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from columns.batch import Columns, Work
from columns.channels import ChannelColumns
from columns.flatline import FlatlineColumns
from columns.incidents import IncidentColumns
from columns.nowcast import NowCastColumns
from preparation.aqi import AQI_FIELD, NOWCAST_FIELD, NowCast, aqi
from preparation.channels import ChannelAgreement
from preparation.correction import EPA_FIELD
from preparation.flatline import Flatline
from preparation.incidents import SensorIncidents
from preparation.reasons import FLATLINE

FIELDS = (
    "pm1.0_cf_1", "pm2.5_cf_1", "pm10.0_cf_1", "humidity", "temperature", "pressure",
    "pm1.0_cf_1_a", "pm1.0_cf_1_b", "pm2.5_cf_1_a", "pm2.5_cf_1_b", "pm10.0_cf_1_a",
    "pm10.0_cf_1_b", EPA_FIELD,
)  # fmt: skip
#: The column stages in the engine's order (`columns.logic.stages_of`).
STAGES: dict[str, Callable[[], Any]] = {
    "flatline": FlatlineColumns,
    "channels": ChannelColumns,
    "nowcast": NowCastColumns,
    "incidents": IncidentColumns,
}


def polls(slots: int, count: int, seed: int = 7) -> list[Columns]:
    """`count` polls of `slots` sensors, two minutes apart (see the module's docstring)."""
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
        epa = 0.524 * pm[:, 1:2] - 0.0862 * weather[:, 1:2] + 5.75
        values = np.concatenate([pm, weather, np.stack([a, b], 2).reshape(slots, 6), epa], 1)
        values[rng.random(values.shape) < 0.01] = np.nan
        if previous is not None:
            values[stuck] = previous[stuck]
        previous = values
        times = np.full(slots, 1_775_000_000 + 120 * k, np.int64)
        out.append(Columns(sensors, times, FIELDS, values))
    return out


def batches(data: list[Columns], before: int) -> list[Work]:
    """Fresh batches of `data`, through the first `before` stages (not timed)."""
    works = [Work.of(c) for c in data]
    slots = np.arange(len(data[0]))
    for make in list(STAGES.values())[:before]:
        stage = make()
        stage.grow(len(slots))
        for work in works:
            stage.apply(work, slots, {})
    return works


def columns_us(name: str, data: list[Columns], fields_there: bool = False) -> float:
    """µs per reading of a fresh column stage's calls over `data` (`fields_there`: the batches
    already have the NowCast's two columns, so it adds none)."""
    works = batches(data, list(STAGES).index(name))
    if fields_there:
        for work in works:
            work.add_column(NOWCAST_FIELD)
            work.add_column(AQI_FIELD)
    stage = STAGES[name]()
    slots = np.arange(len(data[0]))
    stage.grow(len(slots))
    counts: dict[str, int] = {}
    start = time.perf_counter()
    for work in works:
        stage.apply(work, slots, counts)
    return (time.perf_counter() - start) / (len(works) * len(slots)) * 1e6


def rows_of(work: Work) -> list[tuple[int, int, dict[str, float | None], list[str]]]:
    """A batch as the per-reading path has it: (sensor, time, values, reasons) per row."""
    fields = work.fields
    return [
        (
            sensor,
            t,
            {f: None if v != v else v for f, v in zip(fields, row, strict=True)},
            work.reasons.get(i, []),
        )  # fmt: skip
        for i, (sensor, t, row) in enumerate(
            zip(work.sensors.tolist(), work.times.tolist(), work.values.tolist(), strict=True)
        )
    ]


def per_reading_us(name: str, data: list[Columns]) -> float:
    """µs per reading of the per-reading rule over the same rows, one object per sensor."""
    rows = [rows_of(w) for w in batches(data, list(STAGES).index(name))]
    counts: dict[str, int] = {}
    if name == "flatline":
        rules = [Flatline().apply for _ in rows[0]]
    elif name == "channels":
        rules = [ChannelAgreement().apply for _ in rows[0]]
    start = time.perf_counter()
    if name in ("flatline", "channels"):
        for poll in rows:
            for apply, (_, _, values, _) in zip(rules, poll, strict=True):
                apply(values, {}, [], counts)
    elif name == "nowcast":
        nowcasts = [NowCast() for _ in rows[0]]
        for poll in rows:
            for nowcast, (_, t, values, reasons) in zip(nowcasts, poll, strict=True):
                pm = values.get(EPA_FIELD)
                if pm is not None and FLATLINE not in reasons:
                    level = nowcast.update(t, pm)
                    _ = None if level is None else float(aqi(level))
    else:
        tracks = [SensorIncidents() for _ in rows[0]]
        for poll in rows:
            for track, (sensor, t, _, reasons) in zip(tracks, poll, strict=True):
                track.observe(sensor, t, reasons)
    return (time.perf_counter() - start) / (len(rows) * len(rows[0])) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--polls", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("µs per reading, median (best) of", args.runs, "runs")
    print("stage        slots   columns          per-reading")
    for slots in args.slots:
        data = polls(slots, args.polls)
        cases = [(name, False) for name in STAGES] + [("nowcast", True)]
        for name, there in cases:
            new = [columns_us(name, data, there) for _ in range(args.runs)]
            label = "  nowcast, columns in" if there else f"{name:10} {slots:7}"
            line = f"{label:21} {statistics.median(new):6.3f} ({min(new):.3f})"
            if not there:  # the per-reading class, same rows
                old = [per_reading_us(name, data) for _ in range(args.runs)]
                line += f"   {statistics.median(old):6.3f} ({min(old):.3f})"
            print(line)


if __name__ == "__main__":
    main()
