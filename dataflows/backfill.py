"""Back-fill: the air-quality flow over a history of any length, on the column engine.

    python -m dataflows.backfill history.jsonl
    python -m dataflows.backfill readings.csv --config flow.toml --output anomalies.jsonl
    python -m dataflows.backfill history.jsonl --workers 2 --progress 2

The history is JSON lines of PurpleAir polls (or one payload), read by
`columns.source.ColumnFileSource`, or a CSV of readings (a `.csv` file: header
`sensor_index,time,<field>...`, see `columns.csv_source`), read by `CsvColumnSource`; either in
column batches per sensor shard, through the flow of `dataflows.air_quality` with
`[run] engine = "columns"` and every other option from `--config` (a flow.toml) and the
command line. The outputs are the flow's: anomalies to stdout (or `--output`), dead letters to
stderr (or `--dead-letters`), readings when `--readings` names where, the totals in the log.

Every `--progress` seconds one line on stderr says how far the run got:

    backfill: 1,204,000 rows, 251,330 rows/s, 41.0% of 182.4 MB, 0:00:07 left

rows read so far (in this process), rows/s since the line before, the share of the file read
(by the shard furthest behind) and the time left at the average speed so far. Rows read count
readings and dead letters alike. For several processes or a resumable run, give the same flow
to Bytewax, e.g. two processes (each prints its own progress, of its own shards' rows):

    python -m bytewax.run "dataflows.backfill:backfill_flow('history.jsonl')" \
        -i 0 -a "127.0.0.1:2101;127.0.0.1:2102"    # and -i 1 in a second shell

and `-r DIR` for recovery, as for the air-quality flow.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bytewax.dataflow import Dataflow

from columns.csv_source import CsvColumnSource
from columns.source import ColumnFileSource
from config import resolve
from config.options import ConfigError, configuration_error
from dataflows.air_quality import build_flow

#: Seconds between progress lines, unless told otherwise.
DEFAULT_PROGRESS = 5.0


class BackfillProgress:
    """A `ProgressHook` for the column sources: told, after each batch of each partition, its
    rows and how far into the file it got; every `interval` seconds writes a progress line.

    The partitions of one process share it (worker threads: under a lock). `interval=None`
    writes nothing but the last line (`finish`).

    >>> clock = iter([0.0, 2.0, 4.0]).__next__
    >>> lines = []
    >>> p = BackfillProgress(1000, 1.0, clock=clock, write=lines.append)
    >>> p("shard-0-of-1", 300, 250)
    >>> p("shard-0-of-1", 300, 500)
    >>> for line in lines:
    ...     print(line)
    backfill: 300 rows, 150 rows/s, 25.0% of 1.0 kB, 0:00:06 left
    backfill: 600 rows, 150 rows/s, 50.0% of 1.0 kB, 0:00:04 left
    """

    def __init__(
        self,
        size: int,
        interval: float | None = DEFAULT_PROGRESS,
        *,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], Any] | None = None,
    ):
        self.size = max(size, 1)
        self.interval = interval
        self._clock = clock
        self._write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._lock = threading.Lock()
        self._offsets: dict[str, int] = {}
        self.rows = 0
        self._started = clock()
        self._last = (self._started, 0)

    def __call__(self, part: str, rows: int, offset: int) -> None:
        with self._lock:
            self.rows += rows
            self._offsets[part] = offset
            if self.interval is None:
                return
            now = self._clock()
            if now - self._last[0] < self.interval:
                return
            line = self._line(now)
        self._write(line)

    def _line(self, now: float) -> str:
        then, rows_then = self._last
        rate = (self.rows - rows_then) / (now - then) if now > then else 0.0
        self._last = (now, self.rows)
        done = min(self._offsets.values(), default=0) / self.size
        elapsed = now - self._started
        left = "?" if done <= 0 else _clock_time(elapsed * (1 - done) / done)
        return (
            f"backfill: {self.rows:,} rows, {rate:,.0f} rows/s, {100 * done:.1f}% of "
            f"{_bytes(self.size)}, {left} left"
        )

    def finish(self) -> str:
        """The last line: rows, time taken, average rows/s (written, and returned)."""
        with self._lock:
            elapsed = self._clock() - self._started
            rate = self.rows / elapsed if elapsed > 0 else 0.0
            line = (
                f"backfill: done, {self.rows:,} rows in {_clock_time(elapsed)}, {rate:,.0f} rows/s"
            )
        self._write(line)
        return line


def _clock_time(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def backfill_flow(
    path: str | Path,
    *,
    config: Any = None,
    progress: BackfillProgress | float | None = DEFAULT_PROGRESS,
    **options: Any,
) -> Dataflow:
    """The air-quality flow over the history at `path` on the column engine.

    `config` and `options` are `build_flow`'s (a flow.toml, keyword options over it); the
    source is the file's column source, with its shard count and batch size from `[run]`.
    `progress`: a `BackfillProgress`, or seconds between its lines (None: none).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    options = {**options, "engine": "columns", "progress": None}
    resolved = resolve(config, **options)
    run, window = resolved.run, resolved.source.times.window()
    shards = run.shards if run.key == "sensor" else 1
    if not isinstance(progress, BackfillProgress):
        progress = BackfillProgress(path.stat().st_size, progress)
    kind = CsvColumnSource if path.suffix.lower() == ".csv" else ColumnFileSource
    source = kind(
        path, shards=shards, batch_size=run.batch_size, progress=progress, window=window
    )
    return build_flow(source, config=config, **options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dataflows.backfill", description=__doc__.splitlines()[0]
    )
    parser.add_argument("path", help="JSON lines of polls (or one payload), or a .csv of readings")
    parser.add_argument("--config", help="a flow.toml (python -m config prints one)")
    parser.add_argument("--output", help="anomalies (a JSON-lines file or a database)")
    parser.add_argument("--readings", help="every reading (a JSON-lines file or a database)")
    parser.add_argument("--dead-letters", help="rows that could not be read")
    parser.add_argument("--events", help="gap and sensor_offline events")
    parser.add_argument("--workers", type=int, default=1, help="worker threads (default 1)")
    parser.add_argument(
        "--progress",
        type=float,
        default=DEFAULT_PROGRESS,
        help=f"seconds between progress lines (default {DEFAULT_PROGRESS:g})",
    )
    args = parser.parse_args(argv)
    options = {
        name: value
        for name, value in (
            ("output", args.output),
            ("readings", args.readings),
            ("dead_letters", args.dead_letters),
            ("events", args.events),
        )
        if value is not None
    }
    from bytewax.testing import cluster_main, run_main

    try:
        progress = BackfillProgress(max(Path(args.path).stat().st_size, 1), args.progress)
    except OSError:
        print(f"configuration error: no such file: {args.path}", file=sys.stderr)
        return 1
    try:
        flow = backfill_flow(args.path, config=args.config, progress=progress, **options)
        if args.workers == 1:
            run_main(flow)
        else:
            cluster_main(flow, [], 0, worker_count_per_proc=args.workers)
    except Exception as error:  # only a configuration error is shown as one line
        cause = configuration_error(error)
        if cause is None:
            raise
        print(f"configuration error: {cause}", file=sys.stderr)
        return 1
    progress.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
