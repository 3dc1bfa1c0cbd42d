"""The whole flow with the preparation stages on, on the shipped data: every count adds up.

Every expectation is computed here from the raw payloads and `data/labels.csv` (numpy and plain
Python), never from the preparation code: rows in = readings + dead letters, placeholders apart;
one gap event per dropout with the number of polls it missed; `sensor_offline` events; invalid
values; `pm2.5_epa`; z-scores; the reservoir sample.
"""

from __future__ import annotations

import csv
import json
from calendar import timegm
from collections import defaultdict, deque
from datetime import UTC, datetime
from time import strptime

import numpy as np
import pytest
from bytewax.inputs import DynamicSource, StatelessSourcePartition
from bytewax.testing import TestingSink, run_main
from prometheus_client import REGISTRY

from core.readings import Reading
from dataflows.air_quality import SHIPPED_DATA, build_flow
from tests.conftest import ROOT

LABELS = ROOT / "data" / "labels.csv"
OFFLINE_AFTER = 3600
SAMPLE = 5
IMPUTE_FIELDS = ("temperature", "humidity", "pressure", "pm1.0_cf_1")
# The default physical ranges, written out independently of preparation/validation.py.
RANGES = {
    "latitude": (-90, 90),
    "longitude": (-180, 180),
    "humidity": (0, 100),
    "temperature": (-40, 185),
    "pressure": (300, 1100),
    "pm1.0_cf_1": (0, 1000),
    "pm2.5_cf_1": (0, 1000),
    "pm10.0_cf_1": (0, 1000),
    "pm2.5_atm": (0, 1000),
}


def epoch(iso: str) -> int:
    return timegm(strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def sinks():
    return {n: [] for n in ("output", "dead_letters", "readings", "totals", "events")}


def run(source, **options):
    got = sinks()
    flow = build_flow(source, **{n: TestingSink(s) for n, s in got.items()}, **options)
    run_main(flow)
    return got


@pytest.fixture(scope="module")
def raw():
    """Per sensor, in time order: (poll number, last_seen, {field: value}) from the payloads."""
    rows = defaultdict(list)
    for line in SHIPPED_DATA.read_text().splitlines():
        poll = json.loads(line)
        k = (poll["data_time_stamp"] - 1775001600) // 120
        fields = poll["fields"]
        for row in poll["data"]:
            values = dict(zip(fields, row, strict=True))
            rows[values["sensor_index"]].append((k, values["last_seen"], values))
    return rows


@pytest.fixture(scope="module")
def events_run(tmp_path_factory):
    """Shipped data plus one line that is not JSON; every stage on, gaps as events."""
    path = tmp_path_factory.mktemp("prep") / "polls.jsonl"
    path.write_text(SHIPPED_DATA.read_text() + "{not json\n")
    got = sinks()
    got["sample"] = []
    flow = build_flow(
        str(path),
        **{n: TestingSink(s) for n, s in got.items() if n != "sample"},
        validate=True,
        epa=True,
        gaps="events",
        offline_after=OFFLINE_AFTER,
        scale=("pm1.0_cf_1",),
        sample=SAMPLE,
        sample_path=TestingSink(got["sample"]),
    )
    before = metric_samples()
    run_main(flow)
    after = metric_samples()
    got["metrics"] = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k)}
    return got


def metric_samples() -> dict[tuple, float]:
    """The preparation counters' values now: {(name, label value): value}."""
    out = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name.startswith(
                ("air_quality_invalid", "air_quality_epa", "air_quality_gap", "air_quality_sampl")
            ) and sample.name.endswith("_total"):
                out[(sample.name, *sample.labels.values())] = sample.value
    return out


@pytest.fixture(scope="module")
def fill_run():
    """Every stage on, gaps filled (offline only after 3 h, so every dropout is filled)."""
    return run(str(SHIPPED_DATA), validate=True, gaps="fill", offline_after=3 * 3600)


def test_rows_in_equal_readings_out_plus_dead_letters(events_run, raw):
    [totals] = events_run["totals"]
    rows = sum(len(r) for r in raw.values())
    assert rows == 42_820
    assert totals["readings"] + totals["dead_letters"] == rows + 1
    assert totals["dead_letters"] == len(events_run["dead_letters"]) == 1
    assert totals["readings"] == len(events_run["readings"]) == rows
    assert "placeholders" not in totals
    statuses = sum(n for tag, n in totals.items() if tag.startswith("status:"))
    assert statuses == totals["readings"]
    assert totals["anomalies"] == len(events_run["output"])


def test_one_gap_event_per_dropout_with_the_polls_it_missed(events_run, raw):
    dropouts = [row for row in csv.DictReader(LABELS.open()) if row["fault"] == "dropout"]
    assert len(dropouts) == 10
    gaps = [e for e in events_run["events"] if e["event"] == "gap"]
    assert len(gaps) == len(dropouts)
    for label in dropouts:
        sensor, start, end = int(label["sensor_index"]), int(label["start"]), int(label["end"])
        before = max(r for r in raw[sensor] if r[1] < start)
        after = min(r for r in raw[sensor] if r[1] > end)
        [event] = [
            e for e in gaps if e["sensor_index"] == sensor and epoch(e["last_seen"]) == before[1]
        ]
        assert epoch(event["time"]) == after[1]
        assert event["seconds"] == after[1] - before[1]
        assert event["missed"] == after[0] - before[0] - 1  # polls without this sensor
    [totals] = events_run["totals"]
    assert totals["events:gap"] == 10
    assert totals["gap_missed_steps"] == sum(e["missed"] for e in gaps) == 60 * 720 - 42_820


