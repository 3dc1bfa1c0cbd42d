"""Tests for the PurpleAir poll simulator (``data/simulate.py``) and its shipped files.

The committed ``data/polls.jsonl`` and ``data/labels.csv`` are checked against a
fresh default generation, then read back the way a consumer would (JSON lines
and CSV) to check their shape, null rates and that every label matches the
readings it describes. Other properties use small runs to stay fast.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from data import simulate

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
START = simulate.DEFAULT_START
WARMUP_END = START + 3 * 3600
FIELDS = list(simulate.FIELDS)
COL = {name: i for i, name in enumerate(FIELDS)}
PM = [COL[name] for name in simulate.PM_FIELDS]
WEATHER = [COL[name] for name in simulate.WEATHER_FIELDS]
EXPECTED_FAULTS = {"spike": 40, "stuck": 8, "drift": 8, "dropout": 10}
# Inclusive reading-count range of each fault kind (spike 1-3 readings,
# stuck 1-3 h, drift 2-6 h, dropout 10 min - 2 h at one reading per 120 s).
READINGS_RANGE = {"spike": (1, 3), "stuck": (30, 90), "drift": (60, 180), "dropout": (5, 60)}


# --- Fixtures: the committed files, parsed -----------------------------------


@pytest.fixture(scope="module")
def polls() -> list[dict]:
    """The committed polls.jsonl, one dict per line."""
    with (DATA_DIR / "polls.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def labels() -> list[dict[str, str]]:
    """The committed labels.csv rows, as strings."""
    with (DATA_DIR / "labels.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def series(polls: list[dict]) -> dict[int, dict[int, list]]:
    """sensor_index -> {data_time_stamp: row} over every published row."""
    out: dict[int, dict[int, list]] = defaultdict(dict)
    for poll in polls:
        for row in poll["data"]:
            out[row[COL["sensor_index"]]][poll["data_time_stamp"]] = row
    return out


@pytest.fixture(scope="module")
def stamps(polls: list[dict]) -> list[int]:
    """The data_time_stamp of every poll, in file order."""
    return [poll["data_time_stamp"] for poll in polls]


def _readings(series: dict[int, dict[int, list]], label: dict[str, str]) -> list[list]:
    """The rows of the label's sensor whose last_seen lies in [start, end]."""
    start, end = int(label["start"]), int(label["end"])
    rows = series[int(label["sensor_index"])].values()
    return sorted(
        (r for r in rows if start <= r[COL["last_seen"]] <= end), key=lambda r: r[COL["last_seen"]]
    )


def _missing_polls(stamps: list[int], label: dict[str, str]) -> list[int]:
    """Polls a dropout covers: last_seen = T - (0..30 s), so T in [start, end + 30]."""
    start, end = int(label["start"]), int(label["end"])
    return [t for t in stamps if start <= t <= end + simulate.MAX_JITTER_S]


def _median_pm1(series: dict[int, dict[int, list]], sensor: int) -> float:
    """The sensor's median pm1.0_cf_1 over the whole run (its normal level)."""
    values = [r[COL["pm1.0_cf_1"]] for r in series[sensor].values()]
    return statistics.median(v for v in values if v is not None)


def _labels_of(labels: list[dict[str, str]], fault: str) -> list[dict[str, str]]:
    found = [label for label in labels if label["fault"] == fault]
    assert found, f"no {fault} labels"
    return found


# --- Determinism -------------------------------------------------------------


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    args = ["--seed", "11", "--sensors", "8", "--hours", "6"]
    for name in ("a", "b"):
        assert simulate.main([*args, "--out", str(tmp_path / name)]) == 0
    simulate.main(["--seed", "12", "--sensors", "8", "--hours", "6", "--out", str(tmp_path / "c")])
    for file in ("polls.jsonl", "labels.csv"):
        first = (tmp_path / "a" / file).read_bytes()
        assert first == (tmp_path / "b" / file).read_bytes()
        assert first != (tmp_path / "c" / file).read_bytes()


def test_committed_files_equal_a_fresh_default_generation(tmp_path: Path) -> None:
    simulate.write(simulate.generate(), tmp_path)
    for file in ("polls.jsonl", "labels.csv"):
        assert (tmp_path / file).read_bytes() == (DATA_DIR / file).read_bytes(), file


