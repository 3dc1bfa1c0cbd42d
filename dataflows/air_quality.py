"""The air-quality flow: PurpleAir payloads → column batches per shard → clean, impute, score
→ anomalies.

    python -m bytewax.run dataflows.air_quality:flow                 # the shipped data
    python -m bytewax.run "dataflows.air_quality:build_flow('PATH_OR_URL', key='global')"
    python -m bytewax.run "dataflows.air_quality:build_flow(config='flow.toml')"   # a deployment

Options are the typed configuration of `config/` (`python -m config` prints them all);
`build_flow` resolves a file and its keywords into it, and `dataflow` wires the groups around the
one engine: each shard's sensors cleaned and scored a batch at a time (`columns.logic`).

Anomalies go to stdout (or `output=PATH`) as JSON lines, dead letters to stderr (or
`dead_letters=PATH`), every cleaned reading to `readings=PATH` when asked, totals to the log.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from columns.csv_source import CsvColumnSource
from columns.group import ReadingGrouper
from columns.logic import BatchTally, ShardLogic
from columns.sensor_config import SensorConfig
from columns.source import ColumnFileSource
from config import (
    DEFAULT_IMPUTE_FIELDS,
    GC_THRESHOLD,
    KEY_MODES,
    CleaningConfig,
    ConfigError,
    DetectionConfig,
    FlowConfig,
    GapsConfig,
    OutputsConfig,
    SampleConfig,
    resolve,
)
from core.logs import ensure_stderr_handler
from core.readings import DeadLetter, Reading
from dataflows.areas import area_stage
from dataflows.health import health_url, write_health
from dataflows.steps import (
    Counts,
    add_counts,
    anomaly_record,
    dead_letter_record,
    event_record,
    is_anomaly,
    kind_counts,
    reading_record,
    totals_line,
)
from preparation.areas import Placed
from preparation.correction import EpaCorrection
from preparation.gaps import GapEvent, GapLogic, GapTracker
from preparation.incidents import Incident, incident_record
from preparation.metrics import count_events, count_preparation, count_sampled
from preparation.registry import Registry
from preparation.sampling import SampleLogic
from preparation.validation import RangeValidator
from sinks.log import LogSink
from sinks.metrics import Progress
from sources.documents import is_url
from sources.extent import estimate_rows
from sources.poller import DEFAULT_FIELDS as POLLED_FIELDS
from sources.purpleair import PurpleAirSource

__all__ = ["DEFAULT_IMPUTE_FIELDS", "GC_THRESHOLD", "KEY_MODES", "build_flow", "dataflow", "flow"]

#: The recorded poll sequence that the project's simulator generates (see data/README.md).
SHIPPED_DATA = Path(__file__).resolve().parent.parent / "data" / "polls.jsonl"


def _source(config: FlowConfig) -> Source:
    """A file: column batches per sensor shard (`ColumnFileSource` of polls, `CsvColumnSource`
    of a `.csv` of readings) that resume from their offsets after a crash (one shard with every
    row in global mode); `"purpleair"`: the live API poller (its options, asking for the fields
    the flow needs); an http(s) URL: fetched once; a Bytewax source: itself. The last three
    give readings, grouped into column batches by the flow. A file that is not there is a
    configuration error, found before the flow starts. Each reads only rows dated within
    `[source.times]` (a Bytewax source given from Python is taken as it is)."""
    source, run = config.source.path or SHIPPED_DATA, config.run
    window = config.source.times.window()
    if isinstance(source, Source):
        return source
    if source == "purpleair":
        imputation, detection = config.cleaning.imputation, config.detection
        return config.source.purpleair.poller(
            (*POLLED_FIELDS, *imputation.fields, *detection.features), window
        )
    if is_url(str(source)):
        limits = config.source.limits.http_limits()
        return PurpleAirSource(
            str(source), split=False, batch_size=run.batch_size, window=window, limits=limits
        )
    if not Path(source).is_file():
        raise ConfigError(f"[source] path: no such file: {source}")
    shards = run.shards if run.key == "sensor" else 1
    kind = CsvColumnSource if Path(source).suffix.lower() == ".csv" else ColumnFileSource
    return kind(source, shards=shards, batch_size=run.batch_size, window=window)


def _count_totals(per_key: Stream[Counts], dead: Stream[Any]) -> Stream[Counts]:
    """At the end of a finite run, one dict of totals: readings, statuses, anomalies, imputed
    values per field, dead letters (so rows in = readings + dead_letters can be checked)."""
    dead_counts = op.count_final("count_dead", dead, lambda _d: "dead_letters")
    parts = op.merge(
        "count_parts", per_key, op.map("as_dicts", dead_counts, lambda kv: {kv[0]: kv[1]})
    )
    summary = op.fold_final(
        "fold_totals", op.key_on("one_key", parts, lambda _c: "totals"), dict, add_counts
    )
    return op.key_rm("unkey_totals", summary)


def _expected_rows(config: FlowConfig, processes: int = 1) -> int | None:
    """About how many rows a file source holds (for the progress's time left), each of
    `processes` counting its own share; None for a live source, a URL, or a source object."""
    source = config.source.path or SHIPPED_DATA
    if isinstance(source, Source) or source == "purpleair" or is_url(str(source)):
        return None
    rows = estimate_rows(source)
    return None if rows is None else max(rows // processes, 1)


def tune_gc(threshold: int = GC_THRESHOLD) -> None:
    """Run Python's cycle collector less often, and never again over what exists now.

    The flow's objects are freed by reference counting (readings hold no cycles), but with the
    default threshold (700 new containers) the collector runs several times per batch of 1,000
    readings and keeps promoting live batches, so full collections over every sensor's state come
    often: about a third of the run time with thousands of sensors. Raising the threshold and
    freezing the objects of start-up (modules, the flow) cuts that; memory is unchanged, since
    nothing the flow allocates waits for the collector. Process-wide, as the collector is.
    """
    gc.freeze()
    gc.set_threshold(threshold, *gc.get_threshold()[1:])


def unkeyed(batch: list[tuple[str, Any]], kind: type) -> list[Any]:
    """The values of one type from a batch of `(key, value)`."""
    return [value for _key, value in batch if type(value) is kind]


def _gap_logic(gaps: GapsConfig) -> Callable[[GapTracker | None], GapLogic] | None:
    """How each sensor's gap tracking is built (from its resume state), or None when off."""
    if gaps.mode is None:
        return None
    mode, interval, offline_after, clock = gaps.mode, gaps.interval, gaps.offline_after, gaps.clock
    clock_mode, now = (clock, None) if isinstance(clock, str) else ("system", clock)
    max_fill = gaps.max_fill

    def build(resume: GapTracker | None) -> GapLogic:
        tracker = resume or GapTracker(mode, interval, offline_after, max_fill)
        return GapLogic(tracker, clock_mode) if now is None else GapLogic(tracker, clock_mode, now)

    return build


def sensor_config(
    cleaning: CleaningConfig,
    detection: DetectionConfig,
    key: str,
    spatial: bool = False,
    incidents: int | None = None,
) -> SensorConfig:
    """What each key's step is built from: the cleaning stages and the detector (gap tracking
    only per sensor)."""
    validation, epa, scaling = cleaning.validation, cleaning.epa, cleaning.scaling
    imputation, channels, per_sensor = cleaning.imputation, cleaning.channels, key == "sensor"
    return SensorConfig(
        imputation.fields,
        imputation.window,
        imputation.strategy,
        detection.alarm_threshold(),
        detection.detector_factory(),
        validator=RangeValidator(validation.ranges) if validation.enabled else None,
        epa=EpaCorrection(epa.max, extended=epa.extended) if epa.enabled else None,
        scale_fields=scaling.fields,
        scale_window=scaling.window,
        gaps=_gap_logic(cleaning.gaps) if per_sensor else None,
        # a global key mixes sensors: no last trusted channel value, no flatline, no NowCast
        channels=channels.rule(history=per_sensor) if channels.enabled else None,
        flatline=cleaning.flatline.readings if per_sensor else None,
        flatline_seconds=cleaning.flatline.seconds,
        nowcast=epa.enabled and epa.aqi and per_sensor,
        report_faults=detection.faults,
        count_alerts=not spatial,  # with the area stage, alerts are decided (and counted) there
        incidents=incidents if per_sensor else None,
    )


def _event_counts(event: GapEvent) -> Counts:
    if event.kind == "gap":
        return {"events:gap": 1, "gap_missed_steps": event.missed}
    return {"events:" + event.kind: 1}


def _gap_events(per_key: Stream[tuple[str, Any]], sink: Sink) -> Stream[Counts]:
    """Gap and offline events written out; returns their counts for the totals."""
    events = op.flat_map_batch(
        "take_gap_events", per_key, lambda b: count_events(unkeyed(b, GapEvent))
    )
    op.output("events_out", op.map("event_json", events, event_record), sink)
    return op.map("event_counts", events, _event_counts)


def _take_readings(
    cleaning: CleaningConfig, key: str, counter: Progress
) -> Callable[[list], list[Reading]]:
    """The readings that leave the shard step, and its counts: the step says what each batch
    did in a `BatchTally` (most of its readings never become objects), counted for the progress
    line and the preparation stages' Prometheus counters (when any runs)."""
    fill = cleaning.gaps.mode == "fill" and key == "sensor"
    count_stages = (
        cleaning.validation.enabled
        or cleaning.epa.enabled
        or cleaning.channels.enabled
        or cleaning.flatline.readings is not None
        or fill
    )

    def take_readings(batch: list[tuple[str, Any]]) -> list[Reading]:
        for tally in unkeyed(batch, BatchTally):
            counter.received(tally.received, tally.imputed)
            if count_stages:
                count_preparation(tally.placeholders, tally.invalid, tally.reasons, tally.epa)
        return unkeyed(batch, Reading)

    return take_readings


def _column_step(
    config: FlowConfig,
    flow: Dataflow,
    source: Source,
    per_sensor: SensorConfig,
    emit_all: bool,
    spatial: bool,
) -> tuple[Stream[tuple[str, Any]], Stream[DeadLetter]]:
    """Column batches per shard (a source of readings grouped into them by `columns.group`),
    each shard cleaned and scored by a `columns.logic.ShardLogic`; returns its output stream and
    the dead letters."""
    run = config.run
    grouped = op.input("read_columns", flow, source)
    if not isinstance(source, ColumnFileSource):
        grouper = ReadingGrouper(run.shards if run.key == "sensor" else None)
        grouped = op.flat_map_batch("group_columns", grouped, grouper.group)
    keyed = op.flat_map_batch(
        "key_columns", grouped, lambda batch: [item for item in batch if type(item) is tuple]
    )
    rejected = op.flat_map_batch(
        "take_dead_letters", grouped, lambda batch: [i for i in batch if type(i) is not tuple]
    )
    per_key = op.stateful_batch(
        "clean_and_score_columns",
        keyed,
        lambda resume: ShardLogic(
            per_sensor,
            resume,
            per_sensor=run.key == "sensor",
            emit_all=emit_all,
            features=config.detection.features,
            areas=config.spatial.field if spatial else None,
        ),
    )
    return per_key, rejected


def _alerts(
    scored: Stream[Reading],
    detection: DetectionConfig,
    outputs: OutputsConfig,
    counter: Progress,
    placed: Stream[Placed] | None = None,
) -> Stream[Counts] | None:
    """Readings above the threshold, and those a rule flagged (unless `detection.faults` is
    off), written as anomalies with their kind and reasons (and to the webhook). With the area
    stage, from its placed readings (spatial reasons, events), and their counts are returned."""
    threshold, features = detection.alarm_threshold(), detection.features
    faults = detection.faults

    def alerts_of(batch: list[Reading]) -> list[dict[str, Any]]:
        found = [
            anomaly_record(r, features, threshold)
            for r in batch
            if is_anomaly(r, threshold, faults)
        ]
        return counter.anomalies(found)

    def placed_alerts(batch: list[Placed]) -> list[dict[str, Any]]:
        found = [
            anomaly_record(p.reading, features, threshold, p.event, p.reasons, p.neighbours)
            for p in batch
            if (faults and p.reasons) or is_anomaly(p.reading, threshold, faults)
        ]
        return counter.anomalies(found)

    if placed is None:
        alerts = op.flat_map_batch("anomalies", scored, alerts_of)
    else:
        alerts = op.flat_map_batch("anomalies", placed, placed_alerts)
    op.output("anomalies_out", alerts, outputs.sink("anomalies"))
    if outputs.webhook.url is not None:
        op.output("webhook_out", alerts, outputs.webhook.sink())
    if placed is None:
        return None
    return op.flat_map_batch("alert_counts", alerts, lambda b: [kind_counts(b)] if b else [])


def _dead_letters(rejected: Stream[DeadLetter], sink: Sink, counter: Progress) -> None:
    dead = op.flat_map_batch("count_dead_letters", rejected, counter.dead_letters)
    op.output(
        "dead_letters_out",
        op.map("dead_letter_json", dead, dead_letter_record),
        sink,
    )


def _sample(scored: Stream[Reading], sample: SampleConfig) -> Stream[Counts]:
    """A seeded reservoir of `size` received readings per sensor (or overall), written at the
    end of a finite run; returns its count (`sampled`) for the totals."""
    size, by, seed = sample.size, sample.by, sample.seed
    received = op.filter("sample_received", scored, lambda r: not r.placeholder)
    if by == "sensor":
        keyed = op.key_on("sample_key", received, lambda r: str(r.sensor_index))
    else:
        keyed = op.key_on("sample_key", received, lambda _r: "global")
    picked = op.key_rm(
        "unkey_sample",
        op.stateful_batch("sample", keyed, lambda resume: SampleLogic(size, seed, by, resume)),
    )
    picked = op.flat_map_batch("count_sampled", picked, count_sampled)
    op.output("sample_out", op.map("sample_json", picked, reading_record), sample.sink())
    return op.map("sample_counts", picked, lambda _r: {"sampled": 1})


def _totals(
    counts: list[Stream[Counts]],
    rejected: Stream[Any],
    target: Sink | None,
    features: tuple[str, ...] = (),
) -> None:
    """The run's totals, to the log or to `target`, at the end of a finite run; a detector
    feature that no reading carried is said there once (`absent_features`)."""
    merged = counts[0] if len(counts) == 1 else op.merge("preparation_counts", *counts)
    totals = op.map("absent_features", _count_totals(merged, rejected),
                    lambda t: absent_features(t, features))  # fmt: skip
    if target is None:
        op.output("totals_log", op.map("totals_line", totals, totals_line), LogSink())
    else:
        op.output("totals_out", totals, target)


def absent_features(totals: Counts, features: tuple[str, ...]) -> Counts:
    """The totals, with `absent:<feature>` (the readings) for each detector feature that no
    reading carried: one warning line says so, since nothing was scored on it.

    >>> absent_features({"readings": 5, "status:unscored": 5}, ("pm1.0_cf_1",))["absent:pm1.0_cf_1"]
    5
    """
    readings = totals.get("readings", 0)
    scored = totals.get("status:scored", 0) + totals.get("status:warming_up", 0)
    if not readings or not features:
        return totals
    absent = [f for f in features if totals.get("missing:" + f) == readings]
    if not scored and not absent:  # not imputed, so not counted: no reading was scored at all
        absent = list(features)
    if absent:
        totals = {**totals, **{"absent:" + f: readings for f in absent}}
        logger = logging.getLogger("air_quality")
        ensure_stderr_handler(logger)
        logger.warning(
            "detector feature %s in none of the %d readings: nothing was scored on it; set "
            "[detection] features to a field of the data (e.g. pm2.5_cf_1)",
            ", ".join(absent), readings,
        )  # fmt: skip
    return totals


def build_flow(
    source: str | Path | Source | None = None,
    *,
    config: None | str | Path | Mapping[str, Any] | FlowConfig = None,
    **options: Any,
) -> Dataflow:
    """Build the air-quality dataflow from a configuration and keyword options over it.

    `config`: a TOML file (one table per group: `[source]`, `[cleaning.imputation]`, ...,
    `[detection]`, `[outputs]`, `[run]`), the same tree as a mapping, or a `FlowConfig`.
    `options`: `build_flow`'s keywords (`threshold=0.8`, `output="anomalies.jsonl"`, ...), each
    overriding one option of the file; `source` is the first of them. Every option, its table,
    keyword and default: `python -m config`, and the README. A bad option is a `ConfigError`,
    raised here, before any data is read.
    """
    if source is not None:
        options["source"] = source
    return dataflow(resolve(config, **options))


def _registry(config: FlowConfig, source: Source) -> Registry | None:
    """A file's sensors by area, for the area stage (a source that knows them: its
    `registry`, as the column file sources do); None for a live source or a URL."""
    known = getattr(source, "registry", None)
    spatial = config.spatial
    return None if known is None else known(spatial.area_km, spatial.radius_km)


def dataflow(config: FlowConfig, *, processes: int = 1) -> Dataflow:
    """The flow: read → column batches per shard, dead letters apart → clean and score per shard
    → outputs.
    `processes`: how many run it (each one's progress counts its share of a file)."""
    run, outputs = config.run, config.outputs
    spatial = config.spatial.enabled and run.key == "sensor"  # neighbours need time series
    clear = outputs.incident_clear if outputs.incidents is not None else None
    per_sensor = sensor_config(config.cleaning, config.detection, run.key, spatial, clear)
    counter = Progress(run.progress, total=_expected_rows(config, processes))
    if run.gc_threshold is not None:
        tune_gc(run.gc_threshold)
    flow = Dataflow("air_quality")
    emit_all = outputs.readings is not None or bool(outputs.sample.size)
    source = _source(config)
    per_key, rejected = _column_step(config, flow, source, per_sensor, emit_all, spatial)
    take_readings = _take_readings(config.cleaning, run.key, counter)
    extra_counts = []
    if per_sensor.gaps is not None:
        extra_counts.append(_gap_events(per_key, outputs.sink("events")))
    scored = op.flat_map_batch("take_readings", per_key, take_readings)
    placed = None
    if spatial:
        offline_after = config.cleaning.gaps.offline_after
        registry = _registry(config, source)
        placed, area_incidents, area_counts = area_stage(
            per_key, config.spatial, per_sensor, offline_after, registry, clear,
            outputs.incident_clear,
        )  # fmt: skip
        extra_counts.append(area_counts)
    if clear is not None:
        found = op.flat_map_batch("take_incidents", per_key, lambda b: unkeyed(b, Incident))
        if placed is not None:
            found = op.merge("all_incidents", found, area_incidents)
        records = op.map("incident_json", found, incident_record)
        op.output("incidents_out", records, outputs.sink("incidents"))
    alert_counts = _alerts(scored, config.detection, outputs, counter, placed)
    if alert_counts is not None:
        extra_counts.append(alert_counts)
    _dead_letters(rejected, outputs.sink("dead_letters"), counter)
    health_db = health_url(outputs)
    if health_db is not None:  # the run's health per minute, for the live view
        health = outputs.database.sink(health_db, "health")
        write_health(per_key, rejected, health)
    if outputs.readings is not None:
        readings = op.map("reading_json", scored, reading_record)
        op.output("readings_out", readings, outputs.sink("readings"))
    if outputs.sample.size:
        extra_counts.append(_sample(scored, outputs.sample))
    counts = op.flat_map_batch("take_counts", per_key, lambda b: unkeyed(b, dict))
    _totals([counts, *extra_counts], rejected, outputs.totals, config.detection.features)
    return flow


flow = build_flow()

if __name__ == "__main__":  # a module, not a command: say which command runs it
    raise SystemExit(
        "dataflows.air_quality is a Bytewax flow: run it with `air-quality run` (see "
        "`air-quality run --help`) or `python -m bytewax.run dataflows.air_quality:flow`"
    )
