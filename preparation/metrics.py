"""Prometheus counters of the preparation stages, counted a batch at a time in the flow.

Like `sinks.metrics`, the counters are module-level (the Prometheus registry requires it) and
cumulative per process; bytewax serves them at `/metrics` when its API is enabled. They mirror
the run's totals: `invalid:<field>`, `epa:*`, `placeholders`, `events:*` and `sampled`, and the
quality-control reason codes of the readings (`air_quality_qc_flags{reason}`).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping
from operator import attrgetter, methodcaller
from typing import Any

from prometheus_client import Counter

from core.readings import Reading
from preparation.channels import FLAG as CHANNELS_FLAG
from preparation.correction import EPA_FIELD
from preparation.flatline import FLAG as FLATLINE_FLAG
from preparation.gaps import GapEvent

_PLACEHOLDER, _FLAGS, _VALUES = attrgetter("placeholder"), attrgetter("flags"), attrgetter("values")
_REASONS = attrgetter("reasons")
#: Flags that are not a removed field's.
_NOT_FIELDS = frozenset({EPA_FIELD, CHANNELS_FLAG, FLATLINE_FLAG})
_ABSENT = object()  # a reading without the EPA field (the correction is off)
_EPA_VALUE = methodcaller("get", EPA_FIELD, _ABSENT)
INVALID = Counter(
    "air_quality_invalid_values", "Values outside their physical range, removed", ["field"]
)
EPA = Counter("air_quality_epa_corrections", "pm2.5_epa derived, or not", ["outcome"])
PLACEHOLDERS = Counter("air_quality_placeholders", "Placeholder readings for missed time steps")
EVENTS = Counter("air_quality_gap_events", "Gap and sensor_offline events", ["event"])
SAMPLED = Counter("air_quality_sampled", "Readings written to the reservoir sample")
QC = Counter("air_quality_qc_flags", "Readings a quality-control rule flagged", ["reason"])


def count_readings(batch: list[Reading]) -> list[Reading]:
    """Count a batch of cleaned readings' invalid values, EPA outcomes, placeholders and
    quality-control reasons.

    >>> before = PLACEHOLDERS._value.get()
    >>> _ = count_readings([Reading(1, 0, {}, placeholder=True)])
    >>> PLACEHOLDERS._value.get() - before
    1.0
    """
    placeholders = sum(map(_PLACEHOLDER, batch))  # C-level passes; flags are rare
    invalid = Tally(name for f in map(_FLAGS, batch) if f for name in f if name not in _NOT_FIELDS)
    reasons = Tally(code for r in map(_REASONS, batch) if r for code in r)
    derived = list(map(_EPA_VALUE, map(_VALUES, batch)))  # the value, None, or _ABSENT
    not_applied = derived.count(None)
    applied = len(derived) - derived.count(_ABSENT) - not_applied
    epa = Tally({"applied": applied, "not_applied": not_applied})
    count_preparation(placeholders, invalid, reasons, epa)
    return batch


def count_preparation(
    placeholders: int,
    invalid: Mapping[str, int],
    reasons: Mapping[str, int],
    epa: Mapping[str, int],
) -> None:
    """Count placeholders, `{field: n}` invalid values, `{code: n}` quality-control reasons and
    `{"applied" | "not_applied": n}` EPA outcomes (the column path's batches, counted whole)."""
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
