"""Readings/s of the column engine on long histories of few sensors against many sensors.

    python -m benchmarks.long_history                       # 1 sensor × 1,000,000, 2,000 × 500
    python -m benchmarks.long_history --readings 200000     # shorter
    python -m benchmarks.long_history --ajl                 # and ../shared/data/purpleair-ajl
    python -m benchmarks.long_history --ajl FILE --readings 0   # the real history only
    python -m benchmarks.long_history --options '{"detector": "hst", "spatial": false}'

The long case is one simulated sensor (`data.simulate`, channels on) polled every 2 minutes,
so each batch of the source holds that sensor a thousand times: the worst case of an engine
that takes a sensor's rows one round at a time. The wide case is the same number of readings
spread over many sensors (each batch holds each sensor about once). `--ajl` adds the real
history of 11 sensors (`../shared/data/purpleair-ajl`, decompressed into a temporary folder).
Each case runs `build_flow` with the defaults (or `--options`), outputs discarded, 1 worker,
in this process; only `run_main` is timed. Prints readings/s per case.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AJL = ROOT.parent / "shared" / "data" / "purpleair-ajl" / "ajl-dev.jsonl.gz"


def simulated(folder: Path, sensors: int, readings: int, seed: int = 3) -> tuple[Path, int]:
    """A polls file of `sensors` sensors with about `readings` readings; its path and rows."""
    from data import simulate

    hours = readings / sensors / 30  # one poll every 2 minutes
    sim = simulate.generate(seed=seed, n_sensors=sensors, hours=hours, channels=True)
    path, _ = simulate.write(sim, folder)
    return path, rows_of(path)


def rows_of(path: Path) -> int:
    with open(path) as fh:
        return sum(len(json.loads(line)["data"]) for line in fh if line.strip())


def timed(path: Path, options: dict) -> float:
    """Seconds of one run of the flow over `path`, outputs discarded."""
    from bytewax.testing import run_main

    from benchmarks.run import _Discard
    from dataflows.air_quality import build_flow, tune_gc

    sink = _Discard.make()
    outputs = dict.fromkeys(("output", "dead_letters", "totals", "events"), sink)
    flow = build_flow(str(path), **{"progress": None, **options}, **outputs)
    tune_gc()
    start = time.perf_counter()
    run_main(flow)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--wide-sensors", type=int, default=2_000)
    parser.add_argument("--ajl", nargs="?", const=str(AJL), metavar="FILE",
                        help=f"also the real history (default: {AJL})")  # fmt: skip
    parser.add_argument("--no-wide", action="store_true", help="skip the many-sensors case")
    parser.add_argument("--options", default="{}", help="build_flow options, as JSON")
    args = parser.parse_args(argv)
    options = json.loads(args.options)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="long-history-") as tmp:
        cases = [("1 sensor", 1)] + ([] if args.no_wide else [("wide", args.wide_sensors)])
        if not args.readings:  # the real history only
            cases = []
        for label, sensors in cases:
            folder = Path(tmp) / label.replace(" ", "_")
            folder.mkdir()
            path, n = simulated(folder, sensors, args.readings)
            seconds = timed(path, options)
            print(f"{label:>10}: {sensors:,} sensors, {n:,} readings, {seconds:.1f} s, "
                  f"{n / seconds:,.0f} readings/s", flush=True)  # fmt: skip
        if args.ajl:
            if not Path(args.ajl).exists():
                print(f"ajl: {args.ajl} is absent, skipped")
                return 0
            path = Path(tmp) / "ajl.jsonl"
            with gzip.open(args.ajl, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
            n = rows_of(path)
            seconds = timed(path, options)
            print(f"{'ajl':>10}: 11 sensors, {n:,} readings, {seconds:.1f} s, "
                  f"{n / seconds:,.0f} readings/s", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
