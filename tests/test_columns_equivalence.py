"""The engine against the per-sensor stage classes: the whole flow, every output, equal.

The oracle is `tests/reference_flow.py`: the input read by the per-reading sources, each key's
readings through its own `tests.sensor_chain.SensorChain` (the per-sensor classes of
`preparation/`, `imputers/` and `detectors/`, reading by reading), the records made from what
comes out. Each case simulates a small deployment (`data.simulate`: nulls, spikes, drifts, stuck
sensors, dropouts; channels and smoke in some), then makes it harder: sensors that join late and
leave early, a run of polls without one field (imputed or derived then, keys in another order),
a poll sent twice, bad rows, and bad lines of the corpus (`tests.corpus`, whose good rows have
other fields); and draws a configuration from a seeded generator: every detector, both key
modes, each gap mode, each rule on or off, odd batch sizes (a sensor then appears several times
in one batch), a field to impute that the payload lacks. The flow and the oracle run it;
anomalies, readings, dead letters, gap events, incidents and totals must be equal, sorted by
sensor and time (the engine interleaves different sensors differently, never one sensor's own
records), and so must what the Prometheus counters count. Then layouts (`-w 2`, two processes)
and recovery (a snapshot mid-file: the shard state pickled and resumed; a flow that crashes and
resumes from its recovery store) give the same again.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main
from prometheus_client import REGISTRY

from columns.batch import Columns
from columns.logic import BatchTally, ShardLogic
from columns.source import ColumnFileSource
from config import resolve
from core.readings import Reading
from data import simulate
from dataflows.air_quality import build_flow, sensor_config
from dataflows.steps import event_record, reading_record
from detectors.catalog import DETECTORS
from preparation.gaps import GapEvent
from preparation.incidents import Incident, incident_record
from sources.purpleair import read_items
from sources.shards import ShardedFileSource
from tests.conftest import run_processes
from tests.corpus import kinds
from tests.reference_flow import reference_run
from tests.sensor_chain import SensorChain

OUTPUTS = ("output", "dead_letters", "readings", "totals", "events", "incidents")
#: Random cases of the main test (each runs the flow twice on a few thousand rows).
CASES = 14


def scenario(
    directory: Path, rng: random.Random, hours: float | None = None, text: bool | None = None
) -> Path:
    """A small simulated deployment, made harder; its polls file (`text`: with a text field,
    without, or as drawn)."""
    sim = simulate.generate(
        seed=rng.randrange(10_000),
        n_sensors=rng.randint(3, 9),
        hours=hours or rng.choice((2.0, 3.0, 4.0)),
        channels=rng.random() < 0.5,
        smoke=rng.choice((0, 0, 1)),
    )
    polls = [dict(p, data=[list(row) for row in p["data"]]) for p in sim.polls]
    sensors = sorted({row[0] for p in polls for row in p["data"]})
    late, early = rng.sample(sensors, 2)  # one joins a third of the way in, one leaves early
    third = len(polls) // 3
    for k, poll in enumerate(polls):
        poll["data"] = [
            row
            for row in poll["data"]
            if not (row[0] == late and k < third) and not (row[0] == early and k > 2 * third)
        ]
    start = rng.randrange(len(polls) - 10)
    dropped = rng.choice(("pressure", "humidity", "pm2.5_cf_1", "pm1.0_cf_1"))
    for poll in polls[start : start + rng.randint(3, 10)]:  # polls without one of the fields
        if dropped in poll["fields"]:
            at = poll["fields"].index(dropped)
            poll["fields"] = poll["fields"][:at] + poll["fields"][at + 1 :]
            poll["data"] = [row[:at] + row[at + 1 :] for row in poll["data"]]
    faults(polls, rng)
    for poll in rng.sample(polls, 3):  # bad rows: a string value, a row cut short
        if len(poll["data"]) > 1:
            poll["data"][0][-1] = "x"
            poll["data"][1] = poll["data"][1][:-1]
    drawn = rng.random() < 0.4
    if drawn if text is None else text:  # a text field (a name, sometimes null)
        for poll in polls:
            poll["fields"] = [*poll["fields"], "name"]
            for row in poll["data"]:
                row.append(None if row[0] % 3 == 0 else f"sensor {row[0]}")
    lines = [json.dumps(p).encode() for p in polls]
    repeated = rng.randrange(len(lines))
    lines.insert(repeated + 1, lines[repeated])  # a poll sent twice
    for kind in rng.sample(kinds(), 6):
        lines.insert(rng.randrange(len(lines)), kind.line)
    path = directory / "polls.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def faults(polls: list[dict], rng: random.Random) -> None:
    """What the quality-control rules are for: a sensor stuck for 25 polls (every value as in
    the first), values out of their physical range, channels that disagree or read 0."""

    def cell(poll: dict, row: list, name: str) -> int | None:
        return poll["fields"].index(name) if name in poll["fields"] else None

    sensor = rng.choice(sorted({row[0] for p in polls for row in p["data"]}))
    start, frozen = rng.randrange(len(polls) - 30), None
    for poll in polls[start : start + 25]:
        for row in poll["data"]:
            if row[0] == sensor:
                named = dict(zip(poll["fields"], row, strict=False))
                frozen = frozen or {k: v for k, v in named.items() if k not in ("last_seen",)}
                for name, value in frozen.items():
                    if (at := cell(poll, row, name)) is not None and at < len(row):
                        row[at] = value
    for poll in rng.sample(polls, 4):  # out of range
        row = rng.choice(poll["data"])
        for name, value in (("pm2.5_cf_1", 1500.0), ("humidity", 140.0)):
            if (at := cell(poll, row, name)) is not None:
                row[at] = value
    for poll in rng.sample(polls, 6):  # a channel far off the other, or at 0
        row = rng.choice(poll["data"])
        a, b = cell(poll, row, "pm2.5_cf_1_a"), cell(poll, row, "pm2.5_cf_1_b")
        if a is not None and b is not None:
            row[a], row[b] = rng.choice(((5.0, 60.0), (0.0, 30.0)))


def draw_options(case: int) -> dict[str, Any]:
    """Case `case`'s configuration: each detector in turn, global key mode every fifth case,
    any mix of stages."""
    rng = random.Random(2400 + case)
    detector = DETECTORS[case % len(DETECTORS)]
    options: dict[str, Any] = {
        "detector": detector,
        "key": "global" if case % 5 == 4 else "sensor",
        "batch_size": rng.choice((1, 7, 60, 333, 1000, 5000)),
        "gaps": rng.choice(("events", "fill", None)),
        "offline_after": rng.choice((3600, 10800)),
        "validate": rng.random() < 0.8,
        "channels": rng.random() < 0.8,
        "flatline": rng.choice((None, 3, 15)),
        "epa": rng.random() < 0.8,
        "epa_extended": rng.random() < 0.7,
        "aqi": rng.random() < 0.8,
        "spatial": rng.random() < 0.5,
        "report_faults": rng.random() < 0.8,
        "window": rng.choice((1, 3, 10)),
        "strategy": rng.choice(("mean", "median", "last")),
        "progress": None,
    }
    fields = ["temperature", "humidity", "pressure", "pm1.0_cf_1"]
    if rng.random() < 0.4:
        fields.append(rng.choice(("pm2.5_cf_1", "pm10.0_cf_1", "voc")))  # voc: not in payloads
    options["impute_fields"] = tuple(fields)
    if rng.random() < 0.3:
        options["scale"] = ("pm1.0_cf_1",)
        options["scale_window"] = rng.choice((None, 20))
    if rng.random() < 0.3:
        options["threshold"] = rng.uniform(0.5, 0.99)
    if detector == "hst" and rng.random() < 0.5:
        options["features"] = ("pm1.0_cf_1", "humidity")
        options["limits"] = {"pm1.0_cf_1": (0.0, 1200.0), "humidity": (0.0, 100.0)}
    if rng.random() < 0.6:
        options["readings"] = True
    if rng.random() < 0.6:
        options["incidents"] = True
    return options


def counters() -> dict[tuple, float]:
    """Every air_quality_* Prometheus sample of this process (cumulative)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in REGISTRY.collect()
        if metric.name.startswith("air_quality_")
        for s in metric.samples
        if s.name.endswith("_total")
    }


