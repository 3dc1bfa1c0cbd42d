"""Readings/s of the air-quality flow against the engine's limit and the baselines, in one run.

    python -m benchmarks.run              # shipped data, then 1.2 M readings over 10,000 sensors
    python -m benchmarks.run --quick      # shipped data only
    python -m benchmarks.run --before 2c587eb   # also the flow as it was at that commit
    python -m benchmarks.run --databases  # rows/s into SQLite and PostgreSQL
    python -m benchmarks.run --profile flow     # cProfile of one case, top functions

Each case runs in a fresh subprocess (so peak memory is its own) that times only `run_main` /
`cluster_main` (interpreter start-up and imports excluded), on the same file, 2 sensor shards,
batches of 1,000 rows:
  passthrough    ShardedFileSource → identity map → discarding sink  (the engine's limit)
  keyed          ShardedFileSource → key by sensor → stateful_map identity (the keyed limit:
                 one item per reading, one key per sensor)
  keyed_items    issue 22's bar: Bytewax alone moving one ready-made item per reading of the
                 file (no reading, no parsing) through a keyed stateful_map that does nothing,
                 10,000 keys, batches of 1,000
  keyed_columns  ColumnFileSource → its (shard key, Columns) items → stateful_map identity
  flow           the air-quality flow, defaults
  flow_hst       the same on the example's configuration (`EXAMPLE`)
  baseline       the seed example (benchmarks/baseline.py)
  river_loop     a plain river loop per sensor, no Bytewax, no quality control
                 (benchmarks/river_loop.py; 1 worker, the shipped data only: a river forest
                 per sensor takes 8 GB and minutes at 10,000 sensors)
  before         with `--before REV`: the flow's defaults as they were at commit REV, run
                 from a temporary `git worktree` of it (1 worker only)
with 1 worker, 2 workers (threads of one process) and 2 processes on loopback. Rates are rows
of the file per second (each row becomes a reading or a dead letter). It prints the median of
the repeats, peak RSS, the ratios, the state memory per sensor at 100,000 sensors, and the
issue-22 targets met or not, all from the same run.

`keyed_items` is the bar of issue 22: the flow's defaults should reach at least half of it.
`keyed` is the same through the per-reading source (each row decoded into a `Reading`). The
column flow's own keyed passthrough, `keyed_columns` (the same file, shards, shard keys and
batch size: one `Columns` item per poll line and shard, so the same bytes decoded and parsed,
each through a keyed `stateful_map` identity), says what the stages leave of the engine on the
same input.

`EXAMPLE` is the example this project grows from: `detector="hst"` (river's HalfSpaceTrees on
`pm1.0_cf_1`) with imputation and the EPA correction, and the quality-control stages
(flatline, validation, channels), the NowCast/AQI and the area stage off.

`--databases` (`benchmarks/databases.py`) times the flow writing all four outputs into a new
SQLite file and into a new database on a throw-away PostgreSQL server (fsync on), against the
flow with discarding sinks in the same run, on 1 worker and 2 processes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / "polls.jsonl"
CASES = (
    "passthrough",
    "keyed",
    "keyed_items",
    "keyed_columns",
    "flow",
    "flow_hst",
    "baseline",
    "river_loop",
    "before",
    "discarded",
    "database",
)
#: The cases of the main table, in its order.
TABLE = CASES[:9]
#: Cases that run on 1 worker only (no Bytewax, or another checkout's flow).
ONE_WORKER = ("river_loop", "before")
#: The example's configuration (keyword options of `build_flow`).
EXAMPLE = {
    "detector": "hst",
    "flatline": False,
    "validate": False,
    "channels": False,
    "aqi": False,
    "spatial": False,
}
#: Issue 22's targets: the defaults at least half the keyed passthrough, 2 processes 1.8× one,
#: at most 4 KiB of state per sensor.
TARGET_KEYED, TARGET_SCALING, TARGET_BYTES = 0.5, 1.8, 4096


class _Discard:
    """A sink that drops everything (built lazily so importing this module stays cheap)."""

    @staticmethod
    def make():
        from bytewax.outputs import DynamicSink, StatelessSinkPartition

        class _Part(StatelessSinkPartition):
            def write_batch(self, items):
                pass

        class Discard(DynamicSink):
            def build(self, step_id, worker_index, worker_count):
                return _Part()

        return Discard()


class _Items:
    """`n` items `(str(i % 10,000), i)` in batches of 1,000, split over the workers (built
    lazily, as `_Discard`)."""

    def __init__(self, n: int, keys: int = 10_000, batch: int = 1_000):
        self.n, self.keys, self.batch = n, keys, batch

    def make(self):
        from bytewax.inputs import DynamicSource, StatelessSourcePartition

        n, keys, size = self.n, self.keys, self.batch

        class _Part(StatelessSourcePartition):
            def __init__(self, worker: int, workers: int):
                self.next, self.step = worker * size, workers * size

            def next_batch(self):
                if self.next >= n:
                    raise StopIteration
                start, self.next = self.next, self.next + self.step
                return [(str(i % keys), i) for i in range(start, min(start + size, n))]

        class Items(DynamicSource):
            def build(self, step_id, worker_index, worker_count):
                return _Part(worker_index, worker_count)

        return Items()


def build_case(case: str, path: str, url: str | None = None):
    """The dataflow of one benchmark case over `path` (`database`: writing into `url`)."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow

    from benchmarks import baseline
    from columns.source import ColumnFileSource
    from dataflows.air_quality import build_flow
    from sources.shards import ShardedFileSource

    sink = _Discard.make()
    if case in ("flow", "flow_hst", "before"):  # `before`: this module run in another checkout
        options = EXAMPLE if case.endswith("_hst") else {}
        outputs = dict.fromkeys(("output", "dead_letters", "totals", "events"), sink)
        return build_flow(path, **options, **outputs)
    if case == "baseline":
        return baseline.build_flow(path, sink)
    if case in ("discarded", "database"):  # all four outputs, into `url` or discarded
        outputs = dict.fromkeys(("output", "readings", "dead_letters", "events"), url or sink)
        return build_flow(path, **outputs, totals=sink, progress=None)
    flow = Dataflow(case)
    if case == "keyed_columns":  # the column flow's own source, its items under their keys
        items = op.input("read", flow, ColumnFileSource(path))
        keyed = op.flat_map_batch("take_columns", items, _column_items)
        op.output("out", op.stateful_map("identity", keyed, lambda s, v: (s, v)), sink)
        return flow
    if case == "keyed_items":  # Bytewax's own keyed limit: ready-made items, nothing read
        keyed = op.input("read", flow, _Items(count_readings(path)).make())
        op.output("out", op.stateful_map("identity", keyed, lambda s, v: (s, v)), sink)
        return flow
    items = op.input("read", flow, ShardedFileSource(path))  # the flow's own source
    if case == "passthrough":
        op.output("out", op.map("identity", items, lambda x: x), sink)
    else:
        keyed = op.key_on("key", items, lambda r: str(getattr(r, "sensor_index", "")))
        op.output("out", op.stateful_map("identity", keyed, lambda s, v: (s, v)), sink)
    return flow


