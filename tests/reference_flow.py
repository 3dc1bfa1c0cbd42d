"""Every output of the air-quality flow, built from the per-sensor reference instead of the
engine: the oracle of `tests/test_columns_equivalence.py`.

The input is read by the per-reading sources (`sources.shards.ShardedFileSource`, or the batches
of a source of readings as given), each key's readings go through its own `SensorChain`
(`tests/sensor_chain.py`: the per-sensor stage classes, reading by reading), and the records
are made from what comes out: anomalies (after the area stage, when it runs, fed the chains'
readings in the order they were made), readings, dead letters, gap events, incidents, the
totals, and what the Prometheus counters count. Nothing of the engine (`columns/`) runs but the
per-sensor configuration it shares (`SensorConfig`).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.testing import TestingSink, TestingSource, run_main

from config import FlowConfig, resolve
from config.flow import SpatialConfig
from core.readings import DeadLetter, Reading
from dataflows.air_quality import absent_features, sensor_config
from dataflows.areas import split_areas
from dataflows.steps import (
    add_counts,
    anomaly_record,
    dead_letter_record,
    event_record,
    is_anomaly,
    kind_counts,
    reading_record,
)
from preparation.areas import AreaLogic, Placed, route
from preparation.correction import EPA_FIELD
from preparation.gaps import GapEvent
from preparation.incidents import CLEAR_AFTER, Incident, incident_record
from preparation.metrics import count_events, count_preparation
from preparation.registry import Registry, file_registry
from sinks.metrics import Progress
from sources.shards import ShardedFileSource
from tests.sensor_chain import SensorChain

#: Flags that are not a removed field's (the Prometheus counters count the others).
NOT_FIELDS = frozenset({EPA_FIELD, "channels", "flatline"})


def file_batches(path: Path, config: FlowConfig) -> list[list[Any]]:
    """The file's items (readings and dead letters), batch by batch, shard after shard, as the
    per-reading file source reads them."""
    run = config.run
    shards = run.shards if run.key == "sensor" else 1
    window = config.source.times.window()
    source = ShardedFileSource(path, shards=shards, batch_size=run.batch_size, window=window)
    batches = []
    for part in source.list_parts():
        partition = source.build_part("read", part, None)
        while True:
            try:
                batches.append(partition.next_batch())
            except StopIteration:
                break
    return batches


def reference_run(
    source: str | Path | Sequence[Sequence[Any]], outputs: Sequence[str], **options: Any
) -> dict[str, list]:
    """What the flow writes on `source` (a file, or a source's batches of items) with the
    `build_flow` keywords `options`: a list of records per output of `outputs` (`output`,
    `readings`, `dead_letters`, `events`, `incidents`, `totals`), and `counters`: the Prometheus
    counts, as `(name, labels)` → amount added."""
    options = {k: v for k, v in options.items() if k not in ("readings", "incidents")}
    wants = set(outputs)
    if isinstance(source, str | Path):
        config = resolve(None, source=str(source), **options)
        batches = file_batches(Path(source), config)
        registry_path: Path | None = Path(source)
    else:
        config = resolve(None, **options)
        # copies: the per-sensor stages fill in a reading's values in place
        batches, registry_path = copy.deepcopy([list(b) for b in source]), None
    return _run(config, batches, registry_path, wants)


def _run(
    config: FlowConfig, batches: list[list[Any]], path: Path | None, wants: set[str]
) -> dict[str, list]:
    run, cleaning, detection = config.run, config.cleaning, config.detection
    spatial = config.spatial.enabled and run.key == "sensor"
    clear = config.outputs.incident_clear if "incidents" in wants else None
    step = sensor_config(cleaning, detection, run.key, spatial, clear)
    threshold, features, faults = detection.alarm_threshold(), detection.features, detection.faults
    count_stages = (
        cleaning.validation.enabled
        or cleaning.epa.enabled
        or cleaning.channels.enabled
        or cleaning.flatline.readings is not None
        or (cleaning.gaps.mode == "fill" and run.key == "sensor")
    )
    progress = Progress(None)
    chains: dict[str, SensorChain] = {}
    readings: list[Reading] = []
    events: list[GapEvent] = []
    incidents: list[Incident] = []
    dead: list[DeadLetter] = []
    for batch in batches:
        by_key: dict[str, list[Reading]] = {}
        for item in batch:
            if type(item) is Reading:
                key = str(item.sensor_index) if run.key == "sensor" else "global"
                by_key.setdefault(key, []).append(item)
            elif type(item) is DeadLetter:
                dead.append(item)
            else:
                dead.append(DeadLetter(f"not a Reading: {type(item)}", item))
        made: list[Reading] = []
        for key, items in by_key.items():
            chain = chains.get(key) or chains.setdefault(key, SensorChain(step))
            for out in chain.process(items):
                kind = type(out)
                (made if kind is Reading else events if kind is GapEvent else incidents).append(out)
        _count(made, progress, count_stages)
        readings += made
    totals: dict[str, int] = {}
    for chain in chains.values():
        add_counts(totals, chain.counts)
    if dead:
        totals["dead_letters"] = len(dead)
    progress.dead_letters(dead)
    count_events(events)
    for event in events:
        if event.kind == "gap":
            add_counts(totals, {"events:gap": 1, "gap_missed_steps": event.missed})
        else:
            add_counts(totals, {"events:" + event.kind: 1})
    if spatial:
        alerts, area_incidents, area_counts = _areas(config, readings, path, clear)
        incidents += area_incidents
        add_counts(totals, kind_counts(alerts))
        for counts in area_counts:
            add_counts(totals, counts)
    else:
        alerts = [
            anomaly_record(r, features, threshold)
            for r in readings
            if is_anomaly(r, threshold, faults)
        ]
    progress.anomalies(alerts)
    got: dict[str, list] = {
        "output": alerts,
        "readings": [reading_record(r) for r in readings] if "readings" in wants else [],
        "dead_letters": [dead_letter_record(d) for d in dead],
        "events": [event_record(e) for e in events] if "events" in wants else [],
        "incidents": [incident_record(i) for i in incidents] if "incidents" in wants else [],
        "totals": [absent_features(totals, features)] if totals else [],
    }
    return got


def _count(readings: list[Reading], progress: Progress, stages: bool) -> None:
    """The Prometheus counts of a batch of cleaned readings: received and imputed (the progress),
    and, when a preparation stage runs, its placeholders, invalid values, reasons, EPA outcomes."""
    placeholders = sum(r.placeholder for r in readings)
    progress.received(len(readings) - placeholders, Counter(f for r in readings for f in r.imputed))
    if not stages:
        return
    invalid = Counter(f for r in readings for f in r.flags if f not in NOT_FIELDS)
    reasons = Counter(code for r in readings for code in r.reasons)
    epa = Counter()
    for r in readings:
        if EPA_FIELD in r.values:
            epa["applied" if r.values[EPA_FIELD] is not None else "not_applied"] += 1
    count_preparation(placeholders, invalid, reasons, epa)


def _areas(
    config: FlowConfig, readings: list[Reading], path: Path | None, clear: int | None
) -> tuple[list[dict], list[Incident], list[dict]]:
    """The area stage on the chains' readings, in the order they were made: the anomaly lines,
    the area incidents and the stage's counts."""
    spatial, detection = config.spatial, config.detection
    threshold, features, faults = detection.alarm_threshold(), detection.features, detection.faults
    window = config.source.times.window()
    registry = None
    if path is not None:
        registry = file_registry(path, spatial.area_km, spatial.radius_km, window)
    placed: list[Any] = []
    found: list[Incident] = []
    counts: list[dict] = []
    flow = Dataflow("reference_areas")
    scored = op.input("readings", flow, TestingSource(readings, batch_size=1000))
    out, area_incidents, area_counts = spatial_stage(
        scored,
        spatial,
        config.cleaning.gaps.offline_after,
        registry,
        clear,
        config.outputs.incident_clear,
    )
    op.output("placed_out", out, TestingSink(placed))
    op.output("incidents_out", area_incidents, TestingSink(found))
    op.output("counts_out", area_counts, TestingSink(counts))
    run_main(flow)
    alerts = [
        anomaly_record(p.reading, features, threshold, p.event, p.reasons, p.neighbours)
        for p in placed
        if (faults and p.reasons) or is_anomaly(p.reading, threshold, faults)
    ]
    return alerts, found, counts


def spatial_stage(
    scored: Stream[Reading],
    config: SpatialConfig,
    offline_after: int,
    registry: Registry | None = None,
    incidents: int | None = None,
    clear: int = CLEAR_AFTER,
) -> tuple[Stream[Placed], Stream[Incident], Stream[dict]]:
    """The area stage's reference: `preparation.areas.AreaLogic` over the chains' readings, one
    at a time; its outputs are the flow's `dataflows.areas.area_stage`'s."""
    places: dict = {}
    field_name, area_km, radius_km = config.field, config.area_km, config.radius_km
    rule = config.rule()
    routed = op.flat_map_batch(
        "to_areas", scored, lambda b: route(b, field_name, area_km, radius_km, places)
    )
    direct = op.flat_map_batch("unplaced", routed, lambda b: [v for k, v in b if k == ""])
    keyed = op.flat_map_batch("placed", routed, lambda b: [kv for kv in b if kv[0] != ""])
    per_area = op.stateful_batch(
        "areas",
        keyed,
        lambda resume: AreaLogic(
            rule, config.window, config.grace, offline_after, resume, registry, incidents, clear
        ),
    )
    return split_areas(per_area, direct)
