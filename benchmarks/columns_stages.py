"""Cost per reading of each vectorised column stage, at 1,000 and 10,000 sensor slots.

    python -m benchmarks.columns_stages            # 1,000 and 10,000 slots, 5 runs each
    python -m benchmarks.columns_stages --runs 3 --slots 10000

Each call is one shard's poll: every slot reports once (so a call holds as many rows as there are
slots). The readings look like PurpleAir's (one or two decimals, 5 % missing, 0.5 % out of
range). A stage's figure is the median over the runs of its total time over all polls divided
by the readings, next to the per-reading stage it twins, timed on the same readings (a sample of
sensors); the state bytes per sensor are its pickle's size over the slots. Times are the
process's CPU time (`time.process_time`), so other work on a shared machine moves them less.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import time

import numpy as np

from columns.batch import Columns, Work
from columns.epa import EpaColumns
from columns.impute import ImputeColumns
from columns.validate import ValidateColumns
from imputers.window import WindowImputer
from preparation.correction import EpaCorrection
from preparation.validation import RangeValidator

FIELDS = ("pm1.0_cf_1", "pm2.5_cf_1", "pm10.0_cf_1", "humidity", "temperature", "pressure")
IMPUTE = ("temperature", "humidity", "pressure", "pm1.0_cf_1")  # the flow's default fields
CENTRES = np.array([8.0, 12.0, 15.0, 45.0, 70.0, 1000.0])
SPREAD = np.array([0.0, 0.0, 0.0, 10.0, 10.0, 5.0])  # normal noise; PM (0 here): log-normal


def polls(slots: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """`n` polls of every slot: a (slots, fields) value matrix each."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        drift = 1 + 0.1 * np.sin(t / 30)
        shape = (slots, len(FIELDS))
        v = np.where(
            SPREAD > 0,
            CENTRES * drift + SPREAD * rng.normal(0, 1, shape),
            CENTRES * drift * rng.lognormal(0, 0.5, shape),
        )
        v = np.round(v, 1)
        v[:, 3] = np.clip(v[:, 3], 0.0, 100.0)
        v[rng.random(v.shape) < 0.05] = np.nan
        v[rng.random(v.shape) < 0.005] = 5000.0
        out.append(v)
    return out


def work_of(values: np.ndarray, sensors: np.ndarray) -> Work:
    return Work.of(Columns(sensors, np.zeros(len(sensors), np.int64), FIELDS, values))


def time_stages(slots: int, n: int, runs: int) -> dict[str, list[float]]:
    """µs per reading of each stage, per run; and of the per-reading stages on 200 sensors."""
    data = polls(slots, n)
    at = np.arange(slots)
    results: dict[str, list[float]] = {}
    for _ in range(runs):
        stages = {
            "validate": ValidateColumns(),
            "impute": ImputeColumns(IMPUTE, 10, "mean"),
            "epa": EpaColumns(),
        }
        for stage in stages.values():
            stage.grow(slots)
        spent = dict.fromkeys(stages, 0.0)
        for values in data:
            work = work_of(values, at)
            counts: dict[str, int] = {}
            for name, stage in stages.items():
                start = time.process_time()
                stage.apply(work, at, counts)
                spent[name] += time.process_time() - start
        for name, seconds in spent.items():
            results.setdefault(name, []).append(seconds / (slots * n) * 1e6)
        results.setdefault("_bytes", []).append(
            sum(len(pickle.dumps(s)) for s in stages.values()) / slots
        )
    results.update(time_per_reading(data, min(slots, 200), runs))
    return results


def time_per_reading(data: list[np.ndarray], sensors: int, runs: int) -> dict[str, list[float]]:
    """The per-reading stages on the first `sensors` sensors of the same polls."""
    rows = [
        [{f: (None if v != v else v) for f, v in zip(FIELDS, row, strict=True)} for row in p]
        for p in (values[:sensors].tolist() for values in data)
    ]
    out: dict[str, list[float]] = {}
    for _ in range(runs):
        validator, epa = RangeValidator(), EpaCorrection()
        imputers = [WindowImputer(IMPUTE, 10, "mean") for _ in range(sensors)]
        spent = {"validate (per reading)": 0.0, "impute (per reading)": 0.0,
                 "epa (per reading)": 0.0}
        for poll in rows:
            counts: dict[str, int] = {}
            for imputer, values in zip(imputers, poll, strict=True):
                t0 = time.process_time()
                checked = validator.apply(values, {}, counts)
                t1 = time.process_time()
                filled, imputed, missing = imputer.impute_one(dict(checked))
                t2 = time.process_time()
                epa.apply(filled, imputed, missing, {}, counts)
                t3 = time.process_time()
                spent["validate (per reading)"] += t1 - t0
                spent["impute (per reading)"] += t2 - t1
                spent["epa (per reading)"] += t3 - t2
        for name, seconds in spent.items():
            out.setdefault(name, []).append(seconds / (sensors * len(rows)) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--polls", type=int, default=100, help="polls per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for slots in args.slots:
        results = time_stages(slots, args.polls, args.runs)
        print(f"{slots:,} slots, {args.polls} polls, median of {args.runs}:")
        for name, figures in results.items():
            if name != "_bytes":
                print(f"  {name:24s} {statistics.median(figures):7.3f} µs/reading")
        print(f"  state (pickled)          {statistics.median(results['_bytes']):7.0f} B/sensor")


if __name__ == "__main__":
    main()
