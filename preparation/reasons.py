"""Why a reading is reported: the reason codes of the quality-control rules and the alert kinds.

A reading carries the codes of every rule it broke (`Reading.reasons`); an alert's `kind` follows
from them:

- `sensor_fault`: evidence inside the sensor: its channels disagree, a channel is dead or
  downgraded, it is stuck (flatline), or a value is out of range. The reading is not to be
  trusted as a measurement of the air;
- `local_source`: no fault, and the sensor reads well above its neighbours on agreeing channels
  (`above_neighbours`): real pollution near that sensor (a wood stove, a grill, a road);
- `pollution_event`: no fault, and the reading's area is in a pollution event (most sensors of the
  area rose together, on both channels);
- `anomaly`: nothing above: the detector's score is high, or the sensor reads well below its
  neighbours on agreeing channels (`below_neighbours`), and no rule says why.

A fifth kind, `calibration_drift` (a sensor off its neighbours in proportion for days), is a
daily finding of the area stage: an incident, never a reading's alert.

>>> kind_of(["score"]), kind_of(["flatline", "score"]), kind_of(["score"], event=True)
('anomaly', 'sensor_fault', 'pollution_event')
>>> kind_of(["above_neighbours", "score"]), kind_of(["below_neighbours"])
('local_source', 'anomaly')
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
#: Well above the robust centre of the sensor's neighbours (`preparation.neighbours`).
ABOVE_NEIGHBOURS = "above_neighbours"
#: Well below it.
BELOW_NEIGHBOURS = "below_neighbours"
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
    }
)
LOCAL_SOURCE = "local_source"
CALIBRATION_DRIFT = "calibration_drift"
KINDS = ("sensor_fault", LOCAL_SOURCE, "pollution_event", "anomaly")
#: Codes of the neighbour comparison (`preparation.neighbours`); `neighbour_disagreement` was the
#: code of its earlier, two-sided rule (a `sensor_fault`), kept for reading old outputs.
NEIGHBOUR_REASONS = frozenset({ABOVE_NEIGHBOURS, BELOW_NEIGHBOURS, "neighbour_disagreement"})


def kind_of(reasons: Iterable[str], event: bool = False) -> str:
    """The alert kind of a reading with these reason codes (`event`: its area is in an event)."""
    reasons = tuple(reasons)
    if not FAULTS.isdisjoint(reasons):
        return "sensor_fault"
    if ABOVE_NEIGHBOURS in reasons:
        return LOCAL_SOURCE
    return "pollution_event" if event else "anomaly"
