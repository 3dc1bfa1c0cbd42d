"""The air-quality flow's output records and counts: anomalies, readings, gap events, dead
letters, the totals line.

Each turns what leaves the per-shard step (`columns.logic.ShardLogic`) or the area stage into
the JSON-ready dict the sinks write; the counts are the run's totals, folded per shard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core import dead_letters
from core.readings import DeadLetter, Reading
from preparation.aqi import AQI_FIELD, category
from preparation.gaps import GapEvent
from preparation.reasons import SCORE, kind_of
from sources.times import iso_time

Counts = dict[str, int]


def reasons_of(reading: Reading, threshold: float, extra: Sequence[str] = ()) -> list[str]:
    """The reading's rule codes (and `extra` ones, from the area stage), and `score` when its
    score is above the threshold."""
    if reading.status == "scored" and reading.score is not None and reading.score > threshold:
        return [*reading.reasons, *extra, SCORE]
    return [*reading.reasons, *extra]


def anomaly_record(
    reading: Reading,
    features: Sequence[str],
    threshold: float,
    event: bool = False,
    extra: Sequence[str] = (),
    neighbours: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The anomaly line: sensor, time, kind and reasons, score, feature values, imputed fields,
    the AQI when computed, and what the rules saw (`flags`) when a rule fired. `event`: the
    reading is part of its area's pollution event; `extra`: the area stage's reasons;
    `neighbours`: how far off its neighbours it read (centre, excess, ratio), when it did."""
    reasons = reasons_of(reading, threshold, extra)
    record: dict[str, Any] = {
        "sensor_index": reading.sensor_index,
        "time": iso_time(reading.time),
        "kind": kind_of(reasons, event),
        "reasons": reasons,
        "score": reading.score,
    }
    values = reading.values
    for name in features:
        record[name] = values.get(name)
    record["imputed"] = reading.imputed
    if AQI_FIELD in values:
        record[AQI_FIELD] = values[AQI_FIELD]
        record["aqi_category"] = category(values[AQI_FIELD])
    if reading.reasons:
        record["flags"] = reading.flags
    if neighbours is not None:
        record["neighbours"] = dict(neighbours)
    return record


def kind_counts(records: Sequence[Mapping[str, Any]]) -> Counts:
    """`anomalies` and `kind:<kind>` of a batch of anomaly lines."""
    counts: Counts = {}
    for record in records:
        tag = "kind:" + record["kind"]
        counts[tag] = counts.get(tag, 0) + 1
    if records:
        counts["anomalies"] = len(records)
    return counts


def reading_record(reading: Reading) -> dict[str, Any]:
    """A cleaned reading with all its values, what was imputed, and how it was scored."""
    return {
        "sensor_index": reading.sensor_index,
        "time": iso_time(reading.time),
        "status": reading.status,
        "score": reading.score,
        "values": reading.values,
        "imputed": reading.imputed,
        "missing": reading.missing,
        "flags": reading.flags,
        "reasons": reading.reasons,
        "placeholder": reading.placeholder,
    }


def event_record(event: GapEvent) -> dict[str, Any]:
    """A `gap` or `sensor_offline` event: sensor, last reading before the silence, its length."""
    return {
        "event": event.kind,
        "sensor_index": event.sensor_index,
        "last_seen": iso_time(event.last_seen),
        "time": None if event.time is None else iso_time(event.time),
        "seconds": event.seconds,
        "missed": event.missed,
        "clock": event.clock,
    }


def dead_letter_record(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter: why, where from, and the raw input, safe to write (`core.dead_letters`)."""
    return dead_letters.dead_letter_record(letter.reason, letter.origin, letter.raw)


def is_anomaly(reading: Reading, threshold: float, faults: bool = True) -> bool:
    """Flagged by a quality-control rule (when `faults`), or scored (not warming up) and above
    the threshold."""
    if faults and reading.reasons:
        return True
    return reading.status == "scored" and reading.score is not None and reading.score > threshold


def add_counts(total: Counts, part: Counts) -> Counts:
    """Fold one key's (or one stream's) counts into the run's totals."""
    for tag, n in part.items():
        total[tag] = total.get(tag, 0) + n
    return total


def totals_line(counts: Mapping[str, int]) -> str:
    """A one-line summary of the run totals for the log."""
    return "totals: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