def run(source: Any, workers: int = 1, **options: Any) -> dict[str, list]:
    """The flow; every output it writes (readings and incidents when asked), and the
    Prometheus counts it added (`"counters"`)."""
    got: dict[str, list] = {name: [] for name in OUTPUTS}
    sinks = {name: TestingSink(got[name]) for name in ("output", "dead_letters", "totals")}
    sinks["events"] = TestingSink(got["events"])
    for name in ("readings", "incidents"):
        if options.pop(name, None):
            sinks[name] = TestingSink(got[name])
    before = counters()
    flow = build_flow(source, **sinks, **options)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    got["counters"] = added_since(before)
    return got


def added_since(before: dict[tuple, float]) -> list[tuple]:
    """The Prometheus counts added since `before`."""
    after = counters()
    return [
        (k, v - before.get(k, 0.0)) for k, v in sorted(after.items()) if v != before.get(k, 0.0)
    ]


def reference(source: Any, **options: Any) -> dict[str, list]:
    """The oracle's outputs (`tests.reference_flow`) for what `run` writes with `options`, and
    the Prometheus counts it added."""
    wanted = ["output", "dead_letters", "totals", "events"]
    wanted += [name for name in ("readings", "incidents") if options.get(name)]
    before = counters()
    want = reference_run(source, wanted, **options)
    want["counters"] = added_since(before)
    return want