def test_sensor_offline_after_an_hour_of_silence(events_run, raw):
    want = {
        (sensor, a[1])
        for sensor, rows in raw.items()
        for a, b in zip(rows, rows[1:], strict=False)
        if b[1] - a[1] > OFFLINE_AFTER
    }
    offline = [e for e in events_run["events"] if e["event"] == "sensor_offline"]
    assert {(e["sensor_index"], epoch(e["last_seen"])) for e in offline} == want
    assert len(want) >= 1 and all(e["clock"] == "event" for e in offline)
    assert events_run["totals"][0]["events:sensor_offline"] == len(want)


def test_out_of_range_values_become_missing_with_the_reason(events_run, raw):
    want = defaultdict(int)
    for rows in raw.values():
        for _k, _t, values in rows:
            for name, (lo, hi) in RANGES.items():
                if values[name] is not None and not lo <= values[name] <= hi:
                    want[f"invalid:{name}"] += 1
    [totals] = events_run["totals"]
    assert {t: n for t, n in totals.items() if t.startswith("invalid:")} == want
    assert want["invalid:pm2.5_cf_1"] > 0
    flagged = [r for r in events_run["readings"] if "pm2.5_cf_1" in r["flags"]]
    assert len(flagged) == want["invalid:pm2.5_cf_1"]
    assert all(r["values"]["pm2.5_cf_1"] is None for r in flagged)
    assert all(r["flags"]["pm2.5_cf_1"].endswith("outside [0, 1000]") for r in flagged)


def test_epa_correction_on_every_reading(events_run, raw):
    got = {(r["sensor_index"], epoch(r["time"])): r for r in events_run["readings"]}
    codes = defaultdict(int)
    for sensor, rows in raw.items():
        humidity = deque(maxlen=10)  # the imputer's window: last 10 observed values
        for _k, t, values in rows:
            rh, pm = values["humidity"], values["pm2.5_cf_1"]
            imputed_rh = rh is None
            if rh is None:
                rh = float(np.mean(humidity)) if humidity else None
            else:
                humidity.append(rh)
            if pm is not None and pm > 1000:
                pm = None  # removed by validation
            record = got[(sensor, t)]
            epa = record["values"]["pm2.5_epa"]
            if pm is None:
                code = "no_pm"
            elif rh is None and pm < 611:
                code = "no_humidity"
            else:  # Barkjohn et al. 2022: 2021 below 570, quadratic from 611, blended between
                code = "applied"
                quadratic = 4.21e-4 * pm**2 + 0.392 * pm + 3.44
                if pm >= 611:
                    want = quadratic
                else:
                    linear, w = 0.524 * pm - 0.0862 * rh + 5.75, 0.0244 * pm - 13.9
                    want = linear if pm < 570 else w * quadratic + (1 - w) * linear
                assert epa == pytest.approx(want, abs=1e-9)
                assert ("pm2.5_epa" in record["imputed"]) == (imputed_rh and pm < 611)
            codes[f"epa:{code}"] += 1
            if code != "applied":
                assert epa is None and "pm2.5_epa" in record["missing"]
                assert record["flags"]["pm2.5_epa"].startswith("not applied")
    [totals] = events_run["totals"]
    assert {t: n for t, n in totals.items() if t.startswith("epa:")} == codes
    assert sum(codes.values()) == totals["readings"]
    assert codes["epa:applied"] > 40_000
    high = [v["pm2.5_cf_1"] for rows in raw.values() for *_, v in rows]
    assert sum(1 for pm in high if pm is not None and 250 < pm <= 1000) > 100  # once left empty


def test_z_scores_use_only_the_past(events_run, raw):
    got = {(r["sensor_index"], epoch(r["time"])): r for r in events_run["readings"]}
    scaled = 0
    for sensor, rows in raw.items():
        pm = [values["pm1.0_cf_1"] for _k, _t, values in rows]
        observed = np.array([x for x in pm if x is not None])
        # before reading i: c observed values, their mean and sample std (numpy, cumulative)
        c = np.cumsum([0] + [x is not None for x in pm])[:-1]
        sums = np.concatenate([[0.0], np.cumsum(observed)])
        squares = np.concatenate([[0.0], np.cumsum((observed - observed[0]) ** 2)])
        for i, (_k, t, _v) in enumerate(rows):
            x, n = pm[i], c[i]
            if x is None and n:  # imputed: mean of the last 10 observed values
                x = float(np.mean(observed[max(0, n - 10) : n]))
            z = got[(sensor, t)]["values"]["pm1.0_cf_1_z"]
            mean = sums[n] / n if n else None
            var = (squares[n] - n * (mean - observed[0]) ** 2) / (n - 1) if n >= 2 else 0.0
            if x is None or var <= 1e-12:
                assert z is None
            else:
                assert z == pytest.approx((x - mean) / np.sqrt(var), rel=1e-7, abs=1e-7)
                scaled += 1
    assert events_run["totals"][0]["scaled:pm1.0_cf_1"] == scaled


