"""Why a reading is reported: the reason codes of the quality-control rules and the alert kinds.

A reading carries the codes of every rule it broke (`Reading.reasons`); an alert's `kind` follows
from them:

- `sensor_fault`: at least one per-sensor or spatial fault rule fired (the reading is not to be
  trusted as a measurement of the air);
- `pollution_event`: no fault, and the reading's area is in a pollution event (most sensors of the
  area rose together, on both channels);
- `anomaly`: only the detector's score is high, and no rule explains it.

>>> kind_of(["score"]), kind_of(["flatline", "score"]), kind_of(["score"], event=True)
('anomaly', 'sensor_fault', 'pollution_event')
"""

from __future__ import annotations

from collections.abc import Iterable

#: The EPA rule: the two laser counters disagree (`preparation.channels`).
CHANNEL_DISAGREEMENT = "channel_disagreement"
#: One counter reads 0 while the other reads (`preparation.channels`).
CHANNEL_ZERO = "channel_zero"
#: PurpleAir downgraded a channel itself (`channel_flags`, `preparation.channels`).
CHANNEL_DOWNGRADED = "channel_downgraded"
#: Identical PM (or every field) for N readings in a row (`preparation.flatline`).
FLATLINE = "flatline"
#: A value outside its physical range (`preparation.validation`).
OUT_OF_RANGE = "out_of_range"
#: Far from the robust centre of the sensor's neighbours (`preparation.neighbours`).
NEIGHBOUR_DISAGREEMENT = "neighbour_disagreement"
#: The detector's score is above the threshold.
SCORE = "score"
#: Most sensors of the area rose together (`preparation.neighbours`).
POLLUTION_EVENT = "pollution_event"

#: Codes that make a reading a `sensor_fault`.
FAULTS = frozenset(
    {
        CHANNEL_DISAGREEMENT,
        CHANNEL_ZERO,
        CHANNEL_DOWNGRADED,
        FLATLINE,
        OUT_OF_RANGE,
        NEIGHBOUR_DISAGREEMENT,
    }
)
KINDS = ("sensor_fault", "pollution_event", "anomaly")


def kind_of(reasons: Iterable[str], event: bool = False) -> str:
    """The alert kind of a reading with these reason codes (`event`: its area is in an event)."""
    if not FAULTS.isdisjoint(reasons):
        return "sensor_fault"
    return "pollution_event" if event else "anomaly"
