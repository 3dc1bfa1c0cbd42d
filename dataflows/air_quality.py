"""The air-quality flow: PurpleAir payloads → readings → impute → HalfSpaceTrees → anomalies.

    python -m bytewax.run dataflows.air_quality:flow                 # the shipped data
    python -m bytewax.run "dataflows.air_quality:build_flow('PATH_OR_URL', key='global')"

Anomalies go to stdout (or `output=PATH`) as JSON lines, dead letters to stderr (or
`dead_letters=PATH`), every cleaned reading to `readings=PATH` when asked, totals to the log.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import DynamicSink, Sink, StatelessSinkPartition

from dataflows.steps import (
    ImputeStep,
    ScoreStep,
    anomaly_record,
    count_tags,
    dead_letter_record,
    is_anomaly,
    reading_record,
    totals_line,
)
from detectors.hst import DEFAULT_FEATURES
from sinks.jsonlines import JsonLinesSink
from sources.payload import Reading
from sources.purpleair import PurpleAirSource

#: The recorded poll sequence that the project's simulator generates (see data/README.md).
SHIPPED_DATA = Path(__file__).resolve().parent.parent / "data" / "polls.jsonl"
#: The example's imputed fields.
DEFAULT_IMPUTE_FIELDS = ("temperature", "humidity", "pressure", "pm1.0_cf_1")
KEY_MODES = ("sensor", "global")

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


def _add_counts(totals: dict[str, int], tag_count: tuple[str, int]) -> dict[str, int]:
    tag, count = tag_count
    totals[tag] = count
    return totals


def _count_totals(scored: Stream[Reading], dead: Stream[Any], threshold: float) -> Stream[dict]:
    """At the end of a finite run, one dict of totals: readings, statuses, anomalies, imputed
    values per field, dead letters (so rows in = readings + dead_letters can be checked)."""
    tags = op.merge(
        "tags",
        op.flat_map("reading_tags", scored, lambda r: count_tags(r, threshold)),
        op.map("dead_letter_tag", dead, lambda _d: "dead_letters"),
    )
    counts = op.count_final("count", tags, lambda tag: tag)
    summary = op.fold_final(
        "fold_totals", op.key_on("one_key", counts, lambda _kv: "totals"), dict, _add_counts
    )
    return op.key_rm("unkey_totals", summary)


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
) -> Dataflow:
    """Build the air-quality dataflow.

    `source`: a payload or JSON-lines file path, an http(s) URL, or any Bytewax source of
    `Reading`/`DeadLetter` items. `key="sensor"` keeps one imputer and detector per sensor;
    `key="global"` one of each for all rows in file order (for a one-moment snapshot).
    `output`, `dead_letters`, `readings`: a file path (appended), None for the default stream
    (stdout, stderr, not written), or a Bytewax sink receiving the record dicts.
    """
    if key not in KEY_MODES:
        raise ValueError(f"key must be one of {KEY_MODES}, got {key!r}")
    impute = ImputeStep(impute_fields, window, strategy)
    score = ScoreStep(
        features=features,
        limits=limits,
        n_trees=n_trees,
        height=height,
        window_size=window_size,
        seed=seed,
    )
    if not isinstance(source, Source):
        source = PurpleAirSource(str(source), split=key == "sensor", batch_size=batch_size)

    flow = Dataflow("air_quality")
    items = op.input("read", flow, source)
    parsed = op.branch("split_dead_letters", items, lambda item: isinstance(item, Reading))
    if key == "sensor":
        keyed = op.key_on("key_by_sensor", parsed.trues, lambda r: str(r.sensor_index))
    else:
        keyed = op.key_on("key_global", parsed.trues, lambda _r: "global")
    cleaned = op.stateful_map("impute", keyed, impute)
    scored = op.key_rm("unkey", op.stateful_map("score", cleaned, score))

    anomalies = op.filter("keep_anomalies", scored, lambda r: is_anomaly(r, threshold))
    feature_names = tuple(features)
    op.output(
        "anomalies_out",
        op.map("anomaly_json", anomalies, lambda r: anomaly_record(r, feature_names)),
        _sink(output, "stdout"),
    )
    op.output(
        "dead_letters_out",
        op.map("dead_letter_json", parsed.falses, dead_letter_record),
        _sink(dead_letters, "stderr"),
    )
    if readings is not None:
        op.output(
            "readings_out",
            op.map("reading_json", scored, reading_record),
            _sink(readings, "stdout"),
        )

    totals_stream = _count_totals(scored, parsed.falses, threshold)
    if totals is None:
        op.output("totals_log", op.map("totals_line", totals_stream, totals_line), LogSink())
    else:
        op.output("totals_out", totals_stream, totals)
    return flow


flow = build_flow()