def test_reservoir_sample_of_each_sensor_written_at_the_end(events_run, raw):
    sample = events_run["sample"]
    assert len(sample) == SAMPLE * len(raw) == events_run["totals"][0]["sampled"]
    got = {(r["sensor_index"], r["time"]): r for r in events_run["readings"]}
    per_sensor = defaultdict(list)
    for record in sample:
        assert record == got[(record["sensor_index"], record["time"])]
        per_sensor[record["sensor_index"]].append(record["time"])
    assert all(len(set(t)) == SAMPLE and t == sorted(t) for t in per_sensor.values())


def test_fill_mode_puts_a_placeholder_on_every_missed_step(fill_run, events_run, raw):
    [totals] = fill_run["totals"]
    assert totals["readings"] == 42_820 and "dead_letters" not in totals
    assert totals["placeholders"] == 60 * 720 - 42_820
    assert len(fill_run["readings"]) == totals["readings"] + totals["placeholders"]
    statuses = sum(n for tag, n in totals.items() if tag.startswith("status:"))
    assert statuses == totals["readings"] + totals["placeholders"]
    assert "events:gap" not in totals and "events:sensor_offline" not in totals
    per_sensor = defaultdict(list)
    for r in fill_run["readings"]:
        per_sensor[r["sensor_index"]].append(r)
    assert len(per_sensor) == 60 and all(len(rs) == 720 for rs in per_sensor.values())
    for sensor, records in per_sensor.items():
        received = [r for r in records if not r["placeholder"]]
        assert [epoch(r["time"]) for r in received] == [t for _k, t, _v in raw[sensor]]
        for r in records:
            if r["placeholder"]:
                assert r["status"] == "unscored" and r["score"] is None
                assert set(r["imputed"]) >= {"pm1.0_cf_1"}
                assert r["values"]["pm1.0_cf_1"] is not None

    # placeholders are never scored, so the anomalies are those of the run with gap events
    def key(records):
        return [(r["sensor_index"], r["time"], r["score"]) for r in records]

    assert key(fill_run["output"]) == key(events_run["output"])


class _OpenUntil(StatelessSourcePartition):
    """Yields its items, then stays open (empty batches) until `done()`: no sleeping, no timing."""

    def __init__(self, items, done):
        self.items, self.done, self.polls = list(items), done, 0

    def next_batch(self):
        if self.items:
            items, self.items = self.items, []
            return items
        self.polls += 1
        if self.done() or self.polls > 1_000_000:
            raise StopIteration()
        return []


class _Source(DynamicSource):
    def __init__(self, items, done):
        self.items, self.done = items, done

    def build(self, step_id, worker_index, worker_count):
        return _OpenUntil(self.items, self.done)


def test_system_clock_reports_silent_sensors_without_a_next_reading():
    got = sinks()
    items = [Reading(1, 1000, {"pm1.0_cf_1": 1.0}), Reading(2, 1010, {"pm1.0_cf_1": 2.0})]
    source = _Source(items, lambda: len(got["events"]) >= 2)
    flow = build_flow(
        source,
        **{n: TestingSink(s) for n, s in got.items()},
        offline_after=600,
        interval=120,  # one reading each: no observed interval to count missed steps by
        clock=lambda: datetime(2000, 1, 1, tzinfo=UTC),  # arrived long ago: wake-ups are due
    )
    run_main(flow)
    assert sorted(got["events"], key=lambda e: e["sensor_index"]) == [
        {
            "event": "sensor_offline",
            "sensor_index": 1,
            "last_seen": "1970-01-01T00:16:40Z",
            "time": None,
            "seconds": 600,
            "missed": 4,
            "clock": "system",
        },
        {
            "event": "sensor_offline",
            "sensor_index": 2,
            "last_seen": "1970-01-01T00:16:50Z",
            "time": None,
            "seconds": 600,
            "missed": 4,
            "clock": "system",
        },
    ]
    assert got["totals"][0]["events:sensor_offline"] == 2


def test_the_metrics_count_what_the_totals_count(events_run):
    [totals] = events_run["totals"]
    want = {
        ("air_quality_sampled_total",): totals["sampled"],
        ("air_quality_gap_events_total", "gap"): totals["events:gap"],
        ("air_quality_gap_events_total", "sensor_offline"): totals["events:sensor_offline"],
        ("air_quality_epa_corrections_total", "applied"): totals["epa:applied"],
        ("air_quality_epa_corrections_total", "not_applied"): totals["missing:pm2.5_epa"],
    }
    for tag, n in totals.items():
        if tag.startswith("invalid:"):
            want[("air_quality_invalid_values_total", tag.split(":", 1)[1])] = n
    assert events_run["metrics"] == want