def _column_items(batch: list) -> list:
    return [item for item in batch if type(item) is tuple]


def run_case(
    case: str,
    path: str,
    workers: int,
    proc_id: int | None,
    addresses: str | None,
    ready: str | None = None,
    url: str | None = None,
):
    """Run one case in this process; print seconds and peak RSS as JSON. In a cluster, every
    process waits at `ready` (a folder) until all are built, so none times another's start-up."""
    from bytewax.testing import cluster_main, run_main

    sys.path.insert(0, str(ROOT))
    from dataflows.air_quality import tune_gc

    if case == "river_loop":
        from benchmarks.river_loop import run

        start = time.perf_counter()
        run(path)
        seconds = time.perf_counter() - start
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "rss_mb": rss_mb}))
        return
    flow = build_case(case, path, url)
    tune_gc()  # every case runs with the flow's garbage-collector setting, so ratios are fair
    if ready is not None:
        _barrier(Path(ready), proc_id, len(addresses.split(";")))
    start = time.perf_counter()
    if proc_id is not None:
        cluster_main(flow, addresses.split(";"), proc_id, worker_count_per_proc=workers)
    elif workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb}))


def _barrier(folder: Path, proc_id: int, procs: int) -> None:
    (folder / str(proc_id)).touch()
    while len(list(folder.iterdir())) < procs:
        time.sleep(0.001)


