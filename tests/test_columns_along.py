"""The column stages along time: a batch that holds a sensor many times (a long history of few
sensors) against the per-reading rules and the per-sensor classes (the oracles).

The streams of `tests/qc_streams.py` and `tests/column_streams.py` are calls of distinct
sensors; here runs of consecutive calls are joined into one call (when their field layouts
agree), so a sensor appears in one call up to dozens of times, its rows in order, with
placeholders, gaps and late rows among them. Each stage takes such a call in one `apply`
(`ALONG`), and must give every value, flag, reason, count and record of the oracle, which
takes the rows one by one. Then the whole shard step (`ShardLogic`): the same rows in batches
of few sensors give the outputs of the same rows one batch per row.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from columns.batch import Columns
from columns.channels import ChannelColumns
from columns.epa import EpaColumns
from columns.flatline import FlatlineColumns
from columns.gaps import GapColumns
from columns.hst import HstColumns
from columns.impute import ImputeColumns
from columns.incidents import IncidentColumns
from columns.logic import BatchTally, ShardLogic
from columns.nowcast import NowCastColumns
from columns.rounds import Along, takes_repeats
from columns.source import ColumnFileSource
from columns.validate import ValidateColumns
from config import resolve
from core.readings import Reading
from data import simulate
from dataflows.air_quality import sensor_config
from detectors.hst import HalfSpaceTreesDetector
from imputers.window import WindowImputer
from preparation.gaps import GapEvent, GapLogic, GapTracker
from tests import test_columns_hst as hst_tests
from tests import test_columns_qc as qc
from tests import test_columns_stages as stages
from tests.column_streams import Slots, bits, work_of
from tests.column_streams import stream as column_stream
from tests.qc_streams import Row, epa_stream, fault_stream, stream


def joined(calls: list[list[Row]], seed: int, longest: int = 40) -> list[list[Row]]:
    """Runs of up to `longest` consecutive calls of one layout, each run as one call."""
    rng = np.random.default_rng(seed + 9000)
    out: list[list[Row]] = []
    layout = None
    left = 0
    for rows in calls:
        keys = {tuple(row.values) for row in rows}
        if len(keys) > 1:
            raise AssertionError("a call of several layouts")
        key = next(iter(keys), layout)
        if out and key == layout and left > 0:
            out[-1] = out[-1] + rows
            left -= 1
        else:
            out.append(list(rows))
            layout, left = key, int(rng.integers(0, longest))
    return out


def repeats(calls: list[list[Row]]) -> int:
    """The most rows one sensor has in one call."""
    most = 0
    for rows in calls:
        sensors = [row.sensor for row in rows]
        if sensors:
            most = max(most, max(sensors.count(s) for s in set(sensors)))
    return most


def test_the_stages_computed_along_time_say_so():
    """Each stage tested along time below takes a slot's rows in one call (else the shard step
    would run it round by round, and these tests would not reach the flow's path)."""
    stages_along = [FlatlineColumns(), ChannelColumns(), ImputeColumns(["pm"]), NowCastColumns(),
                    IncidentColumns(), HstColumns(), ValidateColumns(), EpaColumns()]  # fmt: skip
    assert all(takes_repeats(stage) for stage in stages_along)


@pytest.mark.parametrize("seed", range(30))
def test_flatline_and_channels_along_time_equal_the_per_reading_rules(seed):
    calls, sensors = stream(seed, sensors=int(np.random.default_rng(seed).integers(1, 6)),
                            calls=300)  # fmt: skip
    calls = joined(calls, seed)
    assert repeats(calls) > 5
    qc.run_both(calls, sensors, seed)


def test_every_rule_fires_along_time():
    seen: dict[str, int] = {}
    for seed in range(8):
        calls, sensors = stream(seed, sensors=3, calls=300)
        for tag, n in qc.run_both(joined(calls, seed), sensors, seed).items():
            seen[tag] = seen.get(tag, 0) + n
    assert set(seen) == {
        "flatline",
        "channels:channel_disagreement",
        "channels:channel_zero",
        "channels:channel_downgraded",
    }


