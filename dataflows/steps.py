"""The per-key steps of the air-quality flow: `stateful_map` mappers and output records.

A mapper gets `(state or None, reading)` and returns `(state, reading)`; state is built from the
step's configuration on a key's first reading, lives only in Bytewax's keyed state, and pickles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from detectors.hst import HalfSpaceTreesDetector
from imputers.window import WindowImputer
from sources.payload import DeadLetter, Reading


class ImputeStep:
    """Fill a reading's missing fields from its key's window of observed values."""

    def __init__(self, fields: Sequence[str], window: int = 10, strategy: str = "mean"):
        self.fields = tuple(fields)
        self.window = window
        self.strategy = strategy
        WindowImputer(self.fields, window, strategy)  # fail at build time on a bad config

    def __call__(
        self, imputer: WindowImputer | None, reading: Reading
    ) -> tuple[WindowImputer, Reading]:
        if imputer is None:
            imputer = WindowImputer(self.fields, self.window, self.strategy)
        values, imputed, missing = imputer.impute_one(reading.values)
        return imputer, replace(reading, values=values, imputed=imputed, missing=missing)


class ScoreStep:
    """Score a reading with its key's HalfSpaceTrees, then let the detector learn it."""

    def __init__(self, **detector_options: Any):
        self.detector_options = detector_options
        HalfSpaceTreesDetector(**detector_options)  # fail at build time on a bad config

    def __call__(
        self, detector: HalfSpaceTreesDetector | None, reading: Reading
    ) -> tuple[HalfSpaceTreesDetector, Reading]:
        if detector is None:
            detector = HalfSpaceTreesDetector(**self.detector_options)
        score, status = detector.score_then_learn(reading.values)
        return detector, replace(reading, score=score, status=status)


def iso_time(epoch_seconds: int) -> str:
    """ISO 8601 UTC, second precision: `2026-04-01T00:02:00Z`."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def anomaly_record(reading: Reading, features: Sequence[str]) -> dict[str, Any]:
    """The anomaly line: sensor, time, score, feature values, imputed fields."""
    record: dict[str, Any] = {
        "sensor_index": reading.sensor_index,
        "time": iso_time(reading.time),
        "score": reading.score,
    }
    for name in features:
        record[name] = reading.values.get(name)
    record["imputed"] = reading.imputed
    return record


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
    }


def dead_letter_record(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter: why, where from, and the raw input."""
    return {"reason": letter.reason, "origin": letter.origin, "raw": letter.raw}


def count_tags(reading: Reading, threshold: float) -> list[str]:
    """The totals a reading adds to: readings, status, anomalies, imputed values per field."""
    tags = ["readings", f"status:{reading.status}"]
    if is_anomaly(reading, threshold):
        tags.append("anomalies")
    tags.extend(f"imputed:{name}" for name in reading.imputed)
    tags.extend(f"missing:{name}" for name in reading.missing)
    return tags


def is_anomaly(reading: Reading, threshold: float) -> bool:
    """Scored (not warming up) and above the threshold."""
    return reading.status == "scored" and reading.score is not None and reading.score > threshold


def totals_line(counts: Mapping[str, int]) -> str:
    """A one-line summary of the run totals for the log."""
    return "totals: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
