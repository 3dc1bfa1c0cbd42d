"""Run the air-quality flow: a configuration file, options as flags over it, workers and
processes, recovery, metrics.

    air-quality run                                   # the shipped data: anomalies to stdout
    air-quality run -c flow.toml --threshold 0.8      # a deployment file, one option changed
    air-quality run --source purpleair --bbox=-122.5,38.0,-121.8,37.3     # the live API
    air-quality run -p 2 > anomalies.jsonl            # two processes on this machine

Each flag is an option of the configuration (`air-quality config explain NAME`), named by its
`build_flow` keyword; its group says its table in a flow.toml. stdout carries the anomalies
(unless `--output` sends them elsewhere) and nothing else; logs, progress and the summary go to
stderr. A configuration that cannot work (a bad option, a missing file or API key, a key the
API refuses, an output that cannot be written, a database refusing the credentials) is one
line and exit code 1, before the engine starts.
"""

from __future__ import annotations

import argparse

from air_quality_stream.runs import add_run_arguments, execute

HELP = "run the flow (a config file, options as flags, processes, recovery, metrics)"
ORDER = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return execute(args, "run")
