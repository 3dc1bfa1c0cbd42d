"""The records every layer passes on: a sensor's `Reading`, and the `DeadLetter` that stands for
input that could not become one (its raw form made writable by `core.dead_letters`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Reading:
    """One sensor's row of one poll, with numeric values (None = missing)."""

    sensor_index: int
    time: int  # event time, epoch seconds (last_seen, else the payload's data_time_stamp)
    values: dict[str, float | None]
    text: dict[str, str | None] = field(default_factory=dict)
    imputed: list[str] = field(default_factory=list)  # fields filled by an imputer
    missing: list[str] = field(default_factory=list)  # fields still missing after imputation
    score: float | None = None
    status: str = "new"  # new | warming_up | scored | unscored
    flags: dict[str, str] = field(default_factory=dict)  # field -> why it was removed/not derived
    placeholder: bool = False  # stands for a missed time step (no row was received)
    reasons: list[str] = field(default_factory=list)  # quality-control codes (preparation.reasons)


@dataclass(slots=True)
class DeadLetter:
    """Input that could not become a reading: the reason and the raw row, line (bytes) or payload.

    `raw` is kept as it came; `core.dead_letters.json_safe` makes it writable when it is written.
    """

    reason: str
    raw: Any
    origin: str = ""  # where it came from, e.g. "polls.jsonl:12"


Item = Reading | DeadLetter
