"""Back-fill a history: the air-quality flow over a file of any length or the PurpleAir API,
with progress (rows, rows/s, share read, time left) on stderr.

    air-quality backfill history.jsonl > anomalies.jsonl
    air-quality backfill readings.csv -c flow.toml --output anomalies.db -p 2
    air-quality backfill --from-api --sensors 87173,156171 --start 2024-01-01 --end 2024-02-01

The history is JSON lines of PurpleAir polls (or one payload), or a CSV of readings (header
`sensor_index,time,<field>...`), or with `--from-api` the sensors' history from PurpleAir's
history endpoint, in chunks within its limits and the points budget (`--dry-run` prints the
cost and sends nothing); see docs/backfill.md and docs/history.md. Every option of `run`
applies (`--bbox` and `--base-url` are the API's too);
`--progress` sets the seconds between progress lines (default 5).
Each process prints the progress of its own shards.
"""

from __future__ import annotations

import argparse
import sys

from air_quality_stream.cli import CONFIG_ERROR
from air_quality_stream.runs import add_run_arguments, execute, resolve_args

HELP = "back-fill a history: a file (polls or a CSV of readings) or the PurpleAir API"
ORDER = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dataflows.backfill import add_api_arguments

    parser.add_argument(
        "history", nargs="?", help="JSON lines of polls (or one payload), or a .csv"
    )
    api = parser.add_argument_group("from the PurpleAir API (docs/history.md)")
    add_api_arguments(api, own_source_options=False)
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from dataflows.backfill import DEFAULT_PROGRESS

    interval = getattr(args, "option:run.progress", None)
    progress = DEFAULT_PROGRESS if interval is None else (interval or None)
    if (args.history is None) == (not args.from_api):
        print("configuration error: give a history file, or --from-api", file=sys.stderr)
        return CONFIG_ERROR
    if not args.from_api:
        return execute(args, "backfill", history=args.history, progress=progress)
    from dataflows.backfill import api_plan, api_request

    try:
        config, _tree = resolve_args(args)
        request = api_request(args, config.source.purpleair)
        if args.dry_run:
            print(api_plan(request, config))
            return 0
    except Exception as error:  # a bad flag, or the box's or group's sensors not to be had
        from config.options import configuration_error

        cause = configuration_error(error) or (error if isinstance(error, ValueError) else None)
        if cause is None:
            raise
        print(f"configuration error: {cause}", file=sys.stderr)
        return CONFIG_ERROR
    return execute(args, "backfill", history_api=request, progress=progress)
