"""Score-only alerts of each detector on the real PurpleAir history (unlabelled: how many, where).

    python -m evaluation.history_alerts --detectors ranked ranked_shape

Each sensor of `../shared/data/purpleair-ajl/ajl-dev.jsonl.gz` (11 sensors, 10-minute averages,
about 557,000 readings) is one series of `pm2.5_cf_1` in poll order, imputed and scored one
reading at a time as `evaluation.detectors.score_series` does, with each reading's time
(`last_seen`) handed to the detector, so hold-offs in seconds apply. Nobody labelled this
history: the count of alarms per 10,000 readings says how loud a detector is on real sensors.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detectors.catalog import DETECTORS, alarm_threshold, make_detector
from detectors.holdoff import TIME
from evaluation.datasets import Series, series_of_polls
from imputers.window import WindowImputer

AJL_DEV = (
    Path(__file__).resolve().parent.parent.parent
    / "shared" / "data" / "purpleair-ajl" / "ajl-dev.jsonl.gz"
)
FEATURE = "pm2.5_cf_1"


def history(path: str | Path = AJL_DEV) -> list[Series]:
    """Per sensor, (last_seen, pm2.5_cf_1) in poll order."""
    with gzip.open(path, "rt") as f:
        return series_of_polls((json.loads(line) for line in f), FEATURE)


def alarms(name: str, series: Series) -> int:
    """Alarms of a fresh detector `name` over one sensor's series."""
    detector = make_detector(name, FEATURE)
    threshold = alarm_threshold(detector)
    imputer = WindowImputer([FEATURE], window=10)
    count = 0
    for t, value in zip(series.times, series.values, strict=True):
        filled, _imputed, _missing = imputer.impute_one({FEATURE: value})
        score, _status = detector.score_then_learn({**filled, TIME: float(t)})
        count += score is not None and score > threshold
    return count


def alert_table(detectors: Sequence[str], sensors: Sequence[Series]) -> str:
    readings = sum(len(s.values) for s in sensors)
    lines = [
        f"| detector | score-only alarms ({len(sensors)} sensors, {readings:,} readings) "
        "| per 10,000 readings | most on one sensor |",
        "|---|---|---|---|",
    ]
    for name in detectors:
        per = np.array([alarms(name, s) for s in sensors])
        lines.append(
            f"| {name} | {per.sum()} | {1e4 * per.sum() / readings:.1f} | {per.max()} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", default=str(AJL_DEV))
    parser.add_argument("--detectors", nargs="*", default=list(DETECTORS), choices=DETECTORS)
    args = parser.parse_args(argv)
    print(alert_table(args.detectors, history(args.history)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