def by_sensor_and_time(records: list[Any]) -> list[str]:
    def key(record: Any) -> tuple:
        if isinstance(record, dict):
            sensor = record.get("sensor_index")
            return (-1 if sensor is None else sensor, str(record.get("time")))
        return (-1, "")

    ordered = sorted(records, key=lambda r: (*key(r), repr(r)))
    return [canonical(r) for r in ordered]


def canonical(record: Any) -> str:
    """A record as text: counts as a dict (their order means nothing), values and flags in
    their order (a Reading's keep the order its stages gave them)."""
    text = json.dumps(record, sort_keys=True)
    if isinstance(record, dict):
        for name in ("values", "flags"):
            if isinstance(record.get(name), dict):
                text += f" {name}: " + json.dumps(list(record[name]))
    return text


def assert_same(got: dict[str, list], want: dict[str, list], layout_free: bool = False) -> None:
    for name in OUTPUTS:
        assert by_sensor_and_time(got[name]) == by_sensor_and_time(want[name]), name
    if not layout_free:  # counters are per process: only one-process runs compare them
        assert got["counters"] == want["counters"]


@pytest.mark.parametrize("case", range(CASES))
def test_the_flow_gives_every_output_of_the_per_sensor_classes(tmp_path, case):
    path = scenario(tmp_path, random.Random(1400 + case))
    options = draw_options(case)
    want = reference(str(path), **options)
    got = run(str(path), **options)
    assert want["totals"] and want["totals"][0]["readings"] > 0
    assert_same(got, want)


def test_every_detector_and_stage_is_drawn():
    drawn = [draw_options(case) for case in range(CASES)]
    assert {o["detector"] for o in drawn} == set(DETECTORS)
    assert {o["key"] for o in drawn} == {"sensor", "global"}
    assert {o["gaps"] for o in drawn} == {"events", "fill", None}
    assert {o["batch_size"] for o in drawn} >= {1, 7, 5000}
    assert any("voc" in o["impute_fields"] for o in drawn)
    assert any("scale" in o for o in drawn) and any(not o["spatial"] for o in drawn)


