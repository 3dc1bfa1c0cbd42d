"""The preparation stages on hand-made readings: validation, EPA correction, gaps, scaling,
sampling. Expectations are worked out by hand (or with numpy), never taken from the code."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core.readings import Reading
from preparation.correction import EpaCorrection, epa_pm25
from preparation.gaps import GapEvent, GapLogic, GapTracker, missed_steps
from preparation.sampling import Reservoir, SampleLogic
from preparation.scaling import Standardiser
from preparation.validation import DEFAULT_RANGES, RangeValidator

# --- validation -------------------------------------------------------------------------------


def test_default_ranges_remove_out_of_range_values_with_the_reason_and_keep_the_bounds():
    values = {
        "pm2.5_cf_1": 1000.0,  # bound: kept
        "pm10.0_cf_1": 1000.1,
        "pm1.0_atm": -0.5,
        "humidity": 100.0,  # bound: kept
        "humidity_a": 101.0,
        "temperature": -41.0,
        "pressure": 1100.0,  # bound: kept
        "latitude": 90.5,
        "longitude": -180.0,  # bound: kept
        "voc": 1e9,  # no range: unchecked
        "pm2.5_atm": None,  # missing stays missing, no reason
    }
    flags, counts = {}, {}
    out = RangeValidator().apply(values, flags, counts)
    assert out == {
        **values,
        "pm10.0_cf_1": None,
        "pm1.0_atm": None,
        "humidity_a": None,
        "temperature": None,
        "latitude": None,
    }
    assert flags == {
        "pm10.0_cf_1": "1000.1 outside [0, 1000]",
        "pm1.0_atm": "-0.5 outside [0, 1000]",
        "humidity_a": "101.0 outside [0, 100]",
        "temperature": "-41.0 outside [-40, 185]",
        "latitude": "90.5 outside [-90, 90]",
    }
    assert counts == {f"invalid:{name}": 1 for name in flags}
    assert values["latitude"] == 90.5  # the input is not changed


def test_validation_leaves_valid_readings_alone_and_takes_custom_ranges():
    values = {"humidity": 50.0, "pm2.5_cf_1": 3.0}
    flags, counts = {}, {}
    assert RangeValidator().apply(values, flags, counts) is values
    assert flags == {} and counts == {}
    check = RangeValidator({"pm2.5_cf_1": (0.0, 500.0)})
    assert check.validate({"pm2.5_cf_1": 600.0, "humidity": 120.0}) == (
        {"pm2.5_cf_1": None, "humidity": 120.0},
        {"pm2.5_cf_1": "600.0 outside [0, 500]"},
    )
    with pytest.raises(ValueError, match="lo <= hi"):
        RangeValidator({"humidity": (100.0, 0.0)})
    assert DEFAULT_RANGES["pm2.5_cf_1"] == (0.0, 1000.0)


# --- EPA correction ---------------------------------------------------------------------------


def test_epa_formula_by_hand():
    # 0.524 × 10 − 0.0862 × 40 + 5.75 = 5.24 − 3.448 + 5.75
    assert epa_pm25(10.0, 40.0) == pytest.approx(7.542, abs=1e-12)
    # unclipped: 0 − 8.62 + 5.75
    assert epa_pm25(0.0, 100.0) == pytest.approx(-2.87, abs=1e-12)


@pytest.mark.parametrize(
    ("values", "imputed", "want_value", "want_imputed", "want_missing", "want_flag", "code"),
    [
        ({"pm2.5_cf_1": 250.0, "humidity": 30.0}, [], 134.164, [], [], None, "applied"),
        (
            {"pm2.5_cf_1": 10.0, "humidity": 40.0},
            ["humidity"],
            7.542,
            ["humidity", "pm2.5_epa"],
            [],
            None,
            "applied",
        ),
        (
            {"pm2.5_cf_1": 250.1, "humidity": 30.0},
            [],
            None,
            [],
            ["pm2.5_epa"],
            "not applied: pm2.5_cf_1 above the valid range",
            "above_range",
        ),
        (
            {"pm2.5_cf_1": 10.0, "humidity": None},
            [],
            None,
            [],
            ["pm2.5_epa"],
            "not applied: humidity missing",
            "no_humidity",
        ),
        (
            {"pm2.5_cf_1": None, "humidity": 40.0},
            [],
            None,
            [],
            ["pm2.5_epa"],
            "not applied: pm2.5_cf_1 missing",
            "no_pm",
        ),
    ],
)
def test_epa_apply(values, imputed, want_value, want_imputed, want_missing, want_flag, code):
    """The 2021 correction alone (`extended=False`): None above 250."""
    values, imputed, missing, flags, counts = dict(values), list(imputed), [], {}, {}
    EpaCorrection(extended=False).apply(values, imputed, missing, flags, counts)
    if want_value is None:
        assert values["pm2.5_epa"] is None
    else:  # 0.524 × 250 − 0.0862 × 30 + 5.75 = 131 − 2.586 + 5.75
        assert values["pm2.5_epa"] == pytest.approx(want_value, abs=1e-12)
    assert imputed == want_imputed and missing == want_missing
    assert flags == ({} if want_flag is None else {"pm2.5_epa": want_flag})
    assert counts == {f"epa:{code}": 1}


# --- missing time steps -----------------------------------------------------------------------


def test_missed_steps_round_the_silence_to_whole_intervals():
    # 2-minute grid, last_seen jitter up to 30 s: 90..150 s is on time, 210..270 s one missed
    assert [missed_steps(s) for s in (90, 150, 179, 180, 210, 270, 299, 300, 3600)] == [
        0,
        0,
        0,
        1,
        1,
        1,
        1,
        2,
        29,
    ]


def reading(time, sensor=7, **values):
    return Reading(sensor, time, values or {"pm": 1.0, "humidity": 40.0})


def test_gap_events_mode_one_event_per_gap_and_offline_after_a_long_silence():
    gaps = GapTracker("events", interval=120, offline_after=3600)
    out = []
    for t in (0, 120, 250, 610, 4700):
        out.extend(gaps.observe(reading(t)))
    assert [x for x in out if isinstance(x, GapEvent)] == [
        GapEvent("gap", 7, 250, 360, 2, 610),  # 360 s: 2 missed steps
        GapEvent("sensor_offline", 7, 610, 4090, 33, 4700),  # 4090 s > 3600
        GapEvent("gap", 7, 610, 4090, 33, 4700),
    ]
    assert [x.time for x in out if isinstance(x, Reading)] == [0, 120, 250, 610, 4700]
    assert not any(x.placeholder for x in out if isinstance(x, Reading))


def test_gap_fill_mode_places_missing_readings_on_the_grid_but_not_over_offline_silences():
    gaps = GapTracker("fill", interval=120, offline_after=600)
    out = []
    for t in (1000, 1370, 2500):  # 370 s: 2 missed; 1130 s: offline, not filled
        out.extend(gaps.observe(reading(t)))
    placeholders = [x for x in out if isinstance(x, Reading) and x.placeholder]
    assert [(p.sensor_index, p.time, p.values) for p in placeholders] == [
        (7, 1120, {"pm": None, "humidity": None}),
        (7, 1240, {"pm": None, "humidity": None}),
    ]
    assert [x.time for x in out if isinstance(x, Reading)] == [1000, 1120, 1240, 1370, 2500]
    assert [x for x in out if isinstance(x, GapEvent)] == [
        GapEvent("sensor_offline", 7, 1370, 1130, 8, 2500)
    ]


def test_a_duplicate_or_late_reading_passes_through_and_does_not_move_time_back():
    gaps = GapTracker("events")
    out = []
    for t in (1000, 1000, 900, 1120):
        out.extend(gaps.observe(reading(t)))
    assert [x.time for x in out] == [1000, 1000, 900, 1120]
    assert gaps.last_time == 1120


@pytest.mark.parametrize("mode", ["events", "fill"])
def test_observe_all_equals_observe_one_at_a_time_at_every_boundary(mode):
    # steps on both sides of 1.5 intervals (179/180 s) and of offline_after, duplicates, late
    steps = [120, 179, 180, 181, 0, -30, 600, 601, 599, 1, 121, 359, 360]
    rng = np.random.default_rng(4)
    times = np.cumsum([1000, *rng.choice(steps, 400)]).tolist()
    one, batch = GapTracker(mode, 120, 600), GapTracker(mode, 120, 600)
    want = [x for t in times for x in one.observe(reading(t), arrived=5.0)]
    got = batch.observe_all([reading(t) for t in times], arrived=5.0)
    assert got == want
    assert vars(batch) == vars(one)


def test_system_clock_reports_a_silent_sensor_once_without_waiting_for_its_next_reading():
    t0 = datetime(2026, 4, 1, tzinfo=UTC)
    clock = [t0]
    logic = GapLogic(GapTracker("events", 120, 600), "system", now=lambda: clock[0])
    assert logic.notify_at() is None
    assert list(logic.on_batch([reading(5000)])[0]) == [reading(5000)]
    assert logic.notify_at() == t0 + timedelta(seconds=600)

    clock[0] = t0 + timedelta(seconds=700)  # the runtime wakes the logic after its wake time
    events, retain = logic.on_notify()
    assert list(events) == [GapEvent("sensor_offline", 7, 5000, 700, 5, None, "system")]
    assert retain is False and logic.notify_at() is None
    assert list(logic.on_notify()[0]) == []  # once per silence

    # the sensor comes back 1,000 s later in event time: a gap, but no second offline event
    clock[0] = t0 + timedelta(seconds=1000)
    out = list(logic.on_batch([reading(6000)])[0])
    assert out == [GapEvent("gap", 7, 5000, 1000, 7, 6000), reading(6000)]
    assert logic.notify_at() == t0 + timedelta(seconds=1600)
    snap = logic.snapshot()
    assert snap is not logic.tracker and pickle.loads(pickle.dumps(snap)).last_time == 6000


def test_event_clock_never_asks_for_a_wake_up_and_bad_configs_fail():
    logic = GapLogic(GapTracker())
    logic.on_batch([reading(10)])
    assert logic.notify_at() is None
    with pytest.raises(ValueError):
        GapTracker("interpolate")
    with pytest.raises(ValueError):
        GapTracker(interval=120, offline_after=60)
    with pytest.raises(ValueError):
        GapLogic(GapTracker(), clock="wall")


# --- scaling ----------------------------------------------------------------------------------


def numpy_z(past: list[float], x: float) -> float | None:
    if len(past) < 2 or np.std(past, ddof=1) == 0:
        return None
    return float((x - np.mean(past)) / np.std(past, ddof=1))


def test_standardiser_uses_only_the_past_and_matches_numpy():
    xs = [4.0, 7.0, 1.0, 9.0, 3.0, 12.0, 5.5, 8.25]
    scale = Standardiser(["pm"])
    for i, x in enumerate(xs):
        z = scale.transform_then_learn({"pm": x})["pm_z"]
        want = numpy_z(xs[:i], x)
        assert (z is None) == (want is None)
        if want is not None:
            assert z == pytest.approx(want, rel=1e-12)


def test_windowed_standardiser_matches_numpy_over_the_last_values():
    xs = [4.0, 7.0, 1.0, 9.0, 3.0, 12.0, 5.5, 8.25, 2.0]
    scale = Standardiser(["pm"], window=3)
    for i, x in enumerate(xs):
        z = scale.transform_then_learn({"pm": x})["pm_z"]
        want = numpy_z(xs[max(0, i - 3) : i], x)
        assert (z is None) == (want is None)
        if want is not None:
            assert z == pytest.approx(want, rel=1e-12)


def test_standardiser_in_the_flow_scales_imputed_values_without_learning_them():
    scale = Standardiser(["pm"])
    counts: dict[str, int] = {}
    for x in (1.0, 3.0):
        scale.apply({"pm": x}, [], counts)
    values, imputed = {"pm": 100.0}, ["pm"]  # imputed: scaled, flagged, not learnt
    scale.apply(values, imputed, counts)
    assert values["pm_z"] == pytest.approx((100.0 - 2.0) / np.sqrt(2.0), rel=1e-12)
    assert imputed == ["pm", "pm_z"]
    values = {"pm": 5.0}
    scale.apply(values, [], counts)
    assert values["pm_z"] == pytest.approx((5.0 - 2.0) / np.sqrt(2.0), rel=1e-12)
    assert counts == {"scaled:pm": 2}
    constant = Standardiser(["pm"])
    assert [constant.transform_then_learn({"pm": 2.0})["pm_z"] for _ in range(4)] == [None] * 4
    assert constant.transform({"pm": None}) == {"pm_z": None}
    with pytest.raises(ValueError):
        Standardiser(["pm"], min_count=1)


# --- sampling ---------------------------------------------------------------------------------


def test_reservoir_keeps_everything_until_full_then_follows_algorithm_r():
    sample = Reservoir(2, seed="s")
    for i in range(2):
        sample.offer(i)
    assert sample.items() == [0, 1]
    # Algorithm R, by hand: item n (1-based) replaces slot j = randrange(n) when j < 2
    rng = random.Random("s")
    slots = [0, 1]
    for n, item in enumerate(range(2, 6), start=3):
        j = rng.randrange(n)
        if j < 2:
            slots[j] = item
        sample.offer(item)
    assert sorted(sample.items()) == sorted(slots)
    assert sample.seen == 6


def test_reservoir_is_uniform_over_many_seeds():
    counts = np.zeros(10)
    runs = 4000
    for seed in range(runs):
        sample = Reservoir(3, seed)
        for i in range(10):
            sample.offer(i)
        assert len(sample.items()) == 3
        counts[sample.items()] += 1
    # each item is kept with probability 3/10; 4,000 runs: sd of a frequency ≈ 0.0072
    assert np.all(np.abs(counts / runs - 0.3) < 0.03)


def test_sample_logic_emits_its_sample_at_the_end_seeded_per_sensor():
    def run(sensor, seed=11):
        logic = SampleLogic(3, seed)
        for start in range(0, 50, 10):
            out, _ = logic.on_batch([reading(t, sensor) for t in range(start, start + 10)])
            assert list(out) == []
        return [r.time for r in logic.on_eof()[0]]

    a, b = run(1), run(2)
    assert len(a) == 3 and a == sorted(a) and a == run(1)
    rng_a, rng_b = Reservoir(3, "11:1"), Reservoir(3, "11:2")
    for t in range(50):
        rng_a.offer(t)
        rng_b.offer(t)
    assert (a, b) == (rng_a.items(), rng_b.items())
    assert SampleLogic(3, 11).on_eof()[0] == []
    with pytest.raises(ValueError):
        Reservoir(0)