def test_python_api_matches_written_files(tmp_path: Path) -> None:
    sim = simulate.generate(seed=3, n_sensors=10, hours=8, start=1780000000)
    polls_path, labels_path = simulate.write(sim, tmp_path)
    lines = polls_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == sim.polls
    with labels_path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(simulate.LABEL_HEADER)
    assert rows[1:] == [
        [str(getattr(label, name)) for name in simulate.LABEL_HEADER] for label in sim.labels
    ]
    assert sim.polls[0]["data_time_stamp"] == 1780000000


# --- Shape of the polls ------------------------------------------------------


def test_each_line_is_a_compact_api_response() -> None:
    with (DATA_DIR / "polls.jsonl").open(encoding="utf-8") as fh:
        first = fh.readline().rstrip("\n")
    obj = json.loads(first)
    assert first == json.dumps(obj, separators=(",", ":"))
    assert list(obj) == [
        "api_version",
        "time_stamp",
        "data_time_stamp",
        "max_age",
        "firmware_default_version",
        "fields",
        "data",
    ]


def test_envelope_and_cadence(polls: list[dict], stamps: list[int]) -> None:
    assert len(polls) >= 720
    assert stamps == [START + 120 * k for k in range(len(polls))]
    assert stamps[-1] - stamps[0] >= 24 * 3600 - 120
    for poll in polls:
        assert poll["api_version"] == "V1.0.14-0.0.58"
        assert poll["time_stamp"] == poll["data_time_stamp"] + 3
        assert poll["max_age"] == 604800
        assert poll["firmware_default_version"] == "7.02"
        assert poll["fields"] == FIELDS


def test_rows_are_sorted_typed_and_in_range(polls: list[dict]) -> None:
    for poll in polls:
        t = poll["data_time_stamp"]
        indices = [row[0] for row in poll["data"]]
        assert indices == sorted(set(indices)), "rows sorted by unique sensor_index"
        for row in poll["data"]:
            assert len(row) == len(FIELDS)
            index, last_seen, lat, lon, rh, temp, pressure = row[:7]
            assert type(index) is int and 10_000 <= index < 1_000_000
            assert type(last_seen) is int and t - 30 <= last_seen <= t
            assert type(lat) is float and 37.0 < lat < 38.3
            assert type(lon) is float and -122.8 < lon < -121.5
            assert rh is None or (type(rh) is int and 0 <= rh <= 100)
            assert temp is None or (type(temp) is int and 35 <= temp <= 100)
            assert pressure is None or (type(pressure) is float and 1000 < pressure < 1025)
            assert pressure is None or round(pressure, 2) == pressure
            for i in PM:
                value = row[i]
                assert value is None or (type(value) is float and value >= 0)
                assert value is None or round(value, 1) == value


def test_sensors_have_fixed_locations_and_increasing_last_seen(
    series: dict[int, dict[int, list]],
) -> None:
    assert len(series) >= 50
    for rows_by_time in series.values():
        rows = [rows_by_time[t] for t in sorted(rows_by_time)]
        assert len({(r[COL["latitude"]], r[COL["longitude"]]) for r in rows}) == 1
        lat, lon = rows[0][COL["latitude"]], rows[0][COL["longitude"]]
        assert round(lat, 6) == lat and round(lon, 6) == lon
        seen = [r[COL["last_seen"]] for r in rows]
        assert all(a < b for a, b in zip(seen, seen[1:], strict=False))


# --- Missing values ----------------------------------------------------------


def test_null_rates_and_grouping(polls: list[dict]) -> None:
    rows = [row for poll in polls for row in poll["data"]]
    weather_null = [row[COL["humidity"]] is None for row in rows]
    pm_null = [row[COL["pm1.0_cf_1"]] is None for row in rows]
    for row, w_null, p_null in zip(rows, weather_null, pm_null, strict=True):
        assert all((row[i] is None) == w_null for i in WEATHER), "BME280 fields fail together"
        assert all((row[i] is None) == p_null for i in PM), "PM fields fail together"
    assert 0.03 <= sum(weather_null) / len(rows) <= 0.05
    assert 0.0005 <= sum(pm_null) / len(rows) <= 0.003