def test_keys_a_stage_adds_to_some_readings_only_keep_their_order(tmp_path):
    """Polls with both channels but not always their mean, and without always the imputed
    fields: the channel rule adds the mean's key to the readings it fires on, the imputer the
    fields it fills, each at the end, in the order the per-sensor stages add them."""
    rng = random.Random(5)
    lines = []
    for t in range(90):
        fields = ["sensor_index", "last_seen", "pm2.5_cf_1_a", "pm2.5_cf_1_b", "humidity"]
        if t % 3:
            fields += ["pm2.5_cf_1", "pm1.0_cf_1"]
        rows = []
        for sensor in (11, 12, 13):
            a = round(rng.uniform(2, 30), 1)
            b = a if rng.random() < 0.7 else round(rng.uniform(0, 80), 1)
            row = [sensor, 1000 + 120 * t, a, b, rng.choice((None, 40.0, 55.0))]
            if t % 3:
                row += [round((a + b) / 2, 2), rng.choice((None, 3.0, 4.0))]
            rows.append(row)
        poll = {"data_time_stamp": 1000 + 120 * t, "fields": fields, "data": rows}
        lines.append(json.dumps(poll))
    path = tmp_path / "channels.jsonl"
    path.write_text("\n".join(lines) + "\n")
    options = {"readings": True, "incidents": True, "progress": None, "batch_size": 7}
    options["impute_fields"] = ("humidity", "pm1.0_cf_1", "pm2.5_cf_1")
    want = reference(str(path), **options)
    got = run(str(path), **options)
    reasons = {code for r in want["readings"] for code in r["reasons"]}
    assert "channel_disagreement" in reasons
    orders = {tuple(r["values"]) for r in want["readings"]}
    assert len(orders) >= 4  # the keys come in several orders
    assert_same(got, want)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Path:
    return scenario(tmp_path_factory.mktemp("deployment"), random.Random(77), hours=8.0)


#: The defaults but for fill gaps and a small batch, with every output written.
WIDE = {"gaps": "fill", "offline_after": 10800, "batch_size": 200, "progress": None}


@pytest.mark.parametrize("key", ["sensor", "global"])
def test_two_workers_give_the_per_sensor_outputs(deployment, key):
    want = reference(str(deployment), readings=True, incidents=True, key=key, **WIDE)
    got = run(str(deployment), 2, readings=True, incidents=True, key=key, **WIDE)
    assert_same(got, want, layout_free=True)


@pytest.mark.parametrize("key", ["sensor", "global"])
def test_a_source_of_readings_is_grouped_into_column_batches(deployment, key):
    """The live poller, a URL, any Bytewax source gives `Reading`s: grouped per shard."""
    items = list(read_items(str(deployment)))
    options = {**WIDE, "key": key, "readings": True, "incidents": True}
    batches = [items[i : i + 150] for i in range(0, len(items), 150)]
    want = reference(batches, **options)
    got = run(TestingSource(items, batch_size=150), **options)
    assert len(got["readings"]) > 1000
    assert_same(got, want)


def test_two_processes_give_the_per_sensor_outputs(deployment, tmp_path):
    want = reference(str(deployment), readings=True, incidents=True, **WIDE)
    files = {name: tmp_path / f"{name}.jsonl" for name in OUTPUTS if name != "totals"}
    keywords = ", ".join(f"{name}={str(path)!r}" for name, path in files.items())
    logs = run_processes(
        f"dataflows.air_quality:build_flow({str(deployment)!r}, {keywords},"
        " gaps='fill', offline_after=10800, batch_size=200, progress=None)"
    )
    got = {
        name: [json.loads(line) for line in path.read_text().splitlines()]
        for name, path in files.items()
    }
    [line] = [line for log in logs for line in log.splitlines() if "totals: " in line]
    got["totals"] = [
        {k: int(v) for k, v in (kv.split("=") for kv in line.split("totals: ")[1].split(", "))}
    ]
    assert got["readings"] and got["output"]
    assert_same(got, want, layout_free=True)


# --- recovery ---------------------------------------------------------------------------------


def records(items: list[Any]) -> list[str]:
    """A shard step's output as comparable records."""
    out = []
    for item in items:
        if type(item) is Reading:
            out.append(reading_record(item))
        elif type(item) is GapEvent:
            out.append(event_record(item))
        elif type(item) is Incident:
            out.append(incident_record(item))
        elif type(item) is BatchTally:
            out.append({"tally": repr(item)})
        else:
            out.append(item)
    return by_sensor_and_time(out)


def shard_batches(path: Path, options: dict[str, Any]) -> list[list[tuple[str, Any]]]:
    """The column batches a flow's shard steps get, source batch by source batch."""
    run_config = resolve(None, source=str(path), **options).run
    shards = run_config.shards if run_config.key == "sensor" else 1
    source = ColumnFileSource(path, shards=shards, batch_size=run_config.batch_size)
    batches = []
    for part in source.list_parts():
        partition = source.build_part("read", part, None)
        while True:
            try:
                batch = partition.next_batch()
            except StopIteration:
                break
            batches.append([item for item in batch if type(item) is tuple])
    return batches


