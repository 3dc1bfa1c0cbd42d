"""One Bytewax process of a run, started by `air-quality run` or `backfill` (never by hand).

    python -m air_quality_stream.engine SPEC_JSON

Before the engine starts, its stdout (file descriptor 1, where Bytewax's own messages such as
`error connecting to worker` go) is pointed at stderr, and Python's `sys.stdout`, where the
flow writes its results, at the pipe the parent reads (`results_fd`): only results reach the
command's stdout. The run's totals go to the file `totals` (one JSON line), for the summary.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from typing import Any

from air_quality_stream import checkout
from air_quality_stream.cli import CONFIG_ERROR, setup_logging


def route_streams(results_fd: int) -> None:
    """Results to `results_fd` (as `sys.stdout`); everything else written to fd 1 to stderr."""
    results = os.dup(results_fd)
    os.close(results_fd)
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = open(results, "w", buffering=1, encoding="utf-8")  # noqa: SIM115


def build(spec: dict[str, Any]) -> tuple[Any, Any]:
    """The flow the spec asks for (the air-quality flow, a back-fill of `history`, or of the
    API's history `history_api`) and its history source, if any (it may stop early)."""
    from config.tables import merge, read_toml, resolve
    from dataflows.air_quality import dataflow
    from sinks.jsonlines import JsonLinesSink

    tree = merge(read_toml(spec["config"]) if spec.get("config") else {}, spec["overrides"])
    totals = JsonLinesSink(spec["totals"])
    if spec.get("history_api"):
        from dataflows.air_quality import build_flow
        from dataflows.backfill import api_source

        options = {"totals": totals}
        source = api_source(spec["history_api"], spec.get("progress"), tree, **options)
        return build_flow(source, config=tree, progress=None, **options), source
    if spec.get("history"):
        from dataflows.backfill import backfill_flow

        flow = backfill_flow(
            spec["history"], config=tree, progress=spec.get("progress"), totals=totals
        )
        return flow, None
    return dataflow(resolve(tree, totals=totals), processes=len(spec["addresses"] or [0])), None


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    route_streams(spec["results_fd"])
    checkout()
    prefix = f"p{spec['process_id']} " if len(spec["addresses"] or ()) > 1 else ""
    setup_logging(spec["log_level"], prefix)
    from bytewax.recovery import RecoveryConfig
    from bytewax.run import cli_main

    from config.options import say_configuration_error

    if spec.get("metrics_port") is not None:
        from prometheus_client import start_http_server

        start_http_server(spec["metrics_port"] + spec["process_id"], addr="127.0.0.1")
    recovery = None
    if spec.get("recovery"):
        backup = timedelta(seconds=spec["backup_interval"])
        recovery = RecoveryConfig(spec["recovery"], backup_interval=backup)
    try:
        flow, history = build(spec)
        cli_main(
            flow,
            workers_per_process=spec["workers"],
            process_id=spec["process_id"] if spec["addresses"] else None,
            addresses=spec["addresses"],
            epoch_interval=timedelta(seconds=spec["snapshot_interval"]),
            recovery_config=recovery,
        )
    except Exception as error:
        if not say_configuration_error(error):
            raise
        return CONFIG_ERROR
    finally:
        sys.stdout.flush()
    if history is not None and history.stopped is not None:
        print(f"backfill stopped: {history.stopped}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