def _longest_null_run(series: dict[int, dict[int, list]], column: int) -> int:
    """Longest run of consecutive null readings of `column` on any one sensor."""
    longest = 0
    for rows_by_time in series.values():
        run = 0
        for t in sorted(rows_by_time):
            run = run + 1 if rows_by_time[t][column] is None else 0
            longest = max(longest, run)
    return longest


def test_nulls_come_partly_in_runs(series: dict[int, dict[int, list]]) -> None:
    assert _longest_null_run(series, COL["humidity"]) >= 5
    assert _longest_null_run(series, COL["pm1.0_cf_1"]) >= 3


# --- Labels ------------------------------------------------------------------


def test_label_file_format_and_counts(labels: list[dict[str, str]]) -> None:
    with (DATA_DIR / "labels.csv").open(encoding="utf-8") as fh:
        assert fh.readline() == "sensor_index,fault,start,end,start_iso,end_iso\n"
    keys = [(int(label["start"]), int(label["sensor_index"])) for label in labels]
    assert keys == sorted(keys)
    counts = {fault: 0 for fault in EXPECTED_FAULTS}
    for label in labels:
        counts[label["fault"]] += 1
        for field in ("start", "end"):
            epoch = int(label[field])
            iso = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            assert label[f"{field}_iso"] == iso
        assert int(label["start"]) <= int(label["end"])
    assert counts == EXPECTED_FAULTS


def test_no_fault_in_the_first_three_hours(labels: list[dict[str, str]]) -> None:
    assert min(int(label["start"]) for label in labels) >= WARMUP_END


def test_faults_do_not_overlap_on_a_sensor(labels: list[dict[str, str]]) -> None:
    by_sensor: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for label in labels:
        by_sensor[label["sensor_index"]].append((int(label["start"]), int(label["end"])))
    for spans in by_sensor.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start > end


def test_fault_readings_exist_with_expected_lengths(
    labels: list[dict[str, str]], series: dict[int, dict[int, list]], stamps: list[int]
) -> None:
    for label in labels:
        lo, hi = READINGS_RANGE[label["fault"]]
        if label["fault"] == "dropout":
            assert lo <= len(_missing_polls(stamps, label)) <= hi
            continue
        readings = _readings(series, label)
        assert lo <= len(readings) <= hi, label
        assert readings[0][COL["last_seen"]] == int(label["start"])
        assert readings[-1][COL["last_seen"]] == int(label["end"])
        assert all(r[i] is not None for r in readings for i in PM), "fault readings have PM"


def test_spike_readings_are_far_above_normal(
    labels: list[dict[str, str]], series: dict[int, dict[int, list]]
) -> None:
    for label in _labels_of(labels, "spike"):
        normal = _median_pm1(series, int(label["sensor_index"]))
        for row in _readings(series, label):
            assert row[COL["pm1.0_cf_1"]] >= normal + 100
            assert row[COL["pm2.5_cf_1"]] > row[COL["pm1.0_cf_1"]]
            assert row[COL["pm10.0_cf_1"]] > row[COL["pm2.5_cf_1"]]


def test_stuck_readings_repeat_one_value(
    labels: list[dict[str, str]], series: dict[int, dict[int, list]]
) -> None:
    for label in _labels_of(labels, "stuck"):
        readings = _readings(series, label)
        assert len({tuple(r[i] for i in PM) for r in readings}) == 1
        # The weather fields keep moving: only the PM channels are frozen.
        temperatures = {r[COL["temperature"]] for r in readings} - {None}
        assert len(temperatures) > 1


def test_drift_ramps_up_then_returns_to_normal(
    labels: list[dict[str, str]], series: dict[int, dict[int, list]]
) -> None:
    for label in _labels_of(labels, "drift"):
        sensor = int(label["sensor_index"])
        pm1 = [r[COL["pm1.0_cf_1"]] for r in _readings(series, label)]
        quarter = len(pm1) // 4
        assert statistics.mean(pm1[-quarter:]) - statistics.mean(pm1[:quarter]) > 25
        assert pm1[-1] >= 50
        after = [r for t, r in series[sensor].items() if r[COL["last_seen"]] > int(label["end"])]
        if after:
            next_row = min(after, key=lambda r: r[COL["last_seen"]])
            assert next_row[COL["pm1.0_cf_1"]] < pm1[-1] - 40