def free_ports(n: int) -> list[int]:
    """`n` loopback ports free right now (for a cluster of processes on this machine)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _spawn(
    case: str, path: str, workers: int, procs: int, url: str | None = None, root: Path = ROOT
) -> dict:
    """Run `case` in fresh processes of the checkout at `root`; its seconds and peak RSS."""
    named = "flow" if case == "before" else case  # the other checkout's own defaults case
    base = [sys.executable, "-m", "benchmarks.run", "--case", named, "--path", path]
    base += ["--workers", str(workers)] + (["--url", url] if url else [])
    env = {**os.environ, "PYTHONPATH": str(root)}
    with tempfile.TemporaryDirectory(prefix="bench-ready-") as ready:
        if procs == 1:
            cmds = [base]
        else:
            addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(procs))
            base += ["--addresses", addresses, "--ready", ready]
            cmds = [base + ["--proc-id", str(i)] for i in range(procs)]
        running = [
            subprocess.Popen(c, cwd=root, env=env, stdout=subprocess.PIPE, text=True) for c in cmds
        ]
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in running]
    if any(p.returncode for p in running):
        raise RuntimeError(f"case {case} failed")
    return {
        "seconds": max(r["seconds"] for r in results),
        "rss_mb": sum(r["rss_mb"] for r in results),
    }


def count_readings(path: str) -> int:
    """Rows in a poll file (each becomes a reading or a dead letter)."""
    with open(path) as fh:
        return sum(len(json.loads(line)["data"]) for line in fh if line.strip())


def measure(
    path: str, readings: int, repeats: int, cases, layouts, before: Path | None = None
) -> dict:
    """Median readings/s and peak RSS for each (case, layout); `before`: the checkout the
    `before` case runs in."""
    table = {}
    for label, workers, procs in layouts:
        for case in cases:
            if case in ONE_WORKER and (workers, procs) != (1, 1):
                continue
            if case == "before" and before is None:
                continue
            root = before if case == "before" else ROOT
            runs = [_spawn(case, path, workers, procs, root=root) for _ in range(repeats)]
            rate = statistics.median(readings / r["seconds"] for r in runs)
            rss = max(r["rss_mb"] for r in runs)
            table[(case, label)] = (rate, rss)
            print(f"  {case:<15}{label:<14}{rate:>12,.0f} readings/s   peak RSS {rss:>7.0f} MB")
    return table


#: (numerator, denominator) of each ratio printed per layout.
RATIOS = (
    ("flow", "keyed_items"),
    ("flow", "keyed"),
    ("flow_hst", "keyed"),
    ("flow", "keyed_columns"),
    ("flow", "before"),
    ("flow", "baseline"),
    ("flow", "river_loop"),
    ("flow_hst", "baseline"),
    ("flow_hst", "river_loop"),
)


def report_ratios(table: dict, layouts) -> None:
    """Each ratio of `RATIOS` per layout, and 2 processes / 1 worker per flow."""
    for label, _, _ in layouts:
        parts = [
            f"{a}/{b} = {table[(a, label)][0] / table[(b, label)][0]:.2f}"
            for a, b in RATIOS
            if (a, label) in table and (b, label) in table
        ]
        if parts:
            print(f"  {label}: " + ", ".join(parts))
    for case in ("flow", "flow_hst", "keyed_items", "keyed", "keyed_columns"):
        one = table.get((case, "1 worker"), (None,))[0]
        two = table.get((case, "2 processes"), (None,))[0]
        if one and two:
            print(f"  {case}: 2 processes / 1 worker = {two / one:.2f}")


def report_targets(
    table: dict, memory: dict[str, tuple[float, float]], sensors: int, shipped: dict
) -> None:
    """Issue 22's targets on the large set (and the shipped data's run against `before`), from
    this run's figures, met or not."""

    def rate(case: str, label: str = "1 worker", of: dict = table) -> float | None:
        return of.get((case, label), (None,))[0]

    def line(what: str, value: float | None, target: float, fmt: str, at_most=False) -> None:
        if value is None:
            return
        met = value <= target if at_most else value >= target
        sign = "<=" if at_most else ">="
        verdict = "met" if met else "NOT met"
        print(f"  {what:<58}{value:>12{fmt}}  target {sign} {target:{fmt}}: {verdict}")

    print("targets (issue 22), large set:")
    one, keyed, two = rate("flow"), rate("keyed_items"), rate("flow", "2 processes")
    if one and keyed:
        line("flow / keyed_items, 1 worker", one / keyed, TARGET_KEYED, ".2f")
    if one and two:
        line("flow: 2 processes / 1 worker", two / one, TARGET_SCALING, ".2f")
    if "flow" in memory:
        resident, pickled = memory["flow"]
        what = f"flow: pickled state bytes/sensor at {sensors:,}"
        line(what, pickled, TARGET_BYTES, ",.0f", at_most=True)
        print(f"  {'flow: resident bytes/sensor (the same state)':<58}{resident:>12,.0f}")
    now, then = rate("flow", of=shipped), rate("before", of=shipped)
    if now and then:
        line("shipped data: flow / before, 1 worker", now / then, 1.0, ".2f")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def column_state_memory(case: str, n_sensors: int = 100_000, polls: int = 80) -> tuple[float, int]:
    """Resident and pickled bytes per sensor of one `columns.logic.ShardLogic` holding
    `n_sensors` sensors after `polls` polls (past the detector's first window of 72), on the
    configuration of `case` (`flow`: the defaults; `flow_hst`: `EXAMPLE`): the shard
    step's state, what the column engine keeps per sensor. The polls are made up (the
    simulator's fields, PM from a gamma distribution), one `Columns` of every sensor each."""
    import gc

    import numpy as np

    from columns.batch import Columns
    from columns.logic import ShardLogic
    from config import resolve
    from data.simulate import FIELDS
    from dataflows.air_quality import sensor_config

    options = EXAMPLE if case.endswith("_hst") else {}
    config = resolve(None, **options)
    spatial = config.spatial.enabled
    per_sensor = sensor_config(config.cleaning, config.detection, "sensor", spatial)
    logic = ShardLogic(per_sensor, None, features=config.detection.features)
    fields = tuple(f for f in FIELDS if f not in ("sensor_index", "last_seen"))
    rng = np.random.default_rng(0)
    sensors = np.arange(10_000, 10_000 + n_sensors, dtype=np.int64)
    base = np.column_stack(
        [
            37.3 + rng.random(n_sensors),  # latitude
            -122.5 + rng.random(n_sensors),  # longitude
            rng.integers(20, 70, n_sensors).astype(float),  # humidity
            rng.integers(55, 85, n_sensors).astype(float),  # temperature
            1000 + 20 * rng.random(n_sensors),  # pressure
        ]
    )

    def poll(t: int) -> Columns:
        pm = rng.gamma(2.0, 5.0, n_sensors).round(1)
        values = np.column_stack([base, pm, pm * 1.4, pm * 1.6, pm * 1.4])
        times = np.full(n_sensors, 1775001600 + 120 * t, np.int64)
        return Columns(sensors, times, fields, values)

    gc.collect()
    before = _rss_bytes()
    for t in range(polls):
        logic.on_batch([poll(t)])
    gc.collect()
    used = _rss_bytes() - before
    return used / n_sensors, len(logic.snapshot()) / n_sensors


