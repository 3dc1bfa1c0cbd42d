"""Build the batch-versus-streaming report (`evaluation/report.py`): imputation and detection
quality, agreement, latency, as HTML, Markdown, PNGs and JSON, with a progress line per step
(time so far, time left) on stderr. It takes a few minutes on 2 cores.

    air-quality report report/                    # the shipped data (+ the real snapshot if any)
    air-quality report report/ --snapshot none    # without the real snapshot

stdout: the path of the report's index.html.
"""

from __future__ import annotations

import argparse

HELP = "build the batch-versus-streaming report (HTML, Markdown, JSON), with progress"
ORDER = 40
#: `evaluation.report`'s own options are passed on as they are.
ADD_HELP = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """None here: `evaluation.report` parses them (`air-quality report --help`)."""


def run(args: argparse.Namespace) -> int:
    from air_quality_stream.delegate import delegate

    return delegate("evaluation.report", "air-quality report", args.arguments)
