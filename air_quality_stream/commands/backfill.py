"""Back-fill a history: the air-quality flow over a file of any length, on the column engine,
with progress (rows, rows/s, share read, time left) on stderr.

    air-quality backfill history.jsonl > anomalies.jsonl
    air-quality backfill readings.csv -c flow.toml --output anomalies.db -p 2

The history is JSON lines of PurpleAir polls (or one payload), or a CSV of readings (header
`sensor_index,time,<field>...`); see docs/history.md. Every option of `run` applies (the
engine is always "columns"); `--progress` sets the seconds between progress lines (default 5).
Each process prints the progress of its own shards.
"""

from __future__ import annotations

import argparse

from air_quality_stream.runs import add_run_arguments, execute

HELP = "back-fill a history file (polls or a CSV of readings), with progress"
ORDER = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("history", help="JSON lines of polls (or one payload), or a .csv")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from dataflows.backfill import DEFAULT_PROGRESS

    interval = getattr(args, "option:run.progress", None)
    progress = DEFAULT_PROGRESS if interval is None else (interval or None)
    return execute(args, "backfill", history=args.history, progress=progress)