def test_along_counts_and_carries_each_slot_from_its_state():
    """`Along` against a loop over the rows (its own small oracle)."""
    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(0, 40))
        slots = rng.integers(0, 5, n)
        go_on = rng.random(n) < 0.7
        value = rng.integers(0, 100, n)
        state = rng.integers(0, 9, 5)
        along = Along(slots)
        count, held, prev = dict(enumerate(state)), dict(enumerate(state)), dict(enumerate(state))
        want_count, want_held, want_prev = [], [], []
        for i, slot in enumerate(slots.tolist()):
            count[slot] = count[slot] + 1 if go_on[i] else 0
            held[slot] = value[i] if not go_on[i] else held[slot]
            want_prev.append(prev[slot])
            prev[slot] = value[i]
            want_count.append(count[slot])
            want_held.append(held[slot])
        assert along.counter(go_on, state[slots]).tolist() == want_count
        assert along.carry(~go_on, value, state[slots]).tolist() == want_held
        assert along.previous(value, state[slots]).tolist() == want_prev
        assert sorted(set(slots[along.last].tolist())) == sorted(set(slots.tolist()))
        assert len(along.last) == len(set(slots.tolist()))


@pytest.mark.parametrize("seed", range(20))
def test_incidents_along_time_equal_the_per_reading_ones(seed):
    clear_after = (0, 120, 600, 1800)[seed % 4]
    calls = joined(fault_stream(seed, sensors=int(seed % 4) + 1, calls=300)[0], seed)
    assert repeats(calls) > 5
    assert qc.run_incidents(calls, seed, clear_after) > 0


@pytest.mark.parametrize("seed", range(20))
def test_nowcast_along_time_equals_the_per_reading_one(seed):
    calls = joined(epa_stream(seed, sensors=int(seed % 4) + 1, calls=400)[0], seed)
    assert repeats(calls) > 5
    assert qc.run_nowcast(calls, seed) > 0


def test_nowcast_of_one_sensor_a_day_at_a_time():
    """A day of 2-minute readings in one call: hours close inside the call, one after another."""
    rows = [Row(7, 1_700_000_000 + 120 * i, {"pm2.5_epa": 5.0 + (i * 7919 % 40)})
            for i in range(3 * 720)]  # fmt: skip
    assert qc.run_nowcast([rows[k : k + 720] for k in range(0, len(rows), 720)], 1) > 2000


@pytest.mark.parametrize("strategy", ["mean", "median", "last"])
@pytest.mark.parametrize("seed", range(8))
def test_imputation_along_time_equals_the_window_imputer(seed, strategy):
    """Polls of few sensors joined into calls of up to 40 polls; values that make a naive
    running sum drift now and then; recovery (pickles) between calls."""
    rng = random.Random(seed)
    window = rng.choice((1, 2, 3, 10, 10, 17))
    impute = ["humidity", "temperature", "pm1.0_cf_1", "pressure", "voc"]
    polls = column_stream(seed, stages.FIELDS, drifting, polls=600, sensors=rng.randint(1, 4))
    calls: list[list] = []
    while polls:
        size = rng.randint(1, 40)
        calls.append([row for poll in polls[:size] for row in poll])
        polls = polls[size:]
    assert max(len(c) - len({s for s, _ in c}) for c in calls) > 5  # sensors repeat in a call
    twin = ImputeColumns(impute, window, strategy)
    oracles: dict[int, WindowImputer] = {}
    slots = Slots()
    for t, rows in enumerate(calls):
        if t % 7 == 3:
            twin = pickle.loads(pickle.dumps(twin))
            oracles = pickle.loads(pickle.dumps(oracles))
        at = slots(rows)
        twin.grow(len(slots.of))
        work = work_of(rows, stages.FIELDS)
        twin.apply(work, at, {})
        want = []
        for i, (sensor, values) in enumerate(rows):
            imputer = oracles.setdefault(sensor, WindowImputer(impute, window, strategy))
            filled, imputed, missing = imputer.impute_one(values)
            want.append(filled)
            for name in impute:
                col = work.column(name)
                assert work.imputed[i, col] == (name in imputed), (t, i, name)
                assert work.missing[i, col] == (name in missing), (t, i, name)
        stages.assert_same_values(work, want, impute)
        stages.assert_same_values(work, want, stages.FIELDS)


def drifting(rng: random.Random, name: str, t: int) -> float:
    """`sensor_value`, or now and then a value of a wildly other scale."""
    if rng.random() < 0.1:
        return rng.gauss(0, 1) * 10.0 ** rng.randint(-8, 9)
    return stages.sensor_value(rng, name, t)


# --- the shard step ---------------------------------------------------------------------------


