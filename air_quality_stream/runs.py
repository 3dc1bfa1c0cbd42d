"""What `run` and `backfill` share: the run options, the checks before the engine starts, the
processes, and the summary."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from air_quality_stream.cli import CONFIG_ERROR
from air_quality_stream.flags import add_flags, overrides
from air_quality_stream.processes import run_processes
from air_quality_stream.summary import block, read_totals, summary, write_json

log = logging.getLogger("air_quality.cli")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a run: file, layout, recovery, metrics, summary; then the flow's."""
    run = parser.add_argument_group("the run")
    run.add_argument(
        "-c", "--config", metavar="FILE", help="a flow.toml (flags override its options)"
    )
    run.add_argument("-w", "--workers", type=int, default=1, help="worker threads per process")
    run.add_argument(
        "-p", "--processes", type=int, default=1, help="processes (started on 127.0.0.1)"
    )
    run.add_argument(
        "-r", "--recovery", metavar="DIR", help="recovery folder: resume after a crash"
    )
    run.add_argument(
        "-s",
        "--snapshot-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between snapshots (epochs) (default 10)",
    )
    run.add_argument(
        "--backup-interval",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long snapshots are kept (with --recovery; default 0)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT (process i: PORT+i)",
    )
    run.add_argument(
        "--summary-json", metavar="FILE", help="also write the end-of-run summary as JSON"
    )
    add_flags(parser)


def resolve_args(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The configuration the command line asks for (file, then flags), and the flags' tree."""
    from config.tables import merge, read_toml, resolve

    tree = overrides(args)
    if args.config:
        resolve(args.config)  # a file's own errors name the file
    base = read_toml(args.config) if args.config else {}
    return resolve(merge(base, tree)), tree


def check_layout(args: argparse.Namespace) -> None:
    """Workers and processes at least 1; a recovery folder made when new."""
    from core.errors import ConfigError

    for name in ("workers", "processes"):
        value = getattr(args, name)
        if value < 1:
            raise ConfigError(f"--{name}: {value} is out of range; allowed: at least 1")
    if args.recovery:
        folder = Path(args.recovery)
        if not folder.exists():
            from bytewax.recovery import init_db_dir

            folder.mkdir(parents=True)
            init_db_dir(folder, args.workers * args.processes)
            log.info("recovery: made %s with %d partitions", folder, args.workers * args.processes)
        elif not folder.is_dir():
            raise ConfigError(f"--recovery: {folder} is not a folder")


def execute(args: argparse.Namespace, command: str, **extra: Any) -> int:
    """Check everything, run the processes, print the summary; the exit code."""
    from air_quality_stream import preflight
    from core.errors import ConfigError

    started = time.monotonic()
    try:
        config, tree = resolve_args(args)
        check_layout(args)
        preflight.check(config, source_file=not {"history", "history_api"} & extra.keys())
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return CONFIG_ERROR
    with tempfile.TemporaryDirectory(prefix="air-quality-") as scratch:
        totals_path = Path(scratch) / "totals.jsonl"
        spec = {
            "config": str(Path(args.config).resolve()) if args.config else None,
            "overrides": tree,
            "workers": args.workers,
            "totals": str(totals_path),
            "recovery": str(Path(args.recovery).resolve()) if args.recovery else None,
            "snapshot_interval": args.snapshot_interval,
            "backup_interval": args.backup_interval,
            "metrics_port": args.metrics_port,
            "log_level": args.log_level,
            **extra,
        }
        code = run_processes(spec, args.processes)
        totals = read_totals(totals_path)
    record = summary(
        command,
        code,
        time.monotonic() - started,
        totals,
        processes=args.processes,
        workers=args.workers,
        source=_source_name(config, extra),
        anomalies_to=str(config.outputs.anomalies or "stdout"),
    )
    print(block(record), file=sys.stderr, flush=True)
    if args.summary_json:
        write_json(args.summary_json, record)
    return code


def _source_name(config: Any, extra: dict[str, Any]) -> str:
    """What the run read, for the summary."""
    if extra.get("history_api"):
        return f"PurpleAir history ({extra['history_api']['base_url']})"
    return str(extra.get("history") or config.source.path or "data/polls.jsonl (shipped)")