@pytest.mark.parametrize(
    "options",
    [
        {"gaps": "fill", "offline_after": 10800, "batch_size": 90, "scale": ("pm1.0_cf_1",)},
        {"detector": "hst", "gaps": "events", "batch_size": 250, "incidents": True},
        {"key": "global", "detector": "ranked", "batch_size": 120},
    ],
)
def test_a_snapshot_mid_file_resumes_to_the_uninterrupted_outputs(deployment, options):
    options = dict(options)
    clear = 1800 if options.pop("incidents", False) else None
    config = resolve(None, source=str(deployment), **options)
    per_sensor = config.run.key == "sensor"
    step = sensor_config(config.cleaning, config.detection, config.run.key, False, clear)

    def logic(resume: bytes | None = None) -> ShardLogic:
        features = config.detection.features
        return ShardLogic(step, resume, per_sensor=per_sensor, emit_all=True, features=features)

    def feed(batches, logics, out):
        for batch in batches:
            by_key: dict[str, list] = {}
            for key, columns in batch:
                by_key.setdefault(key, []).append(columns)
            for key, columns in by_key.items():
                out.extend(logics.setdefault(key, logic()).on_batch(columns)[0])

    batches = shard_batches(deployment, options)
    assert len(batches) > 4
    whole: list[Any] = []
    logics: dict[str, ShardLogic] = {}
    feed(batches, logics, whole)
    for key_logic in logics.values():
        whole.extend(key_logic.on_eof()[0])
    cut = len(batches) // 2
    first: list[Any] = []
    logics = {}
    feed(batches[:cut], logics, first)
    snapshots = {key: key_logic.snapshot() for key, key_logic in logics.items()}
    feed(batches[cut : cut + 1], logics, [])  # the live state goes on: the snapshot must not
    resumed = {key: logic(state) for key, state in snapshots.items()}
    second: list[Any] = []
    feed(batches[cut:], resumed, second)
    for key_logic in resumed.values():
        second.extend(key_logic.on_eof()[0])
    assert records(first + second) == records(whole)


class _CrashingPartition(StatefulSourcePartition):
    def __init__(self, inner: StatefulSourcePartition, crash: list[int]):
        self.inner, self.crash = inner, crash

    def next_batch(self) -> list[Any]:
        if self.crash[0] == 0:
            raise RuntimeError("crash")
        self.crash[0] -= 1
        return self.inner.next_batch()

    def snapshot(self) -> Any:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()


class CrashingSource(FixedPartitionedSource):
    """The flow's file source (`ColumnFileSource`) whose partitions stop the flow after
    `crash_after` batches in all (None: never)."""

    def __init__(self, path: Path, crash_after: int | None, **options: Any):
        self.inner = ColumnFileSource(path, **options)
        self.crash = [-1 if crash_after is None else crash_after]

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _CrashingPartition:
        inner = self.inner.build_part(step_id, for_part, resume_state)
        return _CrashingPartition(inner, self.crash)


def test_a_flow_that_crashes_resumes_to_the_uninterrupted_totals(deployment, tmp_path):
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    options = {"spatial": False, "gaps": "fill", "offline_after": 10800, "progress": None}

    def flow(crash_after, got):
        source = CrashingSource(deployment, crash_after, batch_size=20)
        sinks = {name: TestingSink(got[name]) for name in ("output", "readings", "totals")}
        return build_flow(source, events=TestingSink([]), **sinks, **options)

    whole = {name: [] for name in ("output", "readings", "totals")}
    run_main(flow(None, whole))
    first = {name: [] for name in whole}
    with pytest.raises(RuntimeError, match="next_batch"):
        run_main(flow(40, first), epoch_interval=timedelta(0), recovery_config=recovery)
    second = {name: [] for name in whole}
    run_main(flow(None, second), epoch_interval=timedelta(0), recovery_config=recovery)
    assert 0 < len(second["readings"]) < len(whole["readings"])  # it resumed mid-file
    assert second["totals"] == whole["totals"]
    for name in ("readings", "output"):  # at least once: what followed the snapshot, again
        resumed = by_sensor_and_time(first[name] + second[name])
        assert set(resumed) == set(by_sensor_and_time(whole[name])), name