def _measure_memory(case: str, n_sensors: int) -> tuple[float, float]:
    """`column_state_memory` in a fresh subprocess."""
    cmd = [sys.executable, "-m", "benchmarks.run", "--memory-case", case]
    cmd += ["--memory-sensors", str(n_sensors)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=True)
    resident, pickled = json.loads(done.stdout.strip().splitlines()[-1])
    return resident, pickled


def profile(case: str, sensors: int, hours: float, top: int = 30) -> None:
    """Run one case on simulated data in this process under cProfile (1 worker) and print the
    functions that took the most time of their own."""
    import cProfile
    import pstats

    from bytewax.testing import run_main

    from data import simulate
    from dataflows.air_quality import tune_gc

    with tempfile.TemporaryDirectory() as tmp:
        sim = simulate.generate(seed=1, n_sensors=sensors, hours=hours)
        path, _ = simulate.write(sim, tmp)
        n = count_readings(str(path))
        flow = build_case(case, str(path))
        tune_gc()
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.runcall(run_main, flow)
        seconds = time.perf_counter() - start
    print(f"{case}: {sensors:,} sensors × {hours} h = {n:,} readings, 1 worker, under cProfile:")
    print(f"  {seconds:.1f} s, {n / seconds:,.0f} readings/s (cProfile slows Python calls down)")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)


