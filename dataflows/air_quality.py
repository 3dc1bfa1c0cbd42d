"""The air-quality flow: PurpleAir payloads → readings → impute → HalfSpaceTrees → anomalies.

    python -m bytewax.run dataflows.air_quality:flow                 # the shipped data
    python -m bytewax.run "dataflows.air_quality:build_flow('PATH_OR_URL', key='global')"

Anomalies go to stdout (or `output=PATH`) as JSON lines, dead letters to stderr (or
`dead_letters=PATH`), every cleaned reading to `readings=PATH` when asked, totals to the log.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import DynamicSink, Sink, StatelessSinkPartition

from dataflows.steps import (
    Counts,
    SensorConfig,
    SensorLogic,
    add_counts,
    anomaly_record,
    dead_letter_record,
    event_record,
    is_anomaly,
    reading_record,
    totals_line,
)
from detectors.hst import DEFAULT_FEATURES
from preparation.correction import MAX_PM, EpaCorrection
from preparation.gaps import CLOCKS, INTERVAL, MODES, OFFLINE_AFTER, GapEvent, GapLogic, GapTracker
from preparation.metrics import count_events, count_readings, count_sampled
from preparation.sampling import SAMPLE_BY, SampleLogic
from preparation.validation import RangeValidator
from sinks.jsonlines import JsonLinesSink
from sinks.metrics import Progress
from sinks.webhook import WebhookSink
from sources.documents import is_url
from sources.payload import DeadLetter, Reading
from sources.poller import DEFAULT_FIELDS as POLLED_FIELDS
from sources.poller import PurpleAirPoller
from sources.purpleair import PurpleAirSource
from sources.shards import DEFAULT_SHARDS, ShardedFileSource

#: The recorded poll sequence that the project's simulator generates (see data/README.md).
SHIPPED_DATA = Path(__file__).resolve().parent.parent / "data" / "polls.jsonl"
#: The example's imputed fields.
DEFAULT_IMPUTE_FIELDS = ("temperature", "humidity", "pressure", "pm1.0_cf_1")
KEY_MODES = ("sensor", "global")
#: First-generation threshold of the cycle collector while the flow runs (`tune_gc`).
GC_THRESHOLD = 100_000
#: Version of the flow's step layout (2: one batched per-key step, imputer then detector).
STEPS_VERSION = 2

log = logging.getLogger("air_quality")


class _LogPartition(StatelessSinkPartition[str]):
    def write_batch(self, items: list[str]) -> None:
        for item in items:
            log.info(item)


class LogSink(DynamicSink[str]):
    """Log each item (a line of text) at INFO to stderr."""

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LogPartition:
        if not log.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
        return _LogPartition()


def _sink(target: None | str | Sink, stream: str) -> Sink:
    if target is None or isinstance(target, str):
        return JsonLinesSink(target, stream=stream)
    return target


def _source(
    source: str | Path | Source,
    split: bool,
    batch_size: int,
    shards: int,
    purpleair: Mapping[str, Any] | None,
    fields: Sequence[str],
) -> Source:
    """`"purpleair"`: the live API poller (options from `purpleair`, fields the flow needs); an
    http(s) URL: fetched once; a file: sensor shards that resume from their offsets after a
    crash (one shard with every row in global mode); a Bytewax source: itself."""
    if isinstance(source, Source):
        return source
    if source == "purpleair":
        needed = tuple(dict.fromkeys((*POLLED_FIELDS, *fields)))
        return PurpleAirPoller(**{"fields": needed, **(purpleair or {})})
    if is_url(str(source)):
        return PurpleAirSource(str(source), split=False, batch_size=batch_size)
    return ShardedFileSource(source, shards=shards if split else 1, batch_size=batch_size)


def _webhook(webhook: str | Mapping[str, Any], dead_letters: str) -> WebhookSink:
    """The alert webhook: a URL, or `WebhookSink` options with a `url`."""
    options = {"url": webhook} if isinstance(webhook, str) else dict(webhook)
    return WebhookSink(**{"dead_letters": dead_letters, **options})


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


def keyed_readings(batch: list[Any], key: str) -> list[tuple[str, Reading]]:
    """The batch's readings, keyed by sensor (`key="sensor"`) or all under `"global"`."""
    if key == "sensor":
        return [(str(r.sensor_index), r) for r in batch if type(r) is Reading]
    return [("global", r) for r in batch if type(r) is Reading]


