"""The per-sensor reference of the engine: one key's stages chained, reading by reading.

`SensorChain` runs the per-sensor stage classes (`preparation/`, `imputers/`, `detectors/`)
on one key's readings, in the order the engine runs their vectorised forms
(`columns.logic.stages_of`):

    gaps → flatline → validation → channels → impute → epa → nowcast → scaling → incidents
    → detector → counts

The flow never runs it: it is the oracle the engine is held to (`tests/reference_flow.py`
builds every output of the flow from it; `tests/test_columns_equivalence.py` compares). Plain
objects, river style: `process(readings)` takes a batch of the key's readings in order and
returns what the engine's step returns for them (`Reading`s cleaned and scored, `GapEvent`s,
`Incident`s); `counts` are the key's totals (the engine's tags).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from columns.sensor_config import SensorConfig
from core.readings import Reading
from detectors.holdoff import TIME, timed
from preparation.aqi import AQI_FIELD, NOWCAST_FIELD, aqi
from preparation.correction import EPA_FIELD
from preparation.gaps import GapEvent
from preparation.reasons import FLATLINE, OUT_OF_RANGE, kind_of

#: A reading's status and the count it adds to.
STATUS_TAGS = {s: "status:" + s for s in ("warming_up", "scored", "unscored")}


class SensorChain:
    """One key's quality-control rules, imputer, corrections, standardiser and detector, and
    its counts; `process` emits each reading cleaned and scored."""

    def __init__(self, config: SensorConfig):
        self.config = config
        self.imputer = config.new_imputer()
        self.detector = config.new_detector()
        self.counts: dict[str, int] = {}
        self.scaler = config.new_scaler()
        self.gaps = config.new_gaps()
        self.channels, self.flatline, self.nowcast, self.incidents = config.new_qc()
        self.timed = timed(self.detector)  # a hold-off in seconds reads each reading's time

    def process(self, readings: list[Reading]) -> list[Any]:
        """A batch of the key's readings, in order: gap events and placeholders first (in time
        order), then each reading through every stage."""
        if self.gaps is not None:
            readings = self.gaps.on_batch(readings)[0]
        out: list[Any] = []
        for reading in readings:
            if type(reading) is GapEvent:
                out.append(reading)
            else:
                out.extend(self.process_one(reading))
        return out

    def process_one(self, reading: Reading) -> list[Any]:
        """One reading through every stage: the incidents it closes or opens, then the reading
        cleaned and scored."""
        config, counts, out = self.config, self.counts, []
        raw, flags = reading.values, reading.flags
        flags = flags.copy() if flags else {}
        reasons: list[str] = []
        if self.flatline is not None and not reading.placeholder:
            self.flatline.apply(raw, flags, reasons, counts, reading.time)  # values as received
        if config.validator is not None:
            checked = config.validator.apply(raw, flags, counts)
            if checked is not raw:
                reasons.append(OUT_OF_RANGE)
                raw = checked
        if self.channels is not None:
            raw = self.channels.apply(raw, flags, reasons, counts, reading.time)
        filled, imputed, missing = self.imputer.impute_one(raw)
        if config.epa is not None:
            config.epa.apply(filled, imputed, missing, flags, counts)
        if self.nowcast is not None:
            pm = filled.get(EPA_FIELD)
            if pm is None or reading.placeholder or FLATLINE in reasons:
                filled[NOWCAST_FIELD] = filled[AQI_FIELD] = None  # a stuck PM is not fed
            else:
                level = self.nowcast.update(reading.time, pm)
                filled[NOWCAST_FIELD] = level
                filled[AQI_FIELD] = None if level is None else float(aqi(level))
        if self.scaler is not None:
            self.scaler.apply(filled, imputed, counts)
        if self.incidents is not None and not reading.placeholder:
            out.extend(self.incidents.observe(reading.sensor_index, reading.time, reasons))
        if reading.placeholder:  # a missed time step: imputed, never scored nor learnt
            value, status, tag = None, "unscored", "placeholders"
        else:
            row = {**filled, TIME: reading.time} if self.timed else filled
            value, status = self.detector.score_then_learn(row)
            tag = "readings"
        self._add(tag)
        self._add(STATUS_TAGS[status])
        if config.count_alerts and (
            (reasons and config.report_faults)
            or (status == "scored" and value > config.threshold)
        ):
            self._add("anomalies")
            self._add("kind:" + kind_of(reasons))
        for name in imputed:
            self._add("imputed:" + name)
        for name in missing:
            self._add("missing:" + name)
        out.append(
            Reading(
                reading.sensor_index,
                reading.time,
                filled,
                reading.text,
                imputed,
                missing,
                value,
                status,
                flags,
                reading.placeholder,
                reasons,
            )
        )
        return out

    def _add(self, tag: str) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def notify_at(self) -> datetime | None:
        """When the system clock may next say the key fell silent (gap events by the clock)."""
        return None if self.gaps is None else self.gaps.notify_at()

    def on_notify(self) -> list[GapEvent]:
        """A `sensor_offline` event when the system clock says the key fell silent."""
        return [] if self.gaps is None else list(self.gaps.on_notify()[0])
