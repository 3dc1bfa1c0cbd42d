"""How long a year of 2-minute history for many sensors takes to back-fill, projected from a day.

    python -m benchmarks.backfill_year                    # 10,000 sensors × 1 day
    python -m benchmarks.backfill_year --days 1 7         # a day and a week
    python -m benchmarks.backfill_year --sensors 2000     # a smaller set

Each size is simulated (`data.simulate`, one poll every 120 s), written as JSON lines of polls,
and run by `benchmarks.run`'s `flow` case (the defaults, outputs discarded) in a fresh process on
one worker, timing only the run. The projection is the year's readings (sensors × 720 × 365)
at the measured rate; issue 22's target is 10,000 sensors' year in at most 3 hours on one core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from benchmarks.run import _spawn, count_readings

POLLS_PER_DAY = 24 * 3600 // 120
TARGET_HOURS = 3.0


def measure_days(sensors: int, days: float) -> tuple[int, float]:
    """Readings of `days` of `sensors` and the flow's seconds on them (1 worker)."""
    from data import simulate

    with tempfile.TemporaryDirectory(prefix="backfill-year-") as tmp:
        started = time.perf_counter()
        sim = simulate.generate(seed=3, n_sensors=sensors, hours=24 * days)
        path, _ = simulate.write(sim, tmp)
        del sim
        n = count_readings(str(path))
        made = time.perf_counter() - started
        print(f"  {days:g} day(s): {n:,} readings written in {made:.0f} s", flush=True)
        seconds = _spawn("flow", str(path), 1, 1)["seconds"]
    return n, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=10_000)
    parser.add_argument("--days", type=float, nargs="+", default=[1.0])
    args = parser.parse_args(argv)
    year = args.sensors * POLLS_PER_DAY * 365
    print(f"{args.sensors:,} sensors, one poll every 120 s; a year is {year:,} readings")
    for days in args.days:
        n, seconds = measure_days(args.sensors, days)
        rate = n / seconds
        hours = year / rate / 3600
        verdict = "met" if hours <= TARGET_HOURS else "NOT met"
        print(
            f"  {days:g} day(s): {seconds:,.1f} s, {rate:,.0f} readings/s, a year projected "
            f"{hours:,.1f} h (target <= {TARGET_HOURS:g} h: {verdict})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