def few_sensors(folder: Path, seed: int) -> Path:
    """A simulated history of 1 to 3 sensors (channel faults, smoke), a run of polls without
    humidity (another field layout), a silence of a few hours."""
    sim = simulate.generate(seed=seed, n_sensors=1 + seed % 3, hours=16.0, channels=True,
                            smoke=seed % 2)  # fmt: skip
    polls = [dict(p, data=[list(row) for row in p["data"]]) for p in sim.polls]
    rng = random.Random(seed)
    start = rng.randrange(len(polls) - 60)
    for poll in polls[start : start + rng.randint(5, 50)]:
        at = poll["fields"].index("humidity")
        poll["fields"] = poll["fields"][:at] + poll["fields"][at + 1 :]
        poll["data"] = [row[:at] + row[at + 1 :] for row in poll["data"]]
    quiet = rng.randrange(len(polls) - 150)
    del polls[quiet : quiet + rng.randint(20, 100)]
    path = folder / "polls.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in polls))
    return path


def shard_step(path: Path, options: dict[str, Any], one_row: bool) -> list[str]:
    """Every shard step's outputs over the file's column batches (as the flow's source cuts
    them, or each row a batch of its own): each output's records of one sensor in their order,
    the counts, the tallies summed."""
    options = {"progress": None, **options}
    clear = 1800 if options.pop("incidents", False) else None
    config = resolve(None, source=str(path), **options)
    key = config.run.key
    step = sensor_config(config.cleaning, config.detection, key, False, clear)
    shards = 2 if key == "sensor" else 1
    source = ColumnFileSource(path, shards=shards, batch_size=config.run.batch_size)
    out: list[Any] = []
    tally = BatchTally()
    for part in source.list_parts():
        logic = ShardLogic(step, per_sensor=key == "sensor", emit_all=True,
                           features=config.detection.features)  # fmt: skip
        partition = source.build_part("read", part, None)
        while True:
            try:
                batch = [item[1] for item in partition.next_batch() if type(item) is tuple]
            except StopIteration:
                break
            if one_row:
                batches = [[rounds_of(c, i)] for c in batch for i in range(len(c))]
            else:
                batches = [batch]
            for columns in batches:
                for item in logic.on_batch(columns)[0]:
                    if type(item) is BatchTally:
                        for name in ("received", "placeholders"):
                            setattr(tally, name, getattr(tally, name) + getattr(item, name))
                        for name in ("imputed", "invalid", "reasons", "epa"):
                            getattr(tally, name).update(getattr(item, name))
                    else:
                        out.append(item)
        out.extend(logic.on_eof()[0])
        out.append(pickle.loads(logic.snapshot())[4])  # the counts, from the state
    # each output (readings, events, incidents, counts) apart, each sensor's records in order
    out.sort(key=lambda item: (type(item).__name__, getattr(item, "sensor_index", -1)))
    return [repr(sorted(item.items()) if type(item) is dict else item) for item in out] + [
        repr(tally)
    ]


def rounds_of(columns: Columns, row: int) -> Columns:
    """Row `row` of a batch, as a batch."""
    text = None if columns.text is None else [columns.text[row]]
    return Columns(columns.sensors[row : row + 1], columns.times[row : row + 1], columns.fields,
                   columns.values[row : row + 1], text, columns.origin)  # fmt: skip