def markdown_table(table: dict, layouts, cases) -> str:
    """The run's figures as a markdown table: readings/s per case (columns) and layout (rows)."""
    shown = [c for c in cases if any((c, label) in table for label, _, _ in layouts)]
    lines = ["| layout | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for label, _, _ in layouts:
        cells = [f"{table[(c, label)][0]:,.0f}" if (c, label) in table else "–" for c in shown]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shipped data only")
    parser.add_argument(
        "--before", metavar="REV", help="also run the defaults of commit REV (a git worktree)"
    )
    parser.add_argument("--databases", action="store_true", help="rows/s into each database")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-repeats", type=int, default=1)
    parser.add_argument("--large-sensors", type=int, default=10_000)
    parser.add_argument("--large-hours", type=float, default=4.0)
    parser.add_argument("--memory-sensors", type=int, default=100_000)
    parser.add_argument(
        "--cases", help=f"comma-separated cases of the tables (default: all of {', '.join(TABLE)})"
    )
    parser.add_argument(
        "--profile", metavar="CASE", choices=TABLE, help="cProfile one case on simulated data"
    )
    parser.add_argument("--profile-hours", type=float, default=1.0)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--proc-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--addresses", help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        run_case(
            args.case, args.path, args.workers, args.proc_id, args.addresses, args.ready, args.url
        )
        return 0
    if args.memory_case:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(column_state_memory(args.memory_case, args.memory_sensors)))
        return 0
    if args.databases:
        from benchmarks.databases import main as databases

        return databases(args.repeats)
    if args.profile:
        profile(args.profile, args.large_sensors, args.profile_hours)
        return 0

    chosen = TABLE if args.cases is None else tuple(args.cases.split(","))
    unknown = set(chosen) - set(TABLE)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    with contextlib.ExitStack() as stack:
        before = None if args.before is None else stack.enter_context(checkout(args.before))
        return _tables(args, chosen, before)


def _tables(args: argparse.Namespace, chosen: tuple[str, ...], before: Path | None) -> int:
    """The shipped data's table, then (unless `--quick`) the large set's, memory and targets."""
    layouts = [("1 worker", 1, 1), ("2 workers", 2, 1), ("2 processes", 1, 2)]
    print(f"shipped data: {SHIPPED.name}")
    n = count_readings(str(SHIPPED))
    print(f"  {n:,} readings, median of {args.repeats} runs")
    shipped = measure(str(SHIPPED), n, args.repeats, chosen, layouts, before)
    report_ratios(shipped, layouts)
    print(markdown_table(shipped, layouts, chosen))
    if args.quick:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        from data import simulate

        sim = simulate.generate(seed=1, n_sensors=args.large_sensors, hours=args.large_hours)
        path, _ = simulate.write(sim, tmp)
        n = count_readings(str(path))
        print(f"large: {args.large_sensors:,} sensors × {args.large_hours} h = {n:,} readings")
        print(f"  median of {args.large_repeats} runs")
        # the seed and the river loop one item (or one river forest per sensor: 8 GB at
        # 10,000 sensors, minutes a run) at a time: on the shipped data only, or 1 worker
        many = [c for c in chosen if c not in ("baseline", "river_loop")]
        table = measure(str(path), n, args.large_repeats, many, layouts, before)
        if "baseline" in chosen:  # one item per batch: slow, so 1 worker only
            table.update(measure(str(path), n, args.large_repeats, ("baseline",), layouts[:1]))
        report_ratios(table, layouts)
        print(markdown_table(table, layouts, chosen))
    memory = {}
    for case in ("flow", "flow_hst"):
        if case in chosen:
            memory[case] = _measure_memory(case, args.memory_sensors)
            resident, pickled = memory[case]
            print(
                f"state memory, {case}: {resident:,.0f} resident bytes per sensor at "
                f"{args.memory_sensors:,} sensors ({pickled:,.0f} bytes pickled)"
            )
    report_targets(table, memory, args.memory_sensors, shipped)
    return 0


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A temporary `git worktree` of commit `rev` of this repository (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        tree = Path(tmp) / "tree"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", str(tree), rev], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            yield tree
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=False)


if __name__ == "__main__":
    sys.exit(main())