def not_readings(batch: list[Any]) -> list[DeadLetter]:
    """The batch's dead letters; an item that is neither a reading nor a dead letter (from a
    custom source) becomes one, so it is reported and counted, never dropped."""
    return [
        item if type(item) is DeadLetter else DeadLetter(f"not a Reading: {type(item)}", item)
        for item in batch
        if type(item) is not Reading
    ]


def unkeyed(batch: list[tuple[str, Any]], kind: type) -> list[Any]:
    """The values of one type from a batch of `(key, value)`."""
    return [value for _key, value in batch if type(value) is kind]


def _gap_logic(
    gaps: str | None, interval: int, offline_after: int, clock: str | Callable[[], datetime]
) -> Callable[[GapTracker | None], GapLogic] | None:
    """How each sensor's gap tracking is built (from its resume state), or None when off."""
    if gaps is None:
        return None
    mode, now = (clock, None) if isinstance(clock, str) else ("system", clock)

    def build(resume: GapTracker | None) -> GapLogic:
        tracker = resume or GapTracker(gaps, interval, offline_after)
        return GapLogic(tracker, mode) if now is None else GapLogic(tracker, mode, now)

    return build


def _event_counts(event: GapEvent) -> Counts:
    if event.kind == "gap":
        return {"events:gap": 1, "gap_missed_steps": event.missed}
    return {"events:" + event.kind: 1}


def _sample(scored: Stream[Reading], size: int, by: str, seed: int, sink: Sink) -> Stream[Counts]:
    """A seeded reservoir of `size` received readings per sensor (or overall), written at the
    end of a finite run; returns its count (`sampled`) for the totals."""
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
    op.output("sample_out", op.map("sample_json", picked, reading_record), sink)
    return op.map("sample_counts", picked, lambda _r: {"sampled": 1})


