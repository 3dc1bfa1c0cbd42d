"""Back-fill: the air-quality flow over a history of any length, with progress.

    python -m dataflows.backfill history.jsonl
    python -m dataflows.backfill readings.csv --config flow.toml --output anomalies.jsonl
    python -m dataflows.backfill history.jsonl --workers 2 --progress 2

The history is JSON lines of PurpleAir polls (or one payload), read by
`columns.source.ColumnFileSource`, or a CSV of readings (a `.csv` file: header
`sensor_index,time,<field>...`, see `columns.csv_source`), read by `CsvColumnSource`; either in
column batches per sensor shard, through the flow of `dataflows.air_quality` with every option
from `--config` (a flow.toml) and the command line. The outputs are the flow's: anomalies to
stdout (or `--output`), dead letters to stderr (or `--dead-letters`), readings when `--readings`
names where, the totals in the log.

Every `--progress` seconds one line on stderr says how far the run got:

    backfill: 1,204,000 rows, 251,330 rows/s, 41.0% of 182.4 MB, 0:00:07 left

rows read so far (in this process), rows/s since the line before, the share of the file read
(by the shard furthest behind) and the time left at the average speed so far. Rows read count
readings and dead letters alike. For several processes or a resumable run, give the same flow
to Bytewax, e.g. two processes (each prints its own progress, of its own shards' rows):

    python -m bytewax.run "dataflows.backfill:backfill_flow('history.jsonl')" \
        -i 0 -a "127.0.0.1:2101;127.0.0.1:2102"    # and -i 1 in a second shell

and `-r DIR` for recovery, as for the air-quality flow.

Straight from the PurpleAir API (`sources.history`, docs/history.md), with the key in
`PURPLEAIR_API_KEY`:

    python -m dataflows.backfill --from-api --sensors 1,2,3 --start 2024-01-01 \
        --end 2024-02-01 --average 10 --recovery DIR
    python -m dataflows.backfill --from-api --sensors 1,2,3 --start 2024-01-01 \
        --end 2024-02-01 --dry-run            # the points it would cost, nothing sent

`--bbox W,N,E,S` or `--group ID` instead of `--sensors`; `--budget-points N` stops before the
run spends more, `--budget-per-hour N` slows down (or, with `--on-limit stop`, stops) at that
rate; `--recovery DIR` (made once with `python -m bytewax.recovery DIR 1`) lets a stopped or
killed run go on where it was, chunk by chunk. Its progress line:

    backfill: chunk 40 of 143 (28.0%), 52,310 rows, 1,204 rows/s, 731,245 points, 0:01:10 left
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig

from columns.csv_source import CsvColumnSource
from columns.source import ColumnFileSource
from config import resolve
from config.options import configuration_error, say_configuration_error
from core.errors import ConfigError
from dataflows.air_quality import POLLED_FIELDS, build_flow
from sources.history import (
    NOT_HISTORY,
    HistoryPlan,
    HistorySource,
    PaymentRequired,
    PointsBudgetExceeded,
    parse_time,
)
from sources.points import Budget, PointsLedger
from sources.poller import PUBLIC_API
from sources.retry import Backoff

#: Seconds between progress lines, unless told otherwise.
DEFAULT_PROGRESS = 5.0


class _ProgressLines:
    """What both back-fill progress lines share: the rows so far under a lock (the worker
    threads of a process share one), a line at most every `interval` seconds (None: only the
    last), and the rate since the line before."""

    def __init__(
        self, interval: float | None, clock: Callable[[], float], write: Callable[[str], Any] | None
    ):
        self.interval, self._clock = interval, clock
        self._write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._lock = threading.Lock()
        self.rows = 0
        self._started = clock()
        self._last = (self._started, 0)

    def _due(self) -> float | None:
        """Now, when a progress line is due (called under the lock); else None."""
        if self.interval is None:
            return None
        now = self._clock()
        return now if now - self._last[0] >= self.interval else None

    def _rate(self, now: float) -> float:
        """Rows a second since the last line; `now` becomes the last line's time."""
        then, rows_then = self._last
        self._last = (now, self.rows)
        return (self.rows - rows_then) / (now - then) if now > then else 0.0


