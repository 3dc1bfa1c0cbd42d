"""CPU µs per reading of the area stage: the `columns` case (defaults) with and without it.

    python -m benchmarks.area_stage                  # 10,000 simulated sensors x 1 h
    python -m benchmarks.area_stage --shipped        # the shipped data
    python -m benchmarks.area_stage --sensors 2000 --hours 4 --repeats 5

Runs `build_flow(path, engine="columns", spatial=on/off)` alternately in this process, outputs
discarded, and times `run_main` in CPU seconds (`time.process_time`, steadier than wall time on
a shared machine); the area stage's cost is the median with it minus the median without it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time


def measure(path: str, repeats: int) -> dict[bool, list[float]]:
    """CPU seconds of each run, with (True) and without (False) the area stage."""
    from bytewax.testing import run_main

    from benchmarks.run import _Discard
    from dataflows.air_quality import build_flow

    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for spatial in (True, False):
            outputs = dict.fromkeys(("output", "dead_letters", "totals", "events"), _Discard.make())
            flow = build_flow(path, engine="columns", spatial=spatial, progress=None, **outputs)
            start = time.process_time()
            run_main(flow)
            times[spatial].append(time.process_time() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipped", action="store_true", help="the shipped data")
    parser.add_argument("--sensors", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from benchmarks.run import SHIPPED, count_readings
    from dataflows.air_quality import tune_gc

    tune_gc()
    with tempfile.TemporaryDirectory() as tmp:
        if args.shipped:
            path = str(SHIPPED)
        else:
            from data import simulate

            sim = simulate.generate(seed=1, n_sensors=args.sensors, hours=args.hours)
            path = str(simulate.write(sim, tmp)[0])
        n = count_readings(path)
        times = measure(path, args.repeats)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"{n:,} readings, median of {args.repeats}, CPU seconds: with the area stage {on:.2f} "
          f"({n / on:,.0f} readings/s), without {off:.2f} ({n / off:,.0f}/s); the area stage "
          f"{1e6 * (on - off) / n:.2f} µs per reading")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