def build_flow(
    source: str | Path | Source = SHIPPED_DATA,
    *,
    key: str = "sensor",
    threshold: float = 0.7,
    output: None | str | Sink = None,
    dead_letters: None | str | Sink = None,
    readings: None | str | Sink = None,
    totals: None | Sink = None,
    impute_fields: Sequence[str] = DEFAULT_IMPUTE_FIELDS,
    window: int = 10,
    strategy: str = "mean",
    features: Sequence[str] = DEFAULT_FEATURES,
    limits: Mapping[str, tuple[float, float]] | None = None,
    n_trees: int = 10,
    height: int = 8,
    window_size: int = 72,
    seed: int = 11,
    batch_size: int = 1000,
    shards: int = DEFAULT_SHARDS,
    purpleair: Mapping[str, Any] | None = None,
    webhook: None | str | Mapping[str, Any] = None,
    webhook_dead_letters: str = "undelivered_alerts.jsonl",
    progress: float | None = 10.0,
    validate: bool = False,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    epa: bool = True,
    epa_max: float = MAX_PM,
    gaps: str | None = "events",
    interval: int = INTERVAL,
    offline_after: int = OFFLINE_AFTER,
    clock: str | Callable[[], datetime] = "event",
    events: None | str | Sink = None,
    scale: Sequence[str] = (),
    scale_window: int | None = None,
    sample: int = 0,
    sample_by: str = "sensor",
    sample_seed: int = 11,
    sample_path: None | str | Sink = None,
    gc_threshold: int | None = GC_THRESHOLD,
) -> Dataflow:
    """Build the air-quality dataflow.

    `source`: a payload or JSON-lines file path, an http(s) URL, or any Bytewax source of
    `Reading`/`DeadLetter` items. `key="sensor"` keeps one imputer and detector per sensor;
    `key="global"` one of each for all rows in file order (for a one-moment snapshot).
    `output`, `dead_letters`, `readings`: a file path (appended), None for the default stream
    (stdout, stderr, not written), or a Bytewax sink receiving the record dicts.

    Live and operations (README, "Live PurpleAir polling" to "Metrics and progress"):
    `source="purpleair"` polls the API with the `purpleair` options of `PurpleAirPoller`; a file
    is read in `shards` resumable sensor shards; `webhook` (a URL or `WebhookSink` options) also
    POSTs anomalies, undeliverable ones to `webhook_dead_letters`; `progress` is the interval in
    seconds of the progress log (None: off); counts always go to the Prometheus metrics.

    Preparation stages (README, "Preparation stages"): `validate` (physical `ranges`), `epa`
    (`pm2.5_epa`), `gaps` ("events", "fill" or None; per sensor, so not in global mode) with
    `interval`, `offline_after` and `clock` ("event", "system", or a function returning the UTC
    time, which means "system"), gap and offline `events` (stderr by default), `scale` (fields to
    standardise, `scale_window`), and `sample` readings per `sample_by` written to `sample_path`
    at the end of a finite run.

    `gc_threshold`: see `tune_gc` (None leaves the interpreter's garbage collector as it is).
    """
    if key not in KEY_MODES:
        raise ValueError(f"key must be one of {KEY_MODES}, got {key!r}")
    if gaps is not None and gaps not in MODES:
        raise ValueError(f"gaps must be one of {MODES} or None, got {gaps!r}")
    if not callable(clock) and clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS} or a function, got {clock!r}")
    if sample < 0 or (sample and sample_path is None):
        raise ValueError("sample must be >= 0, and sample > 0 needs sample_path")
    if sample_by not in SAMPLE_BY:
        raise ValueError(f"sample_by must be one of {SAMPLE_BY}, got {sample_by!r}")
    GapTracker(gaps or "events", interval, offline_after)  # fail at build time on a bad config
    config = SensorConfig(
        impute_fields,
        window,
        strategy,
        threshold,
        {
            "features": features,
            "limits": limits,
            "n_trees": n_trees,
            "height": height,
            "window_size": window_size,
            "seed": seed,
        },
        validator=RangeValidator(ranges) if validate else None,
        epa=EpaCorrection(epa_max) if epa else None,
        scale_fields=scale,
        scale_window=scale_window,
        gaps=_gap_logic(gaps, interval, offline_after, clock) if key == "sensor" else None,
    )
    source = _source(
        source, key == "sensor", batch_size, shards, purpleair, (*impute_fields, *features)
    )
    counter = Progress(progress)

    if gc_threshold is not None:
        tune_gc(gc_threshold)
    flow = Dataflow("air_quality")
    items = op.input("read", flow, source)
    # batch steps (one Python call per batch, not per item) split and key the streams
    keyed = op.flat_map_batch("key_readings", items, lambda batch: keyed_readings(batch, key))
    rejected = op.flat_map_batch("take_dead_letters", items, not_readings)
    per_key = op.stateful_batch(
        "clean_and_score", keyed, lambda resume: SensorLogic(config, resume)
    )
    preparation_counts: list[Stream[Counts]] = []
    if config.gaps is not None:
        gap_events = op.flat_map_batch(
            "take_gap_events", per_key, lambda b: count_events(unkeyed(b, GapEvent))
        )
        op.output(
            "events_out", op.map("event_json", gap_events, event_record), _sink(events, "stderr")
        )
        preparation_counts.append(op.map("event_counts", gap_events, _event_counts))
    count_preparation = validate or epa or (gaps == "fill" and key == "sensor")

    def take_readings(batch: list[tuple[str, Any]]) -> list[Reading]:
        readings = counter.readings(unkeyed(batch, Reading))
        return count_readings(readings) if count_preparation else readings

    scored = op.flat_map_batch("take_readings", per_key, take_readings)
    feature_names = tuple(features)

    def alerts_of(batch: list[Reading]) -> list[dict[str, Any]]:
        found = [anomaly_record(r, feature_names) for r in batch if is_anomaly(r, threshold)]
        return counter.anomalies(found)

    alerts = op.flat_map_batch("anomalies", scored, alerts_of)
    op.output("anomalies_out", alerts, _sink(output, "stdout"))
    if webhook is not None:
        op.output("webhook_out", alerts, _webhook(webhook, webhook_dead_letters))
    dead = op.flat_map_batch("count_dead_letters", rejected, counter.dead_letters)
    op.output(
        "dead_letters_out",
        op.map("dead_letter_json", dead, dead_letter_record),
        _sink(dead_letters, "stderr"),
    )
    if readings is not None:
        op.output(
            "readings_out",
            op.map("reading_json", scored, reading_record),
            _sink(readings, "stdout"),
        )

    if sample:
        preparation_counts.append(
            _sample(scored, sample, sample_by, sample_seed, _sink(sample_path, "stdout"))
        )
    counts = op.flat_map_batch("take_counts", per_key, lambda b: unkeyed(b, dict))
    if preparation_counts:
        counts = op.merge("preparation_counts", counts, *preparation_counts)
    totals_stream = _count_totals(counts, rejected)
    if totals is None:
        op.output("totals_log", op.map("totals_line", totals_stream, totals_line), LogSink())
    else:
        op.output("totals_out", totals_stream, totals)
    return flow


flow = build_flow()