class BackfillProgress(_ProgressLines):
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
        super().__init__(interval, clock, write)
        self.size = max(size, 1)
        self._offsets: dict[str, int] = {}

    def __call__(self, part: str, rows: int, offset: int) -> None:
        with self._lock:
            self.rows += rows
            self._offsets[part] = offset
            now = self._due()
            if now is None:
                return
            line = self._line(now)
        self._write(line)

    def _line(self, now: float) -> str:
        rate = self._rate(now)
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
    """The air-quality flow over the history at `path`, with its progress.

    `config` and `options` are `build_flow`'s (a flow.toml, keyword options over it); the
    source is the file's column source, with its shard count and batch size from `[run]`.
    `progress`: a `BackfillProgress`, or seconds between its lines (None: none).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    options = {**options, "progress": None}
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


class HistoryProgress(_ProgressLines):
    """The back-fill's progress from the API: told of each chunk (`HistorySource.progress`),
    writes every `interval` seconds chunks done, rows, rows/s, points spent and time left
    (at the average pace of this run's chunks so far). `interval=None`: only `finish`.

    >>> clock = iter([0.0, 2.0, 4.0, 5.0]).__next__
    >>> lines = []
    >>> ledger = PointsLedger()
    >>> p = HistoryProgress(ledger, 1.0, clock=clock, write=lines.append)
    >>> p("history-0-of-1", 1, 4, 300)
    >>> p("history-0-of-1", 2, 4, 300)
    >>> print(lines[-1])
    backfill: chunk 2 of 4 (50.0%), 600 rows, 150 rows/s, 0 points, 0:00:04 left
    """

    def __init__(
        self,
        ledger: PointsLedger,
        interval: float | None = DEFAULT_PROGRESS,
        *,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], Any] | None = None,
    ):
        super().__init__(interval, clock, write)
        self.ledger = ledger
        self._parts: dict[str, tuple[int, int]] = {}  # part: (done, total)
        self._first: dict[str, int] = {}  # part: chunks done when this run began

    def __call__(self, part: str, done: int, total: int, rows: int) -> None:
        with self._lock:
            self.rows += rows
            self._first.setdefault(part, done - 1)
            self._parts[part] = (done, total)
            now = self._due()
            if now is None:
                return
            line = self._line(now)
        self._write(line)

    def _line(self, now: float) -> str:
        rate = self._rate(now)
        done = sum(d for d, _t in self._parts.values())
        total = sum(t for _d, t in self._parts.values())
        this_run = done - sum(self._first.values())
        elapsed = now - self._started
        left = "?" if this_run <= 0 else _clock_time(elapsed / this_run * (total - done))
        return (
            f"backfill: chunk {done:,} of {total:,} ({100 * done / max(total, 1):.1f}%), "
            f"{self.rows:,} rows, {rate:,.0f} rows/s, {self.ledger.spent:,} points, {left} left"
        )

    def finish(self) -> str:
        """The last line: rows, chunks, time taken, points spent (written, and returned)."""
        with self._lock:
            elapsed = self._clock() - self._started
            done = sum(d for d, _t in self._parts.values())
            line = (
                f"backfill: done, {self.rows:,} rows from {done:,} chunks in "
                f"{_clock_time(elapsed)}; {self.ledger.summary()}"
            )
        self._write(line)
        return line


def history_fields(config: Any = None, **options: Any) -> tuple[str, ...]:
    """The fields a history back-fill asks for: those the flow needs (as the live poller asks
    for them) that the history endpoint gives."""
    flow = resolve(config, **{**options, "progress": None})
    needed = (*POLLED_FIELDS, *flow.cleaning.imputation.fields, *flow.detection.features)
    return tuple(f for f in dict.fromkeys(needed) if f not in NOT_HISTORY)


def history_source(
    sensors: Sequence[int] | None = None,
    *,
    start: int | str,
    end: int | str,
    average: int = 10,
    fields: Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    group: int | None = None,
    base_url: str = PUBLIC_API,
    chunk: int | None = None,
    budget: Budget | None = None,
    backoff: Backoff | Mapping[str, float] | None = None,
    progress: HistoryProgress | float | None = DEFAULT_PROGRESS,
    config: Any = None,
    **options: Any,
) -> HistorySource:
    """The history source of a back-fill (`start`/`end`: epoch seconds, dates or ISO 8601;
    `fields`: unset, what the flow's configuration needs); its sensors and positions are found
    here, before the flow runs."""
    options = {**options, "progress": None}
    run = resolve(config, **options).run
    ledger = progress.ledger if isinstance(progress, HistoryProgress) else PointsLedger(budget)
    if not isinstance(progress, HistoryProgress):
        progress = HistoryProgress(ledger, progress)
    return HistorySource(
        sensors,
        start=parse_time(str(start)),
        end=parse_time(str(end)),
        average=average,
        fields=fields or history_fields(config, **options),
        bbox=bbox,
        group=group,
        base_url=base_url,
        chunk=chunk,
        batch_size=run.batch_size,
        ledger=ledger,
        backoff=Backoff(**backoff) if isinstance(backoff, Mapping) else backoff,
        progress=progress,
    )


def history_flow(
    sensors: Sequence[int] | None = None,
    *,
    start: int | str,
    end: int | str,
    config: Any = None,
    source_options: dict[str, Any] | None = None,
    **options: Any,
) -> Dataflow:
    """The air-quality flow over sensors' history from the PurpleAir API;
    `source_options` are `history_source`'s, `config` and `options` `build_flow`'s. For
    `bytewax.run` with `-r DIR` to resume."""
    options = {**options, "progress": None}
    flow_options = {k: v for k, v in options.items() if k != "progress"}
    source = history_source(
        sensors, start=start, end=end, config=config, **(source_options or {}), **flow_options
    )
    return build_flow(source, config=config, **options)


def _numbers(text: str | None, kind: type) -> list | None:
    return None if text is None else [kind(x) for x in text.split(",") if x.strip()]


def api_request(args: argparse.Namespace, purpleair: Any = None) -> dict[str, Any]:
    """What `add_api_arguments`' flags ask for, as JSON-able history source options (the API's
    root and box from `purpleair`, a `[source.purpleair]` configuration, when given); a
    `ValueError` says which flags are wrong."""
    if purpleair is not None:
        bbox = ",".join(map(str, purpleair.bbox)) if purpleair.bbox else None
        args = argparse.Namespace(**{**vars(args), "base_url": purpleair.base_url, "bbox": bbox})
    chosen = [x for x in (args.sensors, args.bbox, args.group) if x is not None]
    if len(chosen) != 1 or args.start is None or args.end is None:
        raise ValueError(
            "--from-api needs one of --sensors, --bbox or --group, and --start and --end"
        )
    return {
        "sensors": _numbers(args.sensors, int),
        "start": parse_time(args.start),
        "end": parse_time(args.end),
        "average": args.average,
        "fields": args.fields.split(",") if args.fields else None,
        "bbox": _numbers(args.bbox, float),
        "group": args.group,
        "base_url": args.base_url,
        "chunk": None if args.chunk_days is None else int(args.chunk_days * 86400),
        "budget": [args.budget_points, args.budget_per_hour, args.on_limit],
    }


def api_plan(request: dict[str, Any], config: Any = None, **options: Any) -> str:
    """The dry run's text: the requests and points a back-fill of `request` would cost (a box's
    or a group's sensors are asked for first, one request; nothing else is sent)."""
    fields = request["fields"] or history_fields(config, **options)
    if request["sensors"] is not None:
        chunk = request["chunk"]
        plan = HistoryPlan(
            request["sensors"], request["start"], request["end"], request["average"], fields, chunk
        )
        return plan.describe()
    return api_source(request, None, config, **options).plan.describe()


def api_source(
    request: dict[str, Any], progress: float | None, config: Any, **options: Any
) -> HistorySource:
    """The history source of `request` (`api_request`'s), with its points ledger and budget."""
    rest = dict(request)
    sensors, start, end = rest.pop("sensors"), rest.pop("start"), rest.pop("end")
    rest["progress"] = HistoryProgress(PointsLedger(Budget(*rest.pop("budget"))), progress)
    return history_source(sensors, start=start, end=end, config=config, **rest, **options)


def _from_api(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """`--from-api`: the dry run's line, or the back-fill; a stop is one line."""
    from bytewax.testing import run_main

    try:
        request = api_request(args)
        if args.dry_run:
            print(api_plan(request, args.config, **options))
            return 0
        source = api_source(request, args.progress, args.config, **options)
        flow = build_flow(source, config=args.config, progress=None, **options)
        recovery = None if args.recovery is None else RecoveryConfig(args.recovery)
        run_main(flow, recovery_config=recovery)
        if source.stopped is not None:
            print(f"backfill stopped: {source.stopped}", file=sys.stderr)
            return 1
        source.progress.finish()
    except Exception as error:  # a stop or a configuration error is one line
        cause = configuration_error(error)
        if cause is None and isinstance(error, ValueError):
            cause = error  # an option the source refused (its message names it)
        if cause is None:
            raise
        stop = isinstance(cause, PaymentRequired | PointsBudgetExceeded)
        print(f"{'backfill stopped' if stop else 'configuration error'}: {cause}", file=sys.stderr)
        return 1
    return 0


def add_api_arguments(api: Any, own_source_options: bool = True) -> None:
    """The options of a back-fill from the PurpleAir API, on a parser or an argument group
    (this module's command and `air-quality backfill --from-api` share them; the latter takes
    the API's root and box from the configuration's `[source.purpleair]` `base_url` and `bbox`
    flags: `own_source_options=False`)."""
    api.add_argument("--from-api", action="store_true", help="sensors' history from the API")
    api.add_argument("--sensors", help="sensor indexes, comma-separated")
    if own_source_options:
        api.add_argument("--bbox", help="or the sensors in nwlng,nwlat,selng,selat")
    api.add_argument("--group", type=int, help="or the sensors of this group")
    api.add_argument("--start", help="first time (a date, ISO 8601 or epoch seconds)")
    api.add_argument("--end", help="end (excluded)")
    api.add_argument("--average", type=int, default=10, help="minutes (0: real time); 10")
    api.add_argument("--fields", help="fields to ask for; default: what the flow needs")
    api.add_argument("--chunk-days", type=float, help="days per request; default: the API's most")
    if own_source_options:
        api.add_argument("--base-url", default=PUBLIC_API, help="the API's root")
    api.add_argument("--budget-points", type=int, help="stop before the run spends more")
    api.add_argument("--budget-per-hour", type=int, help="points an hour at most")
    api.add_argument(
        "--on-limit", choices=("slow", "stop"), default="slow", help="at the hour's limit"
    )
    api.add_argument("--dry-run", action="store_true", help="print the points it would cost")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dataflows.backfill", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "path", nargs="?", help="JSON lines of polls (or one payload), or a .csv of readings"
    )
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
    add_api_arguments(parser.add_argument_group("from the PurpleAir API (docs/history.md)"))
    parser.add_argument("--recovery", help="a Bytewax recovery directory, to resume a stopped run")
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
    if args.from_api:
        return _from_api(args, options)
    if args.path is None:
        parser.error("give a PATH, or --from-api")
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
        if not say_configuration_error(error):
            raise
        return 1
    progress.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