def test_dropout_rows_are_absent_and_only_then(
    labels: list[dict[str, str]], series: dict[int, dict[int, list]], stamps: list[int]
) -> None:
    expected_absent: dict[int, set[int]] = defaultdict(set)
    for label in _labels_of(labels, "dropout"):
        missing = _missing_polls(stamps, label)
        expected_absent[int(label["sensor_index"])].update(missing)
    for sensor, rows_by_time in series.items():
        absent = set(stamps) - set(rows_by_time)
        assert absent == expected_absent.get(sensor, set()), sensor


# --- Realism -----------------------------------------------------------------


def test_pm_channels_relate_like_purpleair(polls: list[dict]) -> None:
    for row in (row for poll in polls for row in poll["data"]):
        pm1, pm25, pm10, atm = (row[i] for i in PM)
        if pm1 is None:
            continue
        if pm1 >= 5:
            assert 1.15 <= pm25 / pm1 <= 1.8
            assert 1.0 <= pm10 / pm25 <= 1.3
        assert pm10 >= pm25
        if pm25 <= 30:
            assert atm == pm25
        elif pm25 > 40:
            assert 0.6 * pm25 < atm < pm25


def test_diurnal_cycles_and_weather_coupling(polls: list[dict]) -> None:
    pm1_by_hour: dict[int, list[float]] = defaultdict(list)
    temp_by_hour: dict[int, list[int]] = defaultdict(list)
    temps, hums = [], []
    for poll in polls:
        hour = ((poll["data_time_stamp"] + simulate.UTC_OFFSET_S) % 86400) // 3600
        for row in poll["data"]:
            pm1, temp, rh = row[COL["pm1.0_cf_1"]], row[COL["temperature"]], row[COL["humidity"]]
            if pm1 is not None:
                pm1_by_hour[hour].append(pm1)
            if temp is not None:
                temp_by_hour[hour].append(temp)
                temps.append(temp)
                hums.append(rh)

    def pooled(by_hour: dict, hours: range) -> list:
        return [v for h in hours for v in by_hour[h]]

    night, afternoon = range(0, 8), range(13, 18)
    assert statistics.median(pooled(pm1_by_hour, night)) > 1.4 * statistics.median(
        pooled(pm1_by_hour, afternoon)
    )
    assert (
        statistics.mean(pooled(temp_by_hour, afternoon))
        > statistics.mean(pooled(temp_by_hour, night)) + 10
    )
    assert np.corrcoef(temps, hums)[0, 1] < -0.6
    assert min(temps) >= 45 and max(temps) <= 90


# --- Sizes and arguments -----------------------------------------------------


def test_short_runs_have_no_faults() -> None:
    sim = simulate.generate(seed=5, n_sensors=20, hours=3)
    assert sim.labels == []
    assert sim.present.all()


def test_large_runs_are_vectorized_and_scale_faults() -> None:
    sim = simulate.generate(seed=1, n_sensors=10_000, hours=3.5)
    assert sim.present.shape == (105, 10_000)
    assert len(np.unique(sim.sensor_index)) == 10_000
    assert np.all(np.diff(sim.sensor_index) > 0)
    stats = simulate.summarize(sim)
    # 14 post-warm-up polls x 10,000 sensors vs 629 x 60 in the default run.
    expected_spikes = 40 * (14 * 10_000) / (629 * 60)
    assert math.isclose(stats["faults"]["spike"], expected_spikes, rel_tol=0.05)
    assert stats["faults"]["dropout"] > 0
    assert min(label.start for label in sim.labels) >= WARMUP_END
    assert 0.03 <= stats["weather_null_rate"] <= 0.05
    first = next(sim.iter_polls())
    assert len(first["data"]) == 10_000


@pytest.mark.parametrize("kwargs", [{"n_sensors": 0}, {"hours": 0}, {"hours": 0.01}])
def test_rejects_empty_runs(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        simulate.generate(**kwargs)
