"""Detection quality of an anomaly stream against the simulator's fault labels.

A flagged reading is a true positive when it falls inside a labelled episode of its sensor
(`start` ≤ last_seen ≤ `end`); an episode is detected when at least one of its readings is
flagged, after a delay of (first flag − start). Dropouts have no readings to flag, so they are
reported apart and left out of recall.

    python -m evaluation.detection anomalies.jsonl [--labels data/labels.csv]
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

LABELS = Path(__file__).resolve().parent.parent / "data" / "labels.csv"
SILENT_FAULTS = frozenset({"dropout"})


@dataclass(frozen=True)
class Episode:
    """One labelled fault: a sensor, a kind, an inclusive span of event times."""

    sensor_index: int
    fault: str
    start: int
    end: int


@dataclass
class FaultScore:
    """Detection figures for one fault kind."""

    episodes: int = 0
    detected: int = 0
    flagged_readings: int = 0
    delays: list[int] | None = None

    @property
    def recall(self) -> float:
        return self.detected / self.episodes if self.episodes else 0.0

    @property
    def median_delay(self) -> float | None:
        return statistics.median(self.delays) if self.delays else None


@dataclass
class Report:
    """Precision over all flags, recall and delay per fault kind."""

    flags: int
    true_flags: int
    per_fault: dict[str, FaultScore]

    @property
    def precision(self) -> float:
        return self.true_flags / self.flags if self.flags else 0.0

    @property
    def recall(self) -> float:
        scored = [s for f, s in self.per_fault.items() if f not in SILENT_FAULTS]
        episodes = sum(s.episodes for s in scored)
        return sum(s.detected for s in scored) / episodes if episodes else 0.0


def load_labels(path: str | Path = LABELS) -> list[Episode]:
    """Read `labels.csv` (sensor_index,fault,start,end,...)."""
    with Path(path).open(newline="") as fh:
        return [
            Episode(int(r["sensor_index"]), r["fault"], int(r["start"]), int(r["end"]))
            for r in csv.DictReader(fh)
        ]


def load_flags(path: str | Path) -> list[tuple[int, int]]:
    """(sensor_index, epoch seconds) of each anomaly line of a JSON-lines file."""
    flags = []
    with Path(path).open() as fh:
        for line in fh:
            if line.strip():
                record = json.loads(line)
                when = datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
                flags.append((int(record["sensor_index"]), int(when.timestamp())))
    return flags


def evaluate(flags: Iterable[tuple[int, int]], episodes: Sequence[Episode]) -> Report:
    """Match flags to episodes of the same sensor; count precision, recall and delays."""
    by_sensor: dict[int, list[Episode]] = defaultdict(list)
    for ep in sorted(episodes, key=lambda e: e.start):
        by_sensor[ep.sensor_index].append(ep)
    starts = {s: [e.start for e in eps] for s, eps in by_sensor.items()}
    first_flag: dict[Episode, int] = {}
    per_fault: dict[str, FaultScore] = defaultdict(lambda: FaultScore(delays=[]))
    n_flags = true_flags = 0
    for sensor, when in flags:
        n_flags += 1
        i = bisect.bisect_right(starts.get(sensor, []), when) - 1
        if i >= 0 and when <= by_sensor[sensor][i].end:
            ep = by_sensor[sensor][i]
            true_flags += 1
            per_fault[ep.fault].flagged_readings += 1
            first_flag[ep] = min(when, first_flag.get(ep, when))
    for ep in episodes:
        score = per_fault[ep.fault]
        score.episodes += 1
        if ep in first_flag:
            score.detected += 1
            score.delays.append(first_flag[ep] - ep.start)
    return Report(n_flags, true_flags, dict(sorted(per_fault.items())))


def format_report(report: Report) -> str:
    """A plain-text table of the report."""
    lines = [
        f"flags: {report.flags}, inside a fault: {report.true_flags}, "
        f"precision: {report.precision:.3f}, recall (episodes, dropouts excluded): "
        f"{report.recall:.3f}",
        f"{'fault':<10}{'episodes':>9}{'detected':>9}{'recall':>8}{'flags':>7}"
        f"{'median delay s':>16}",
    ]
    for fault, s in report.per_fault.items():
        delay = "-" if s.median_delay is None else f"{s.median_delay:.0f}"
        note = "  (no readings to flag)" if fault in SILENT_FAULTS else ""
        lines.append(
            f"{fault:<10}{s.episodes:>9}{s.detected:>9}{s.recall:>8.3f}"
            f"{s.flagged_readings:>7}{delay:>16}{note}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("anomalies", help="JSON-lines anomaly file written by the flow")
    parser.add_argument("--labels", default=str(LABELS), help="labels.csv of the simulator")
    args = parser.parse_args(argv)
    print(format_report(evaluate(load_flags(args.anomalies), load_labels(args.labels))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
