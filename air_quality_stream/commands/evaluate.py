"""The evaluations: detection quality and quality-control (alert kinds) against the
simulator's labels, every detector on the labelled data sets, the neighbour rule on a snapshot.

    air-quality run --output anomalies.jsonl && air-quality evaluate detection anomalies.jsonl
    air-quality evaluate quality-control anomalies.jsonl     # kinds: fault or pollution event
    air-quality evaluate detectors --quick                   # every detector, shipped data
    air-quality evaluate nab --quick                         # NAB's real series too

Each is a module of `evaluation/` with its own options: `air-quality evaluate NAME --help`.
"""

from __future__ import annotations

import argparse

HELP = "evaluate detection and quality control against labels, or every detector"
ORDER = 50
#: name → (module, what it does).
EVALUATIONS = {
    "detection": ("evaluation.detection", "precision, recall and delay of an anomaly file"),
    "quality-control": (
        "evaluation.kinds",
        "alert kinds of an anomaly file: faults named, plumes told from faults",
    ),
    "detectors": ("evaluation.detectors", "every detector on the simulator and WaterFlow"),
    "nab": ("evaluation.nab_bench", "every detector on NAB's real series (../shared/data)"),
    "spatial": ("evaluation.spatial", "the neighbour rule on one real PurpleAir snapshot"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One sub-command per evaluation; each module parses its own arguments."""
    which = parser.add_subparsers(dest="evaluation", metavar="EVALUATION", required=True)
    for name, (module, what) in EVALUATIONS.items():
        sub = which.add_parser(name, help=what, add_help=False)
        sub.set_defaults(module=module, pass_on=True)


def run(args: argparse.Namespace) -> int:
    from air_quality_stream.delegate import delegate

    prog = f"air-quality evaluate {args.evaluation}"
    return delegate(args.module, prog, args.arguments)