def test_offline_by_the_system_clock_as_the_per_sensor_chain_reports_it():
    """`clock="system"`: a silent sensor is reported when the wall clock says so, by the shard
    step as by each sensor's own chain, however the silences fall."""
    wall = [datetime(2026, 4, 1, tzinfo=UTC)]
    config = resolve(None, gaps="events", offline_after=600, clock=lambda: wall[0])
    step = sensor_config(config.cleaning, config.detection, "sensor")
    shard = ShardLogic(step, per_sensor=True, features=config.detection.features)
    own: dict[int, SensorChain] = {}
    rng = random.Random(3)
    fields = ("pm1.0_cf_1", "humidity")
    reported = 0
    for t in range(60):
        reporting = [s for s in (5, 6, 7, 8) if rng.random() < (0.9 if t < 20 else 0.3)]
        if reporting:
            values = [[rng.uniform(1, 9), 40.0] for _ in reporting]
            times = np.full(len(reporting), 120 * t)
            columns = Columns(np.array(reporting), times, fields, np.array(values))
            got = [e for e in shard.on_batch([columns])[0] if type(e) is GapEvent]
            want = []
            for sensor, row in zip(reporting, values, strict=True):
                chain = own.setdefault(sensor, SensorChain(step))
                reading = Reading(sensor, 120 * t, dict(zip(fields, row, strict=True)))
                want += [e for e in chain.process([reading]) if type(e) is GapEvent]
            assert got == want
        wall[0] += timedelta(seconds=rng.choice((60, 300, 700)))
        due = [chain for chain in own.values() if (at := chain.notify_at()) and at <= wall[0]]
        want = [event for chain in due for event in chain.on_notify()]
        at = shard.notify_at()
        got = shard.on_notify()[0] if at is not None and at <= wall[0] else []
        assert sorted(map(repr, got)) == sorted(map(repr, want))
        reported += len(want)
    assert reported >= 3


@pytest.mark.parametrize("key", ["sensor", "global"])
def test_the_readings_are_the_per_sensor_chains_objects(tmp_path, key):
    """Every `Reading` the shard step makes, field for field (text, the order of its values'
    keys, flags and lists), against `SensorChain`'s for the same rows."""
    path = scenario(tmp_path, random.Random(91), hours=6.0, text=True)
    options = {"key": key, "gaps": "fill", "offline_after": 10800, "batch_size": 300}
    config = resolve(None, source=str(path), **options)
    step = sensor_config(config.cleaning, config.detection, key, False, 1800)
    shards = config.run.shards if key == "sensor" else 1
    features = config.detection.features
    got: list[Any] = []
    logics: dict[str, ShardLogic] = {}
    for batch in shard_batches(path, options):
        by_key: dict[str, list] = {}
        for shard, columns in batch:
            by_key.setdefault(shard, []).append(columns)
        for shard, columns in by_key.items():
            if shard not in logics:
                logics[shard] = ShardLogic(
                    step, per_sensor=key == "sensor", emit_all=True, features=features
                )
            got += logics[shard].on_batch(columns)[0]
    want: list[Any] = []
    own: dict[str, SensorChain] = {}
    source = ShardedFileSource(path, shards=shards, batch_size=300)
    for part in source.list_parts():
        partition = source.build_part("read", part, None)
        while True:
            try:
                batch = partition.next_batch()
            except StopIteration:
                break
            by_sensor: dict[str, list] = {}
            for item in batch:
                if type(item) is Reading:
                    name = str(item.sensor_index) if key == "sensor" else "global"
                    by_sensor.setdefault(name, []).append(item)
            for name, readings in by_sensor.items():
                want += own.setdefault(name, SensorChain(step)).process(readings)

    def objects(items: list[Any]) -> list[str]:
        return sorted(repr(i) for i in items if type(i) in (Reading, GapEvent, Incident))

    assert len(objects(got)) > 1000
    assert objects(got) == objects(want)
    assert any(r.text for r in got if type(r) is Reading)  # the scenario has a text field