@pytest.mark.parametrize(
    "options",
    [
        {},  # the defaults
        {"detector": "hst", "gaps": "fill", "incidents": True, "batch_size": 700},
        {"gaps": "fill", "offline_after": 10800, "scale": ("pm1.0_cf_1",), "strategy": "median",
         "window": 3, "detector": "zscore", "incidents": True},  # fmt: skip
        {"key": "global", "detector": "hst", "incidents": True, "flatline": 3},
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_batches_of_few_sensors_give_the_outputs_of_one_row_at_a_time(tmp_path, options, seed):
    path = few_sensors(tmp_path, seed)
    got = shard_step(path, options, one_row=False)
    want = shard_step(path, options, one_row=True)
    assert len(got) > 400
    assert got == want


# --- gaps -------------------------------------------------------------------------------------


def gap_calls(seed: int) -> list[list[tuple[int, int]]]:
    """Calls of `(sensor, time)` rows of 1 to 3 sensors: mostly 2-minute steps with jitter,
    now and then a gap, a silence past `offline_after`, a repeat, a row back in time, a change
    of cadence; calls of 1 to 60 rows."""
    rng = random.Random(seed)
    sensors = rng.sample(range(1, 10**6), rng.randint(1, 3))
    clock = {s: rng.randrange(10**9, 2 * 10**9) for s in sensors}
    step = {s: rng.choice((60, 120, 120, 600)) for s in sensors}
    rows = []
    for _ in range(1500):
        s = rng.choice(sensors)
        draw = rng.random()
        if draw < 0.8:
            clock[s] += step[s] + rng.randint(-5, 5)
        elif draw < 0.87:
            clock[s] += step[s] * rng.randint(2, 12)
        elif draw < 0.9:
            clock[s] += rng.randint(3600, 20000)
        elif draw < 0.93:
            pass  # the same time again
        elif draw < 0.96:
            clock[s] -= rng.randint(1, 1000)
        else:
            step[s] = rng.choice((60, 120, 600))
            clock[s] += step[s]
        rows.append((s, clock[s]))
    calls = []
    while rows:
        size = rng.randint(1, 60)
        calls.append(rows[:size])
        rows = rows[size:]
    return calls


@pytest.mark.parametrize("mode", ["events", "fill"])
@pytest.mark.parametrize("interval", [None, 120])
@pytest.mark.parametrize("seed", range(4))
def test_gaps_along_time_equal_the_gap_tracker(seed, mode, interval):
    def tracker() -> GapTracker:
        return GapTracker(mode, interval, 3600 if seed % 2 else 10800, 50)

    fields = ("pm2.5_cf_1", "humidity")
    stage = GapColumns(lambda resume: GapLogic(resume or tracker()))
    oracles: dict[int, GapTracker] = {}
    slots = Slots()
    made = 0
    for number, rows in enumerate(gap_calls(seed)):
        if number % 9 == 4:
            stage = pickle.loads(pickle.dumps(stage))
            stage.attach(lambda resume: GapLogic(resume or tracker()))
        at = slots([(s, None) for s, _ in rows])
        stage.grow(len(slots.of))
        events, before = stage.expand([s for s, _ in rows], [t for _, t in rows], fields, at)
        want_events: list[GapEvent] = []
        want_before: dict[int, list] = {}
        for i, (sensor, time) in enumerate(rows):
            proxy = Reading(sensor, time, dict.fromkeys(fields))
            for item in oracles.setdefault(sensor, tracker()).observe(proxy):
                if type(item) is GapEvent:
                    want_events.append(item)
                elif item is not proxy:
                    want_before.setdefault(i, []).append((item.time, tuple(item.values)))
        by_sensor = lambda e: e.sensor_index  # noqa: E731
        assert sorted(events, key=by_sensor) == sorted(want_events, key=by_sensor)
        assert before == want_before
        made += len(events) + len(before)
    assert made > 10


@pytest.mark.parametrize("config", hst_tests.CONFIGS)
@pytest.mark.parametrize("seed", range(3))
def test_hst_along_time_equals_the_per_reading_detector(seed, config):
    """Polls of 1 to 3 sensors joined into calls of up to 60 polls: several windows fill in
    one call, each row scored against the table of the windows before it."""
    limits, n_trees, height, window, capacity = config
    options = dict(n_trees=n_trees, height=height, window_size=window, seed=11)
    feature = hst_tests.FEATURE
    twin = HstColumns(feature, limits, capacity=capacity, **options)
    rng = random.Random(seed)
    value = hst_tests.pm_values(list(twin._forest.cuts))
    polls = column_stream(seed, (feature,), value, polls=max(400, 12 * window),
                          sensors=rng.randint(1, 3))  # fmt: skip
    oracles: dict[int, HalfSpaceTreesDetector] = {}
    slots = Slots()
    start = 0
    while start < len(polls):
        size = rng.randint(1, 60)
        rows = [row for poll in polls[start : start + size] for row in poll]
        start += size
        if rng.random() < 0.05:
            twin = pickle.loads(pickle.dumps(twin))
            oracles = pickle.loads(pickle.dumps(oracles))
        at = slots(rows)
        twin.grow(len(slots.of))
        work = work_of(rows, (feature,))
        work.placeholder[:] = [rng.random() < 0.05 for _ in rows]
        twin.apply(work, at, {})
        for i, (sensor, values) in enumerate(rows):
            detector = oracles.setdefault(
                sensor, HalfSpaceTreesDetector((feature,), {feature: limits}, **options)
            )
            if work.placeholder[i]:
                score, status = None, "unscored"
            else:
                score, status = detector.score_then_learn(values)
            assert hst_tests.STATUS[int(work.status[i])] == status, (start, i)
            assert bits(work.score[i]) == bits(score), (start, i, score, work.score[i])
    assert sum(d.learned for d in oracles.values()) == int(twin.learned.sum())
