"""The engine's per-shard step alone against the per-sensor classes, and where its time goes.

    python -m benchmarks.shard_step                                  # shipped data, defaults
    python -m benchmarks.shard_step PATH --sensors 10000 --hours 4    # a simulated file first
    python -m benchmarks.shard_step PATH --example                   # the example's configuration

Reads the file once with each one's own source (`ShardedFileSource`, `ColumnFileSource`: 2
shards, batches of 1,000 rows), then feeds the batches, key by key as Bytewax's `stateful_batch`
would, to the per-sensor reference `tests.sensor_chain.SensorChain` (the stage classes reading
by reading, one chain per sensor: what a plain per-sensor loop costs) and to the engine's
`columns.logic.ShardLogic` (one per shard), timing CPU (`time.process_time`, so other work on a
shared machine counts less) around each call, and around each stage of the column step. Reading
and parsing are not timed, nor is anything after the step. Figures are µs per reading; the
repeats' median.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.run import SHIPPED

#: The example's configuration (as `benchmarks.run` has it): HalfSpaceTrees on pm1.0_cf_1,
#: imputation and the EPA correction; no quality-control rules, AQI or area stage.
EXAMPLE = {"detector": "hst", "validate": False, "channels": False, "flatline": None}
EXAMPLE |= {"aqi": False, "spatial": False}


def _batches(source: Any) -> list[list[Any]]:
    out = []
    for part in source.list_parts():
        partition = source.build_part("read", part, None)
        while True:
            try:
                out.append(partition.next_batch())
            except StopIteration:
                break
    return out


def per_reading(path: Path, options: dict[str, Any]) -> tuple[float, int]:
    """CPU seconds of every `SensorChain.process` call, and the readings."""
    from config import resolve
    from core.readings import Reading
    from dataflows.air_quality import sensor_config
    from sources.shards import ShardedFileSource
    from tests.sensor_chain import SensorChain

    config = resolve(None, source=str(path), **options)
    step = sensor_config(config.cleaning, config.detection, "sensor", config.spatial.enabled)
    chains: dict[int, SensorChain] = {}
    spent, rows = 0.0, 0
    for batch in _batches(ShardedFileSource(path, batch_size=config.run.batch_size)):
        by_key: dict[int, list[Reading]] = {}
        for item in batch:
            if type(item) is Reading:
                by_key.setdefault(item.sensor_index, []).append(item)
        for key, readings in by_key.items():
            rows += len(readings)
            start = time.process_time()
            chain = chains.get(key) or chains.setdefault(key, SensorChain(step))
            chain.process(readings)
            spent += time.process_time() - start
    return spent, rows


def columns(path: Path, options: dict[str, Any]) -> tuple[float, int, dict[str, float]]:
    """CPU seconds of every `ShardLogic.on_batch` call, the readings, and seconds by stage."""
    import columns.logic
    from columns.logic import ShardLogic
    from columns.source import ColumnFileSource
    from config import resolve
    from dataflows.air_quality import sensor_config

    config = resolve(None, source=str(path), **options)
    spatial = config.spatial.enabled
    step = sensor_config(config.cleaning, config.detection, "sensor", spatial)
    by_stage: dict[str, float] = defaultdict(float)

    def timed(name: str, call: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                by_stage[name] += time.process_time() - start

        return run

    logics: dict[str, ShardLogic] = {}
    spent, rows = 0.0, 0
    columns.logic.area_piece = timed("area pieces out", columns.logic.area_piece)
    for batch in _batches(ColumnFileSource(path, batch_size=config.run.batch_size)):
        by_key: dict[str, list[Any]] = {}
        for item in batch:
            if type(item) is tuple:
                by_key.setdefault(item[0], []).append(item[1])
                rows += len(item[1])
        for key, items in by_key.items():
            logic = logics.get(key)
            if logic is None:
                features = config.detection.features
                areas = config.spatial.field if spatial else None  # as the flow builds it
                logic = logics[key] = ShardLogic(step, features=features, areas=areas)
                for name, stage in logic.stages:
                    stage.apply = timed(name, stage.apply)
                if logic.gaps is not None:
                    logic.gaps.expand = timed("gaps", logic.gaps.expand)
                logic.maker.readings = timed("readings out", logic.maker.readings)
                logic._count = timed("counts", logic._count)
            start = time.process_time()
            logic.on_batch(items)
            spent += time.process_time() - start
    by_stage["slots, rounds, the rest"] = spent - sum(by_stage.values())
    return spent, rows, dict(by_stage)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=None, help="a polls file")
    parser.add_argument("--sensors", type=int, help="simulate this many sensors into PATH")
    parser.add_argument("--hours", type=float, default=4.0, help="... over this many hours")
    parser.add_argument("--example", action="store_true", help="the example's configuration")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    path = args.path or SHIPPED
    if args.sensors:
        from data import simulate

        folder = Path(tempfile.mkdtemp())
        sim = simulate.generate(seed=1, n_sensors=args.sensors, hours=args.hours)
        path = simulate.write(sim, folder)[0]
    options = EXAMPLE if args.example else {}
    gc.freeze()
    gc.set_threshold(100_000)  # as the flow runs (`tune_gc`)
    old, new, stages = [], [], defaultdict(list)
    for _ in range(args.repeats):
        spent, rows = per_reading(path, options)
        old.append(spent / rows * 1e6)
        spent, rows, by_stage = columns(path, options)
        new.append(spent / rows * 1e6)
        for name, seconds in by_stage.items():
            stages[name].append(seconds / rows * 1e6)
    name = "the example's configuration" if args.example else "the defaults"
    print(f"{path.name}: {rows:,} readings, {name}, CPU µs per reading, median of {args.repeats}")
    print(f"  per-sensor chain (SensorChain)   {statistics.median(old):7.2f}")
    print(f"  column step (ShardLogic)         {statistics.median(new):7.2f}")
    for stage, figures in sorted(stages.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"    {stage:30s} {statistics.median(figures):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
