"""Per-reading cost of each detector, alone and inside the flows, as medians in one run.

    python -m benchmarks.detectors            # every detector, then both flows (a few minutes)
    python -m benchmarks.detectors --quick    # fewer repeats, smaller inputs
    python -m benchmarks.detectors --series   # the series flow only (zscore, ranked, ranked_shape)

1. **Detector alone**: `score_then_learn` on the same 20,000 readings (a noisy daily cycle with
   spikes, as PM), one fresh detector, µs per reading, median of the repeats; the ratio to
   `zscore` (the series flow's default until issue 15) in the same run.
2. **Series flow**: `dataflows.series` on a 100,000-row CSV (a random walk with 1 % missing), one
   worker, `bytewax.testing.run_main`, time of the run only (imports and start-up excluded), per
   detector; the ratio to `zscore`.
3. **Air-quality flow**: `dataflows.air_quality` on the shipped polls (42,820 readings), one
   worker, per detector (`hst`: the example's, `hst_ensemble`: the default); the ratio to
   `zscore`.

Timings move with the machine's load: compare ratios within one run, never figures across runs.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from detectors.catalog import DETECTORS, make_detector


def readings(n: int, seed: int = 0) -> list[float]:
    """A PM-like series: a daily cycle, noise, a spike every ~500 readings."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x = 10.0 + 5.0 * math.sin(i / 720.0 * 2 * math.pi) + rng.gauss(0.0, 1.0)
        out.append(round(x + (300.0 if rng.random() < 0.002 else 0.0), 1))
    return out


def detector_cost(name: str, values: Sequence[float], repeats: int) -> float:
    """Median µs per `score_then_learn` of a fresh detector over `values`."""
    times = []
    for _ in range(repeats):
        detector = make_detector(name, "value")
        step = detector.score_then_learn
        start = time.perf_counter()
        for v in values:
            step({"value": v})
        times.append(time.perf_counter() - start)
    return statistics.median(times) / len(values) * 1e6


def series_csv(path: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    x = 0.0
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        for i in range(n):
            x += rng.gauss(0.0, 1.0)
            fh.write(f"{i},{'' if rng.random() < 0.01 else round(x, 3)}\n")


def flow_cost(build, repeats: int, n: int) -> float:
    """Median µs per reading of `run_main(build())`."""
    from bytewax.testing import run_main

    times = []
    for _ in range(repeats):
        flow = build()
        start = time.perf_counter()
        run_main(flow)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / n * 1e6


def table(title: str, costs: dict[str, float]) -> str:
    base = costs.get("zscore")
    lines = [f"| {title} | µs per reading (median) | × zscore |", "|---|---|---|"]
    for name, us in costs.items():
        ratio = f"{us / base:.2f}" if base else "–"
        lines.append(f"| {name} | {us:.1f} | {ratio} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--series", action="store_true", help="the series flow only")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    values = readings(5_000 if args.quick else 20_000)
    if not args.series:
        alone = {name: detector_cost(name, values, repeats) for name in DETECTORS}
        print(table(f"detector alone ({len(values):,} readings)", alone) + "\n")

    from dataflows.air_quality import SHIPPED_DATA
    from dataflows.air_quality import build_flow as air_quality
    from dataflows.series import build_flow as series

    n_rows = 20_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        csv_in, csv_out = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        series_csv(csv_in, n_rows)
        costs = {
            name: flow_cost(
                lambda name=name: series(csv_in, csv_out, detector=name), repeats, n_rows
            )
            for name in ("zscore", "ranked", "ranked_shape")
        }
        print(table(f"series flow ({n_rows:,} rows, 1 worker)", costs) + "\n")
        if args.series:
            return 0
        out = Path(tmp) / "anomalies.jsonl"
        counts = {}
        costs = {}
        for name in ("zscore", "hst", "ranked", "hst_ensemble"):

            def build(name=name):
                out.unlink(missing_ok=True)
                return air_quality(
                    SHIPPED_DATA,
                    detector=name,
                    output=str(out),
                    dead_letters=str(out) + ".dead",
                    events=str(out) + ".events",
                    totals=None,
                    progress=None,
                )

            costs[name] = flow_cost(build, repeats, 42_820)
            counts[name] = sum(1 for _ in out.open())
        print(table("air-quality flow (shipped data, 42,820 readings, 1 worker)", costs))
        print("\nalerts: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
