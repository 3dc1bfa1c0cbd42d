"""Readings/s of the air-quality flow against the engine's limit and the original example.

    python -m benchmarks.run              # shipped data, then 1.2 M readings over 10,000 sensors
    python -m benchmarks.run --quick      # shipped data only
    python -m benchmarks.run --databases  # rows/s into SQLite and PostgreSQL

Each case runs in a fresh subprocess (so peak memory is its own) that times only `run_main` /
`cluster_main` (interpreter start-up and imports excluded), on the same file, read by the flow's
own source (`ShardedFileSource`, the same shards and batch size):
  passthrough  source → identity map → discarding sink        (the engine's limit)
  keyed        source → key by sensor → stateful_map identity  (the keyed engine limit)
  flow         the air-quality flow                            (ours)
  baseline     the original example (benchmarks/baseline.py)
with 1 worker, 2 workers (threads of one process) and 2 processes on loopback. It prints the
median readings/s of the repeats, the ratios flow/passthrough, flow/keyed, flow/baseline and
2 processes / 1 worker, peak RSS, and the state memory per sensor at 100,000 sensors.

`--databases` (`benchmarks/databases.py`) times the flow writing all four outputs into a new
SQLite file and into a new database on a throw-away PostgreSQL server (fsync on), against the
flow with discarding sinks in the same run, on 1 worker and 2 processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / "polls.jsonl"
CASES = ("passthrough", "keyed", "flow", "baseline", "discarded", "database")


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


def build_case(case: str, path: str, url: str | None = None):
    """The dataflow of one benchmark case over `path` (`database`: writing into `url`)."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow

    from benchmarks import baseline
    from dataflows.air_quality import build_flow
    from sources.shards import ShardedFileSource

    sink = _Discard.make()
    if case == "flow":
        return build_flow(path, output=sink, dead_letters=sink, totals=sink, events=sink)
    if case == "baseline":
        return baseline.build_flow(path, sink)
    if case in ("discarded", "database"):  # all four outputs, into `url` or discarded
        outputs = dict.fromkeys(("output", "readings", "dead_letters", "events"), url or sink)
        return build_flow(path, **outputs, totals=sink, progress=None)
    flow = Dataflow(case)
    items = op.input("read", flow, ShardedFileSource(path))  # the flow's own source
    if case == "passthrough":
        op.output("out", op.map("identity", items, lambda x: x), sink)
    else:
        keyed = op.key_on("key", items, lambda r: str(getattr(r, "sensor_index", "")))
        op.output("out", op.stateful_map("identity", keyed, lambda s, v: (s, v)), sink)
    return flow


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


def _spawn(case: str, path: str, workers: int, procs: int, url: str | None = None) -> dict:
    base = [sys.executable, "-m", "benchmarks.run", "--case", case, "--path", path]
    base += ["--workers", str(workers)] + (["--url", url] if url else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="bench-ready-") as ready:
        if procs == 1:
            cmds = [base]
        else:
            addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(procs))
            base += ["--addresses", addresses, "--ready", ready]
            cmds = [base + ["--proc-id", str(i)] for i in range(procs)]
        running = [
            subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for c in cmds
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


def measure(path: str, readings: int, repeats: int, cases, layouts) -> dict:
    """Median readings/s and peak RSS for each (case, layout)."""
    table = {}
    for label, workers, procs in layouts:
        for case in cases:
            runs = [_spawn(case, path, workers, procs) for _ in range(repeats)]
            rate = statistics.median(readings / r["seconds"] for r in runs)
            rss = max(r["rss_mb"] for r in runs)
            table[(case, label)] = (rate, rss)
            print(f"  {case:<12}{label:<14}{rate:>12,.0f} readings/s   peak RSS {rss:>7.0f} MB")
    return table


def report_ratios(table: dict, layouts) -> None:
    for label, _, _ in layouts:
        flow = table.get(("flow", label), (None,))[0]
        if flow is None:
            continue
        parts = []
        for other in ("passthrough", "keyed", "baseline"):
            if (other, label) in table:
                parts.append(f"flow/{other} = {flow / table[(other, label)][0]:.2f}")
        print(f"  {label}: " + ", ".join(parts))
    one = table.get(("flow", "1 worker"), (None,))[0]
    two = table.get(("flow", "2 processes"), (None,))[0]
    if one and two:
        print(f"  flow: 2 processes / 1 worker = {two / one:.2f}")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def state_memory(n_sensors: int = 100_000) -> tuple[float, int]:
    """Resident bytes per sensor of `n_sensors` per-key states past their first detector window
    (each an independent unpickled copy of one warmed-up sensor, as after a recovery), and the
    pickled size of one."""
    import pickle

    import numpy as np

    from dataflows.air_quality import DEFAULT_IMPUTE_FIELDS
    from dataflows.steps import SensorConfig, SensorLogic
    from sources.payload import Reading

    config = SensorConfig(
        DEFAULT_IMPUTE_FIELDS, 10, "mean", 0.7, {"features": ("pm1.0_cf_1",), "window_size": 72}
    )
    pm = np.random.default_rng(0).gamma(2.0, 5.0, 80).round(1).tolist()
    warm = SensorLogic(config)
    fields = {"temperature": 70.0, "humidity": 40.0, "pressure": 1010.0}
    warm.on_batch([Reading(1, 120 * i, {**fields, "pm1.0_cf_1": v}) for i, v in enumerate(pm)])
    blob = pickle.dumps(warm.snapshot())
    before = _rss_bytes()
    states = [SensorLogic(config, pickle.loads(blob)) for _ in range(n_sensors)]
    used = _rss_bytes() - before
    assert len(states) == n_sensors
    return used / n_sensors, len(blob)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shipped data only")
    parser.add_argument("--databases", action="store_true", help="rows/s into each database")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-sensors", type=int, default=10_000)
    parser.add_argument("--large-hours", type=float, default=4.0)
    parser.add_argument("--memory-sensors", type=int, default=100_000)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
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
    if args.databases:
        from benchmarks.databases import main as databases

        return databases(args.repeats)

    layouts = [("1 worker", 1, 1), ("2 workers", 2, 1), ("2 processes", 1, 2)]
    print(f"shipped data: {SHIPPED.name}")
    n = count_readings(str(SHIPPED))
    print(f"  {n:,} readings, median of {args.repeats} runs")
    report_ratios(measure(str(SHIPPED), n, args.repeats, CASES, layouts), layouts)
    if not args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            from data import simulate

            sim = simulate.generate(seed=1, n_sensors=args.large_sensors, hours=args.large_hours)
            path, _ = simulate.write(sim, tmp)
            n = count_readings(str(path))
            print(f"large: {args.large_sensors:,} sensors × {args.large_hours} h = {n:,} readings")
            cases = ("passthrough", "keyed", "flow")
            table = measure(str(path), n, 1, cases, layouts)
            table.update(measure(str(path), n, 1, ("baseline",), layouts[:1]))
            report_ratios(table, layouts)
        per_sensor, pickled = state_memory(args.memory_sensors)
        print(
            f"state memory: {per_sensor:,.0f} resident bytes per sensor at "
            f"{args.memory_sensors:,} sensors ({pickled:,} bytes pickled)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
