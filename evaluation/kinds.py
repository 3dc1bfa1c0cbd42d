"""Alert quality per kind: does the flow name the fault, and tell a fault from a pollution event?

Against the simulator's labels (`data/labels.csv`, `data/qc.py`): every label but `dropout`
(no readings) and `smoke` is a fault; `smoke` labels are pollution events. An alert is one
anomaly line with its `kind`:

- `sensor_fault` alerts are right when they fall inside a fault label of their sensor;
  `pollution_event` alerts when inside a smoke label; `anomaly` alerts (a score no rule
  explains) when inside any label (fault or event: the detector knows no better).
- A fault episode is found when a `sensor_fault` alert falls inside it (delay: first such alert
  − start); a smoke label when a `pollution_event` alert does ("any alert": by any kind).
- Plume readings called faults: readings inside a smoke label and no fault label, with a
  `sensor_fault` alert, over all such readings (the readings are counted from the polls file).
- With an incident stream: the share of smoke-labelled sensors inside an open
  `pollution_event` incident of their area at some moment of their smoke label.

    python -m evaluation.kinds alerts.jsonl --polls polls.jsonl --labels labels.csv \
        [--incidents incidents.jsonl]
"""

from __future__ import annotations

import argparse
import bisect
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from evaluation.detection import Episode, load_labels

EVENTS = frozenset({"smoke"})
#: Faults with evidence inside a two-channel sensor: a channel dead or off its twin, a sensor
#: stuck. The simulator's `spike` and `drift` move both channels alike, as air does: no rule
#: inside the sensor can tell them from pollution, so they are not in `sensor_fault`'s recall.
IN_SENSOR = ("channel_dead", "channel_high", "stuck")
SILENT = frozenset({"dropout"})
KINDS = ("sensor_fault", "pollution_event", "anomaly")


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


@dataclass(frozen=True)
class Alert:
    sensor_index: int
    time: int
    kind: str
    reasons: tuple[str, ...]


def load_alerts(path: str | Path) -> list[Alert]:
    """The anomaly lines of a JSON-lines file."""
    alerts = []
    with Path(path).open() as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                alerts.append(
                    Alert(int(r["sensor_index"]), epoch(r["time"]), r["kind"], tuple(r["reasons"]))
                )
    return alerts


def load_readings(path: str | Path) -> list[tuple[int, int]]:
    """(sensor_index, last_seen) of every row of a polls file."""
    out = []
    with Path(path).open() as fh:
        for line in fh:
            poll = json.loads(line)
            s, t = poll["fields"].index("sensor_index"), poll["fields"].index("last_seen")
            out.extend((row[s], row[t]) for row in poll["data"])
    return out


class Spans:
    """Labels per sensor, for `(sensor, time) -> label or None` lookups."""

    def __init__(self, episodes: Iterable[Episode]):
        self.by_sensor: dict[int, list[Episode]] = defaultdict(list)
        for ep in sorted(episodes, key=lambda e: e.start):
            self.by_sensor[ep.sensor_index].append(ep)
        self.starts = {s: [e.start for e in eps] for s, eps in self.by_sensor.items()}

    def find(self, sensor: int, when: int) -> Episode | None:
        i = bisect.bisect_right(self.starts.get(sensor, []), when) - 1
        if i >= 0 and when <= self.by_sensor[sensor][i].end:
            return self.by_sensor[sensor][i]
        return None


@dataclass
class LabelScore:
    episodes: int = 0
    found: int = 0  # by an alert of the expected kind
    found_any: int = 0  # by any alert
    delays: list[int] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.episodes if self.episodes else 0.0


@dataclass
class KindReport:
    alerts: dict[str, int]
    right: dict[str, int]
    per_label: dict[str, LabelScore]
    plume_readings: int
    plume_faults: int
    plume_sensors: int = 0
    plume_sensors_in_incident: int | None = None
    wrong_faults: list[Alert] = field(default_factory=list)  # sensor_fault outside a fault

    def precision(self, kind: str) -> float:
        n = self.alerts.get(kind, 0)
        return self.right.get(kind, 0) / n if n else 0.0

    @property
    def fault_recall(self) -> float:
        """`sensor_fault` recall over the labels with evidence inside the sensor."""
        found = [self.per_label[k] for k in IN_SENSOR if k in self.per_label]
        episodes = sum(s.episodes for s in found)
        return sum(s.found for s in found) / episodes if episodes else 0.0

    @property
    def plume_fault_share(self) -> float:
        return self.plume_faults / self.plume_readings if self.plume_readings else 0.0


