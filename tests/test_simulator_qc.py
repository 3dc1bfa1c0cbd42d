"""The simulator's quality-control scenario (`data/qc.py`): two channels, channel faults, smoke
plumes labelled as events, real positions; and the per-kind evaluation (`evaluation/kinds.py`).

Properties are read back from the written polls and labels as a consumer would (JSON and CSV)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import numpy as np
import pytest

from data import qc, simulate
from evaluation.detection import Episode
from evaluation.kinds import Alert, evaluate


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    out = tmp_path_factory.mktemp("qc")
    sim = simulate.generate(seed=3, n_sensors=30, hours=12, channels=True, smoke=1)
    polls_path, labels_path = simulate.write(sim, out)
    polls = [json.loads(line) for line in polls_path.read_text().splitlines()]
    with labels_path.open() as fh:
        labels = list(csv.DictReader(fh))
    return sim, polls, labels


def rows_by_sensor(polls):
    out = defaultdict(list)
    for poll in polls:
        for row in poll["data"]:
            r = dict(zip(poll["fields"], row, strict=True))
            out[r["sensor_index"]].append(r)
    return out


def test_the_plain_run_is_unchanged_by_the_new_options():
    plain = simulate.generate(seed=3, n_sensors=5, hours=6)
    assert plain.fields == simulate.FIELDS
    assert "pm2.5_cf_1_a" not in plain.columns
    again = simulate.generate(seed=3, n_sensors=5, hours=6, channels=False, smoke=0)
    assert plain.polls == again.polls and plain.labels == again.labels


def test_channels_are_published_and_their_mean_is_the_combined_field(scenario):
    _sim, polls, _labels = scenario
    assert polls[0]["fields"][-8:] == list(simulate.CHANNEL_FIELDS)
    for rows in rows_by_sensor(polls).values():
        for r in rows:
            for name in simulate.PM_FIELDS:
                a, b, mean = r[name + "_a"], r[name + "_b"], r[name]
                if mean is None:
                    assert a is None and b is None
                    continue
                assert abs(mean - (a + b) / 2) <= 0.1 + 1e-9  # each rounded to 0.1


def test_channel_faults_break_one_channel(scenario):
    _sim, polls, labels = scenario
    rows = rows_by_sensor(polls)
    kinds = defaultdict(int)
    for label in labels:
        if not label["fault"].startswith("channel_"):
            continue
        kinds[label["fault"]] += 1
        inside = [
            r
            for r in rows[int(label["sensor_index"])]
            if int(label["start"]) <= r["last_seen"] <= int(label["end"])
        ]
        assert len(inside) >= 30
        a = np.array([r["pm2.5_cf_1_a"] for r in inside])
        b = np.array([r["pm2.5_cf_1_b"] for r in inside])
        if label["fault"] == "channel_dead":
            assert (a == 0).all() or (b == 0).all()
        else:  # one channel 2-4x plus 10-40 µg/m³ (each channel has its own 4 % noise)
            high, other = (a, b) if a.mean() > b.mean() else (b, a)
            assert (high >= 1.6 * other + 9.5).all()
            assert np.median((high - 10) / other) >= 2.0 * 0.95
    assert kinds["channel_dead"] >= 1 and kinds["channel_high"] >= 1


def test_smoke_is_labelled_per_sensor_where_the_plume_adds_pm(scenario):
    sim, polls, labels = scenario
    smoke = [x for x in labels if x["fault"] == "smoke"]
    assert len({x["sensor_index"] for x in smoke}) >= 10  # a regional event
    rows = rows_by_sensor(polls)
    # a smoke label's readings are far above the same sensor's readings outside any label
    for label in smoke:
        sensor = int(label["sensor_index"])
        inside = [
            r["pm2.5_cf_1_a"]
            for r in rows[sensor]
            if int(label["start"]) <= r["last_seen"] <= int(label["end"])
            and r["pm2.5_cf_1_a"] is not None
        ]
        clear = [
            r["pm2.5_cf_1_a"]
            for r in rows[sensor]
            if r["last_seen"] < simulate.DEFAULT_START + 3 * 3600 and r["pm2.5_cf_1_a"] is not None
        ]
        assert np.median(inside) > np.median(clear) + 5
    # and it is an event on both channels alike: their ratio does not move
    assert all(x["start"] >= str(simulate.DEFAULT_START) for x in smoke)
    assert sim.labels == sorted(sim.labels, key=lambda x: (x.start, x.sensor_index))


def test_plumes_and_runs_by_hand():
    plume = qc.Plume(1000, 7200.0, 37.5, -122.0, 0.0, 0.0, 10.0, 100.0)
    last_seen = np.array([[1000], [1000 + 3600], [1000 + 3600]])
    lat, lon = np.array([37.5]), np.array([-122.0])
    added = qc.smoke_pm25([plume], last_seen, lat, lon)
    assert added[:, 0].tolist() == [0.0, 100.0, 100.0]  # ramp from 0, at the centre
    far = qc.smoke_pm25([plume], last_seen[1:2], np.array([37.5 + 20 / 111.2]), lon)
    assert far[0, 0] == pytest.approx(100.0 * np.exp(-(20.0**2) / 200.0))  # 2σ away
    assert qc.smoke_runs(np.array([[0.0, 20.0], [11.0, 20.0], [12.0, 5.0], [0.0, 30.0]])) == [
        (0, 1, 2),
        (1, 0, 1),
        (1, 3, 3),
    ]


def test_real_layout_takes_positions_and_levels_from_a_payload(tmp_path):
    doc = {
        "fields": ["sensor_index", "latitude", "longitude", "pm1.0_cf_1"],
        "data": [
            [1, 37.5, -122.0, 3.0],
            [2, 37.6, -122.1, 0.1],  # level 0.5 at least
            [3, 40.0, -122.0, 3.0],  # outside the region
            [4, 37.7, -122.2, 400.0],  # a fault or an event, not a baseline
            [5, 37.8, -122.3, None],
        ],
    }
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(doc))
    lat, lon, level = qc.real_layout(path, 2, 0, simulate.LAT_RANGE, simulate.LON_RANGE)
    assert sorted(zip(lat, lon, level, strict=True)) == [(37.5, -122.0, 3.0), (37.6, -122.1, 0.5)]
    with pytest.raises(ValueError, match="2 sensors in the region, 3 wanted"):
        qc.real_layout(path, 3, 0, simulate.LAT_RANGE, simulate.LON_RANGE)


def test_kind_evaluation_by_hand():
    labels = [
        Episode(1, "stuck", 100, 200),
        Episode(1, "smoke", 300, 400),
        Episode(2, "smoke", 300, 400),
        Episode(3, "channel_dead", 100, 200),
        Episode(4, "dropout", 100, 200),
    ]
    alerts = [
        Alert(1, 150, "sensor_fault", ("flatline",)),  # right, found stuck at +50
        Alert(1, 350, "sensor_fault", ("neighbour_disagreement",)),  # a plume reading: wrong
        Alert(2, 320, "pollution_event", ("score",)),  # right, found smoke at +20
        Alert(2, 500, "pollution_event", ("score",)),  # outside: wrong
        Alert(3, 50, "anomaly", ("score",)),  # outside anything: wrong
        Alert(3, 120, "anomaly", ("score",)),  # inside a fault: right, but not "found"
    ]
    readings = [(1, 350), (1, 360), (2, 320), (2, 330), (1, 150)]
    report = evaluate(alerts, labels, readings)
    assert report.alerts == {"sensor_fault": 2, "pollution_event": 2, "anomaly": 2}
    assert report.right == {"sensor_fault": 1, "pollution_event": 1, "anomaly": 1}
    assert (report.per_label["stuck"].found, report.per_label["stuck"].delays) == (1, [50])
    assert (report.per_label["smoke"].episodes, report.per_label["smoke"].found) == (2, 1)
    assert report.per_label["channel_dead"].found == 0
    assert report.per_label["channel_dead"].found_any == 1
    assert "dropout" not in report.per_label
    assert (report.plume_readings, report.plume_faults) == (4, 1)
    incidents = [
        {"id": "a", "kind": "pollution_event", "state": "open", "time": "1970-01-01T00:05:00Z",
         "sensors": [2]},
        {"id": "a", "kind": "pollution_event", "state": "close", "time": "1970-01-01T00:06:00Z",
         "sensors": [2]},
    ]  # fmt: skip
    report = evaluate(alerts, labels, readings, incidents)
    assert (report.plume_sensors, report.plume_sensors_in_incident) == (2, 1)
