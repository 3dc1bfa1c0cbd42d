"""Cost per reading of each vectorised column stage, at 1,000 and 10,000 sensor slots.

    python -m benchmarks.columns_stages            # 1,000 and 10,000 slots, 5 runs each
    python -m benchmarks.columns_stages --runs 3 --slots 10000
    python -m benchmarks.columns_stages --pieces   # HalfSpaceTrees table sizes on real data
    python -m benchmarks.columns_stages --ensemble --slots 10000  # the flow's hst_ensemble

Each call is one shard's poll: every slot reports once (so a call holds as many rows as there are
slots); `hst` is the example's detector on `pm1.0_cf_1`. The readings look like PurpleAir's
(one or two decimals, 5 % missing, 0.5 % out of range; all sensors start together, so every
slot's window fills in the same poll). A stage's figure is the median over the runs of its
total time over all polls divided by the readings, next to the per-reading stage it twins,
timed on the same readings (a sample of sensors); the state bytes per sensor are its pickle's
size over the slots. Times are the process's CPU time (`time.process_time`), so other work on
a shared machine moves them less.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import statistics
import time
from pathlib import Path

import numpy as np

from columns.batch import Columns, Work
from columns.ensemble import EnsembleColumns
from columns.epa import EpaColumns
from columns.hst import CAPACITY, HstColumns
from columns.impute import ImputeColumns
from columns.validate import ValidateColumns
from data import simulate
from detectors.catalog import make_detector
from detectors.hst import HalfSpaceTreesDetector
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
            "hst": HstColumns(),  # the example's detector, on pm1.0_cf_1 after imputation
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
        for name, stage in stages.items():
            results.setdefault("_bytes " + name, []).append(len(pickle.dumps(stage)) / slots)
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
        detectors = [HalfSpaceTreesDetector() for _ in range(sensors)]
        spent = dict.fromkeys(
            ("validate (per reading)", "impute (per reading)", "epa (per reading)",
             "hst (per reading)"),
            0.0,
        )
        for poll in rows:
            counts: dict[str, int] = {}
            for imputer, detector, values in zip(imputers, detectors, poll, strict=True):
                t0 = time.process_time()
                checked = validator.apply(values, {}, counts)
                t1 = time.process_time()
                filled, imputed, missing = imputer.impute_one(dict(checked))
                t2 = time.process_time()
                epa.apply(filled, imputed, missing, {}, counts)
                t3 = time.process_time()
                detector.score_then_learn(filled)
                spent["hst (per reading)"] += time.process_time() - t3
                spent["validate (per reading)"] += t1 - t0
                spent["impute (per reading)"] += t2 - t1
                spent["epa (per reading)"] += t3 - t2
        for name, seconds in spent.items():
            out.setdefault(name, []).append(seconds / (sensors * len(rows)) * 1e6)
    return out


SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def piece_counts(seed: int = 0) -> dict[str, np.ndarray]:
    """Pieces of the example's HalfSpaceTrees table after each window of 72 readings, on the
    simulator, on the real snapshot's PM1.0 levels with noise, and on NAB's real series (raw and
    scaled into the limits), where ../shared/data has them."""
    hst = HstColumns()
    cuts = hst._cuts

    def windows(values: np.ndarray) -> np.ndarray:
        values = values[~np.isnan(values)]
        n = len(values) // 72 * 72
        return np.searchsorted(cuts, values[:n], side="right").reshape(-1, 72)

    def pieces(blocks: list[np.ndarray]) -> np.ndarray:
        cells = np.concatenate([b for b in blocks if len(b)])
        which = hst._pieces(cells)[0]
        return np.bincount(which, minlength=len(cells))

    out: dict[str, np.ndarray] = {}
    sim = simulate.generate(seed=3, n_sensors=500, hours=48)
    pm = sim.columns["pm1.0_cf_1"].astype(float)
    out["simulated, 500 sensors x 48 h"] = pieces([windows(pm[:, s]) for s in range(pm.shape[1])])
    rng = np.random.default_rng(seed)
    snapshot = SHARED / "purpleair_snapshot.json"
    if snapshot.exists():
        doc = json.loads(snapshot.read_text())
        j = doc["fields"].index("pm1.0_cf_1")
        levels = np.array([r[j] for r in doc["data"] if r[j] is not None], float)
        streams = []
        for level in rng.choice(levels, 2000):
            noise = np.exp(np.cumsum(rng.normal(0, 0.05, 1440)) * 0.5 + rng.normal(0, 0.2, 1440))
            streams.append(windows(np.round(max(level, 0.1) * noise, 1)))
        out["snapshot levels x noise, 2,000 x 1,440"] = pieces(streams)
    nab = sorted((SHARED / "nab-dev" / "data").glob("*/*.csv"))
    if nab:
        series = [np.array([float(r["value"]) for r in csv.DictReader(f.open())]) for f in nab]
        out["NAB real series, raw"] = pieces([windows(v) for v in series])
        scaled = [(v - v.min()) / (np.ptp(v) or 1.0) * 1200 for v in series]
        out["NAB real series, into 0..1200"] = pieces([windows(v) for v in scaled])
    out["uniform 0..1200"] = pieces([windows(rng.uniform(0, 1200, 72 * 500))])
    return out


def time_ensemble(slots: int, n: int, runs: int) -> dict[str, list[float]]:
    """µs per reading of `EnsembleColumns` (the flow's `hst_ensemble` on pm1.0_cf_1) at `slots`,
    and of the per-sensor `hst_ensemble` objects on 200 sensors of the same polls."""
    data = [values[:, 0].copy() for values in polls(slots, n)]
    at = np.arange(slots)
    sensors = min(slots, 200)
    results: dict[str, list[float]] = {}
    for _ in range(runs):
        twin = EnsembleColumns.of(make_detector("hst_ensemble", FIELDS[0]))
        twin.grow(slots)
        spent = 0.0
        for values in data:
            work = Work.of(Columns(at, np.zeros(slots, np.int64), FIELDS[:1], values[:, None]))
            start = time.process_time()
            twin.apply(work, at, {})
            spent += time.process_time() - start
        results.setdefault("hst_ensemble (columns)", []).append(spent / (slots * n) * 1e6)
        objects = [make_detector("hst_ensemble", FIELDS[0]) for _ in range(sensors)]
        rows = [[{FIELDS[0]: None if v != v else v} for v in values[:sensors].tolist()]
                for values in data]
        start = time.process_time()
        for poll in rows:
            for detector, row in zip(objects, poll, strict=True):
                detector.score_then_learn(row)
        spent = time.process_time() - start
        results.setdefault("hst_ensemble (per sensor)", []).append(spent / (sensors * n) * 1e6)
    return results


def ensemble_bytes(sensors: int = 100, n: int = 5000) -> tuple[float, float]:
    """Pickled state bytes per sensor after `n` readings each: (columns, per-sensor objects)."""
    data = [values[:, 0].copy() for values in polls(sensors, n, seed=1)]
    at = np.arange(sensors)
    twin = EnsembleColumns.of(make_detector("hst_ensemble", FIELDS[0]))
    twin.grow(sensors)
    objects = [make_detector("hst_ensemble", FIELDS[0]) for _ in range(sensors)]
    for values in data:
        twin.apply(Work.of(Columns(at, at, FIELDS[:1], values[:, None])), at, {})
        for detector, v in zip(objects, values.tolist(), strict=True):
            detector.score_then_learn({FIELDS[0]: None if v != v else v})
    return len(pickle.dumps(twin)) / sensors, len(pickle.dumps(objects)) / sensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--polls", type=int, default=216, help="polls per run (3 windows)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pieces", action="store_true", help="HST table sizes on real data")
    parser.add_argument("--ensemble", action="store_true", help="the flow's hst_ensemble")
    args = parser.parse_args()
    if args.ensemble:
        for slots in args.slots:
            results = time_ensemble(slots, args.polls, args.runs)
            print(f"{slots:,} slots, {args.polls} polls, median of {args.runs}:")
            for name, figures in results.items():
                print(f"  {name:28s} {statistics.median(figures):7.3f} µs/reading")
        mine, theirs = ensemble_bytes()
        print(f"state after 5,000 readings: columns {mine:,.0f} B/sensor pickled, "
              f"per-sensor objects {theirs:,.0f} B/sensor")
        return
    if args.pieces:
        print(f"pieces per table (capacity {CAPACITY}):")
        for name, counts in piece_counts().items():
            q = np.percentile(counts, [50, 99])
            print(
                f"  {name:40s} {len(counts):6,} windows  median {q[0]:4.0f}  p99 {q[1]:4.0f}"
                f"  max {counts.max():4d}  above capacity {np.mean(counts > CAPACITY):6.2%}"
            )
        return
    for slots in args.slots:
        results = time_stages(slots, args.polls, args.runs)
        print(f"{slots:,} slots, {args.polls} polls, median of {args.runs}:")
        for name, figures in results.items():
            if not name.startswith("_"):
                print(f"  {name:24s} {statistics.median(figures):7.3f} µs/reading")
        for name, figures in results.items():
            if name.startswith("_bytes "):
                stage = name.removeprefix("_bytes ")
                print(f"  state of {stage:15s} {statistics.median(figures):7.0f} B/sensor pickled")


if __name__ == "__main__":
    main()