def evaluate(
    alerts: Sequence[Alert],
    labels: Sequence[Episode],
    readings: Iterable[tuple[int, int]],
    incidents: Sequence[dict] | None = None,
) -> KindReport:
    """Score the alerts per kind against the labels (see the module's docstring)."""
    faults = Spans(e for e in labels if e.fault not in EVENTS | SILENT)
    events = Spans(e for e in labels if e.fault in EVENTS)
    counts = dict.fromkeys(KINDS, 0)
    right = dict.fromkeys(KINDS, 0)
    first: dict[Episode, int] = {}
    touched: set[Episode] = set()
    faulted: set[tuple[int, int]] = set()
    wrong: list[Alert] = []
    for a in alerts:
        counts[a.kind] = counts.get(a.kind, 0) + 1
        right.setdefault(a.kind, 0)
        fault, event = faults.find(a.sensor_index, a.time), events.find(a.sensor_index, a.time)
        if a.kind == "sensor_fault":
            faulted.add((a.sensor_index, a.time))
            hit = fault
        elif a.kind == "pollution_event":
            hit = event
        else:
            hit = fault or event
        touched.update(e for e in (fault, event) if e is not None)
        if hit is None and a.kind == "sensor_fault":
            wrong.append(a)
        if hit is not None:
            right[a.kind] += 1
            expected = "pollution_event" if hit.fault in EVENTS else "sensor_fault"
            if a.kind == expected:
                first[hit] = min(a.time, first.get(hit, a.time))
    per_label: dict[str, LabelScore] = defaultdict(LabelScore)
    for ep in labels:
        if ep.fault in SILENT:
            continue
        score = per_label[ep.fault]
        score.episodes += 1
        score.found_any += ep in touched
        if ep in first:
            score.found += 1
            score.delays.append(first[ep] - ep.start)
    plume = [
        (s, t) for s, t in readings if events.find(s, t) is not None and faults.find(s, t) is None
    ]
    report = KindReport(
        counts,
        right,
        dict(sorted(per_label.items())),
        len(plume),
        sum(r in faulted for r in plume),
        wrong_faults=wrong,
    )
    smoke = [e for e in labels if e.fault in EVENTS]
    report.plume_sensors = len({e.sensor_index for e in smoke})
    if incidents is not None:
        report.plume_sensors_in_incident = len(_in_incident(smoke, incidents))
    return report


def _in_incident(smoke: Sequence[Episode], incidents: Sequence[dict]) -> set[int]:
    """Smoke-labelled sensors that were, during their label, among the sensors of an open
    `pollution_event` incident (its `open` record's `sensors`, over its open..close span)."""
    spans: list[tuple[int, int, set[int]]] = []
    opened: dict[str, dict] = {}
    for record in sorted(incidents, key=lambda r: (epoch(r["time"]), r["state"] == "open")):
        if record["kind"] != "pollution_event":
            continue
        if record["state"] == "open":
            opened[record["id"]] = record
        elif record["id"] in opened:
            start = opened.pop(record["id"])
            sensors = set(start.get("sensors", [])) | set(record.get("sensors", []))
            spans.append((epoch(start["time"]), epoch(record["time"]), sensors))
    for start in opened.values():  # never closed: open to the end
        spans.append((epoch(start["time"]), 2**62, set(start.get("sensors", []))))
    inside = set()
    for ep in smoke:
        for lo, hi, sensors in spans:
            if ep.sensor_index in sensors and lo <= ep.end and ep.start <= hi:
                inside.add(ep.sensor_index)
                break
    return inside


def format_report(report: KindReport) -> str:
    lines = [f"{'kind':<17}{'alerts':>8}{'right':>8}{'precision':>11}"]
    for kind in report.alerts:
        lines.append(
            f"{kind:<17}{report.alerts[kind]:>8}{report.right[kind]:>8}"
            f"{report.precision(kind):>11.3f}"
        )
    lines.append(
        f"{'label':<17}{'episodes':>9}{'found':>7}{'recall':>8}{'median delay s':>16}"
        f"{'any alert':>11}"
    )
    for name, s in report.per_label.items():
        delay = f"{statistics.median(s.delays):.0f}" if s.delays else "-"
        lines.append(
            f"{name:<17}{s.episodes:>9}{s.found:>7}{s.recall:>8.3f}{delay:>16}{s.found_any:>11}"
        )
    lines.append(
        f"sensor_fault recall over the in-sensor labels ({', '.join(IN_SENSOR)}): "
        f"{report.fault_recall:.3f}; precision {report.precision('sensor_fault'):.3f}"
    )
    lines.append(
        f"plume readings called sensor_fault: {report.plume_faults} of {report.plume_readings}"
        f" ({report.plume_fault_share:.1%})"
    )
    if report.plume_sensors_in_incident is not None:
        share = (
            report.plume_sensors_in_incident / report.plume_sensors if report.plume_sensors else 0
        )
        lines.append(
            f"plume sensors inside an open pollution_event incident: "
            f"{report.plume_sensors_in_incident} of {report.plume_sensors} ({share:.1%})"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("alerts", help="JSON-lines anomaly file written by the flow")
    parser.add_argument("--polls", required=True, help="the polls file the flow read")
    parser.add_argument("--labels", required=True, help="labels.csv of the simulator")
    parser.add_argument("--incidents", help="JSON-lines incident file written by the flow")
    args = parser.parse_args(argv)
    incidents = None
    if args.incidents:
        with open(args.incidents) as fh:
            incidents = [json.loads(line) for line in fh if line.strip()]
    report = evaluate(
        load_alerts(args.alerts), load_labels(args.labels), load_readings(args.polls), incidents
    )
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
