"""Serve the live view: the map, the open incidents and each sensor's story, read from the
flow's database while a flow writes it (docs/live-view.md).

    air-quality serve --db results.db
    air-quality serve --db postgresql://aq@db/aq --host 0.0.0.0 --token "$AQ_VIEW_TOKEN"
"""

from __future__ import annotations

import argparse

HELP = "serve the live view (map, incidents, a sensor's story) over the flow's database"
ORDER = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from viewer.cli import add_arguments as viewer_arguments

    viewer_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from viewer.cli import main

    return main(args)
