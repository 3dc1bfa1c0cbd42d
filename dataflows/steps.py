"""The per-sensor step of the air-quality flow and its output records.

`SensorLogic` is the state of one key inside Bytewax's `stateful_batch`: it takes the key's
readings a batch at a time, in order; makes missed time steps visible (gap events or
placeholders, optional), then for each reading runs the quality-control rules (flatline on the
values as received, physical ranges, channel agreement; each optional, their codes in
`Reading.reasons`), imputes, adds the EPA correction and the NowCast AQI, standardises
(optional), scores, and counts what happened. One step per key keeps the
engine's per-key overhead to one exchange and one call per batch. Its state (gap tracker,
imputer, detector, counts, standardiser) is small, is copied cheaply for Bytewax's snapshots, and
pickles for recovery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bytewax.operators import StatefulBatchLogic

from columns.sensor_config import SensorConfig
from core import dead_letters
from core.readings import DeadLetter, Reading
from detectors.holdoff import TIME, timed
from preparation.aqi import AQI_FIELD, NOWCAST_FIELD, aqi, category
from preparation.correction import EPA_FIELD
from preparation.gaps import GapEvent
from preparation.reasons import FLATLINE, OUT_OF_RANGE, SCORE, kind_of
from sources.times import iso_time

Counts = dict[str, int]
#: A reading's status and the count it adds to.
STATUS_TAGS = {s: "status:" + s for s in ("warming_up", "scored", "unscored")}


class SensorLogic(StatefulBatchLogic):
    """One key's imputer, detector and counts; emits each reading cleaned and scored, and its
    counts once the input ends."""

    def __init__(self, config: SensorConfig, resume: tuple | None = None):
        self.config = config
        if resume is None:
            self.imputer, self.detector, self.counts, self.scaler = (
                config.new_imputer(),
                config.new_detector(),
                {},
                config.new_scaler(),
            )
            self.gaps = config.new_gaps()
            self.qc = config.new_qc()
        else:
            self.imputer, self.detector, self.counts, self.scaler, tracker = resume[:5]
            self.gaps = config.new_gaps(tracker)
            # snapshots from before the quality-control rules have no QC state: start it afresh
            self.qc = resume[5] if len(resume) > 5 else config.new_qc()
            if len(self.qc) < 4:  # snapshots from before incidents
                self.qc = (*self.qc, config.new_qc()[3])
        self._hot = (
            self.imputer.impute_one,
            self.detector.score_then_learn,
            self.counts,
            config.threshold,
            config.validator,
            config.epa,
            self.scaler,
            *self.qc,
            config.report_faults,
            config.count_alerts,
            timed(self.detector),
        )

    def on_batch(self, values: list[Reading]) -> tuple[list[Any], bool]:
        if self.gaps is not None:  # gap events and placeholders come first, in time order
            values = self.gaps.on_batch(values)[0]
        out: list[Any] = []
        append = out.append
        # with thousands of sensors a batch holds about one reading: keep the set-up to one load
        (impute, score, counts, threshold, validator, epa, scaler, channels, flatline, nowcast,
         incidents, report_faults, count_alerts, timed_hold) = self._hot  # fmt: skip
        for reading in values:
            if type(reading) is GapEvent:
                append(reading)
                continue
            raw, flags = reading.values, reading.flags
            flags = flags.copy() if flags else {}
            reasons: list[str] = []
            if flatline is not None and not reading.placeholder:
                flatline.apply(raw, flags, reasons, counts, reading.time)  # values as received
            if validator is not None:
                checked = validator.apply(raw, flags, counts)
                if checked is not raw:
                    reasons.append(OUT_OF_RANGE)
                    raw = checked
            if channels is not None:
                raw = channels.apply(raw, flags, reasons, counts, reading.time)
            filled, imputed, missing = impute(raw)
            if epa is not None:
                epa.apply(filled, imputed, missing, flags, counts)
            if nowcast is not None:
                pm = filled.get(EPA_FIELD)
                if pm is None or reading.placeholder or FLATLINE in reasons:
                    filled[NOWCAST_FIELD] = filled[AQI_FIELD] = None  # a stuck PM is not fed
                else:
                    level = nowcast.update(reading.time, pm)
                    filled[NOWCAST_FIELD] = level
                    filled[AQI_FIELD] = None if level is None else float(aqi(level))
            if scaler is not None:
                scaler.apply(filled, imputed, counts)
            if incidents is not None and not reading.placeholder:
                out.extend(incidents.observe(reading.sensor_index, reading.time, reasons))
            if reading.placeholder:  # a missed time step: imputed, never scored nor learnt
                value, status, tag = None, "unscored", "placeholders"
            else:
                # a hold-off in seconds reads the reading's time (the detector reads only its
                # feature and the time)
                value, status = score({**filled, TIME: reading.time} if timed_hold else filled)
                tag = "readings"
            counts[tag] = counts.get(tag, 0) + 1
            tag = STATUS_TAGS[status]
            counts[tag] = counts.get(tag, 0) + 1
            if count_alerts and (
                (reasons and report_faults) or (status == "scored" and value > threshold)
            ):
                counts["anomalies"] = counts.get("anomalies", 0) + 1
                tag = "kind:" + kind_of(reasons)
                counts[tag] = counts.get(tag, 0) + 1
            for name in imputed:
                tag = "imputed:" + name
                counts[tag] = counts.get(tag, 0) + 1
            for name in missing:
                tag = "missing:" + name
                counts[tag] = counts.get(tag, 0) + 1
            append(
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
        return out, StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Any], bool]:
        return [dict(self.counts)], StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return None if self.gaps is None else self.gaps.notify_at()

    def on_notify(self) -> tuple[list[Any], bool]:
        """A `sensor_offline` event when the system clock says the sensor fell silent."""
        if self.gaps is None:
            return [], StatefulBatchLogic.RETAIN
        return list(self.gaps.on_notify()[0]), StatefulBatchLogic.RETAIN

    def snapshot(self) -> tuple:
        scaler = None if self.scaler is None else self.scaler.copy()
        tracker = None if self.gaps is None else self.gaps.snapshot()
        qc = tuple(None if rule is None else rule.copy() for rule in self.qc)
        return (self.imputer.copy(), self.detector.copy(), dict(self.counts), scaler, tracker, qc)


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
