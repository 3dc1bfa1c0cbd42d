"""Prometheus counters of the preparation stages, counted a batch at a time in the flow.

Like `sinks.metrics`, the counters are module-level (the Prometheus registry requires it) and
cumulative per process; bytewax serves them at `/metrics` when its API is enabled. They mirror
the run's totals: `invalid:<field>`, `epa:*`, `placeholders`, `events:*` and `sampled`, and the
quality-control reason codes of the readings (`air_quality_qc_flags{reason}`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from preparation.gaps import GapEvent

INVALID = Counter(
    "air_quality_invalid_values", "Values outside their physical range, removed", ["field"]
)
EPA = Counter("air_quality_epa_corrections", "pm2.5_epa derived, or not", ["outcome"])
PLACEHOLDERS = Counter("air_quality_placeholders", "Placeholder readings for missed time steps")
EVENTS = Counter("air_quality_gap_events", "Gap and sensor_offline events", ["event"])
SAMPLED = Counter("air_quality_sampled", "Readings written to the reservoir sample")
QC = Counter("air_quality_qc_flags", "Readings a quality-control rule flagged", ["reason"])


def count_preparation(
    placeholders: int,
    invalid: Mapping[str, int],
    reasons: Mapping[str, int],
    epa: Mapping[str, int],
) -> None:
    """Count placeholders, `{field: n}` invalid values, `{code: n}` quality-control reasons and
    `{"applied" | "not_applied": n}` EPA outcomes (the engine's batches, counted whole)."""
    if placeholders:
        PLACEHOLDERS.inc(placeholders)
    for name, n in invalid.items():
        INVALID.labels(name).inc(n)
    for code, n in reasons.items():
        QC.labels(code).inc(n)
    for outcome, n in epa.items():
        if n:
            EPA.labels(outcome).inc(n)


def count_events(batch: list[GapEvent]) -> list[GapEvent]:
    """Count a batch of gap and offline events by kind."""
    for event in batch:
        EVENTS.labels(event.kind).inc()
    return batch


def count_sampled(batch: list[Any]) -> list[Any]:
    """Count a batch of sampled readings."""
    SAMPLED.inc(len(batch))
    return batch
