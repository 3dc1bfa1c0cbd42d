"""The per-sensor quality-control rules and corrections on hand-made readings: channel agreement,
flatline, the extended EPA correction, NowCast and AQI. Expectations are worked out by hand from
the published rules (or computed here from their definitions), never taken from the code."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from preparation.aqi import NowCast, aqi, category
from preparation.channels import ChannelAgreement, disagree
from preparation.correction import EpaCorrection, epa_pm25_extended
from preparation.flatline import Flatline
from preparation.reasons import FAULTS, kind_of

# --- channel agreement ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        (10.0, 15.0, False),  # |A−B| = 5: not > 5
        (2.0, 7.1, True),  # 5.1 > 5 and 2·5.1/9.1 = 112 % > 70 %
        (20.0, 26.0, False),  # 6 > 5 but 2·6/46 = 26 %
        (100.0, 200.0, False),  # 100 > 5 but 2·100/300 = 67 %
        (100.0, 210.0, True),  # 2·110/310 = 71 %
        (0.0, 4.9, False),  # 4.9 ≤ 5
    ],
)
def test_the_epa_rule_by_hand(a, b, want):
    assert disagree(a, b) is want
    assert disagree(b, a) is want


def channels(a, b, **extra):
    """A reading's PM fields with channels A and B, the combined field their mean."""
    return {"pm2.5_cf_1": (a + b) / 2, "pm2.5_cf_1_a": a, "pm2.5_cf_1_b": b, **extra}


def test_agreeing_channels_pass_unchanged_and_set_the_trusted_value():
    check = ChannelAgreement()
    values, flags, reasons, counts = channels(10.0, 11.0), {}, [], {}
    assert check.apply(values, flags, reasons, counts) is values
    assert (flags, reasons, counts, check.last) == ({}, [], {}, 10.5)


def test_disagreement_without_history_keeps_neither_channel():
    check = ChannelAgreement()
    values, flags, reasons, counts = channels(3.0, 40.0), {}, [], {}
    out = check.apply(values, flags, reasons, counts)
    assert out["pm2.5_cf_1"] is None
    assert out["pm2.5_cf_1_a"] is None and out["pm2.5_cf_1_b"] is None
    assert reasons == ["channel_disagreement"]
    assert counts == {"channels:channel_disagreement": 1}
    assert flags == {"channels": "A 3.0, B 40.0: neither kept"}
    assert values["pm2.5_cf_1_a"] == 3.0  # the input is not changed


def test_disagreement_keeps_the_channel_that_agrees_with_the_last_trusted_value():
    check = ChannelAgreement()
    check.apply(channels(8.0, 9.0), {}, [], {})  # trusted: 8.5
    fields = {"pm1.0_cf_1": 20.0, "pm1.0_cf_1_a": 5.0, "pm1.0_cf_1_b": 35.0}
    out = check.apply(channels(9.0, 60.0, **fields), {}, reasons := [], {})
    assert reasons == ["channel_disagreement"]
    assert out["pm2.5_cf_1"] == 9.0 and out["pm2.5_cf_1_b"] is None
    assert out["pm1.0_cf_1"] == 5.0 and out["pm1.0_cf_1_b"] is None  # every field from A
    assert check.last == 9.0  # the kept channel is the new trusted value
    # the bad channel drifts on; A follows the air, which moves away from 8.5 slowly
    for a in (10.0, 12.0, 14.5, 17.0):
        out = check.apply(channels(a, 80.0), {}, [], {})
        assert out["pm2.5_cf_1"] == a
    # both far from the trusted value: neither
    out = check.apply(channels(60.0, 80.0 + 100.0), {}, reasons := [], {})
    assert out["pm2.5_cf_1"] is None and reasons == ["channel_disagreement"]


@pytest.mark.parametrize(
    ("a", "b", "code", "kept"),
    [(0.0, 12.0, "channel_zero", 12.0), (7.0, 0.0, "channel_zero", 7.0), (0.0, 1.5, None, 0.75)],
)
def test_a_dead_channel_at_zero_keeps_the_other(a, b, code, kept):
    out = ChannelAgreement().apply(channels(a, b), {}, reasons := [], {})
    assert out["pm2.5_cf_1"] == kept
    assert reasons == ([] if code is None else [code])


@pytest.mark.parametrize(
    ("flag", "kept", "reasons"),
    [(0, 5.25, []), (1, 5.5, ["channel_downgraded"]), (2, 5.0, ["channel_downgraded"])],
)
def test_purpleair_channel_flags_downgrade_a_channel(flag, kept, reasons):
    got = []
    out = ChannelAgreement().apply(channels(5.0, 5.5, channel_flags=flag), {}, got, {})
    assert out["pm2.5_cf_1"] == kept and got == reasons


def test_both_channels_downgraded_keep_none_and_flags_can_be_ignored():
    values = channels(5.0, 5.5, channel_flags=3)
    assert ChannelAgreement().apply(values, {}, [], {})["pm2.5_cf_1"] is None
    assert ChannelAgreement(use_flags=False).apply(values, {}, [], {}) is values


def test_a_reading_without_both_channels_passes_and_limits_are_options():
    values = {"pm2.5_cf_1": 30.0, "pm2.5_cf_1_a": 30.0, "pm2.5_cf_1_b": None}
    assert ChannelAgreement().apply(values, {}, [], {}) is values
    assert ChannelAgreement().apply({"pm2.5_cf_1": 3.0}, {}, [], {}) == {"pm2.5_cf_1": 3.0}
    loose = ChannelAgreement(abs_limit=50.0)
    assert loose.apply(channels(3.0, 40.0), {}, reasons := [], {})["pm2.5_cf_1"] == 21.5
    assert reasons == []
    with pytest.raises(ValueError):
        ChannelAgreement(abs_limit=-1.0)


def test_channel_state_pickles_and_copies_apart():
    check = ChannelAgreement()
    check.apply(channels(8.0, 9.0), {}, [], {})
    copy = check.copy()
    check.apply(channels(20.0, 21.0), {}, [], {})
    assert (copy.last, check.last) == (8.5, 20.5)
    assert pickle.loads(pickle.dumps(copy)).last == 8.5


# --- flatline ---------------------------------------------------------------------------------


def run_flatline(rule, readings):
    out = []
    for values in readings:
        reasons, flags = [], {}
        rule.apply(values, flags, reasons, {})
        out.append(bool(reasons))
    return out


def test_flatline_flags_from_the_nth_identical_reading_on():
    same = {"pm1.0_cf_1": 4.2, "pm2.5_cf_1": 6.1, "humidity": 40.0}
    moving = [{**same, "humidity": 40.0 + i} for i in range(20)]  # weather moves, PM frozen
    got = run_flatline(Flatline(15), moving + [{**same, "pm2.5_cf_1": 6.2}])
    assert got == [False] * 14 + [True] * 6 + [False]


def test_zeros_at_a_clean_site_are_not_a_flatline_unless_everything_freezes():
    zeros = {"pm1.0_cf_1": 0.0, "pm2.5_cf_1": 0.0}
    clean = [{**zeros, "humidity": 40.0 + (i % 3)} for i in range(30)]
    assert not any(run_flatline(Flatline(15), clean))
    frozen = [{**zeros, "humidity": 40.0, "temperature": 70.0}] * 30
    assert run_flatline(Flatline(15), frozen) == [False] * 14 + [True] * 16
    # PM alone, all zero, nothing else observed: cannot tell, not flagged
    assert not any(run_flatline(Flatline(15), [zeros] * 30))


def test_missing_pm_or_a_new_field_layout_breaks_the_run():
    same = {"pm2.5_cf_1": 6.1, "humidity": 40.0}
    readings = [{**same, "humidity": float(i)} for i in range(10)]
    readings += [{"pm2.5_cf_1": None, "humidity": 1.0}]
    readings += [{**same, "humidity": float(i)} for i in range(10)]
    assert not any(run_flatline(Flatline(15), readings))
    other = [{**same, "humidity": float(i)} for i in range(10)]
    other += [{**same, "temperature": 1.0, "humidity": float(i)} for i in range(10)]
    assert not any(run_flatline(Flatline(15), other))


def test_flatline_state_survives_pickling_mid_run():
    rule = Flatline(5)
    same = {"pm2.5_cf_1": 6.1, "humidity": 40.0}
    run_flatline(rule, [same] * 3)
    resumed = pickle.loads(pickle.dumps(rule))
    assert run_flatline(resumed, [same] * 3) == [False, True, True]
    with pytest.raises(ValueError):
        Flatline(1)


# --- extended EPA correction ------------------------------------------------------------------


def test_extended_correction_by_hand():
    # below 570: the 2021 equation. 0.524·300 − 0.0862·40 + 5.75 = 157.2 − 3.448 + 5.75
    assert epa_pm25_extended(300.0, 40.0) == pytest.approx(159.502, abs=1e-9)
    # from 611: 4.21e-4·700² + 0.392·700 + 3.44 = 206.29 + 274.4 + 3.44, no humidity needed
    assert epa_pm25_extended(700.0, None) == pytest.approx(484.13, abs=1e-9)
    # 590: w = 0.0244·590 − 13.9 = 0.496; Q = 146.5501 + 231.28 + 3.44; L = 309.16 − 4.31 + 5.75
    q, low = 4.21e-4 * 590**2 + 0.392 * 590 + 3.44, 0.524 * 590 - 0.0862 * 50 + 5.75
    assert epa_pm25_extended(590.0, 50.0) == pytest.approx(0.496 * q + 0.504 * low, abs=1e-9)
    assert epa_pm25_extended(590.0, None) is None
    # the paper's anchors: about 300 at PA 570 (RH 50 %), about 400 at PA 611
    assert epa_pm25_extended(569.99, 50.0) == pytest.approx(300.1, abs=0.1)
    assert epa_pm25_extended(611.0, 50.0) == pytest.approx(400.1, abs=0.1)


def test_extended_correction_fills_what_the_2021_one_left_empty():
    values, imputed, missing = {"pm2.5_cf_1": 700.0, "humidity": 30.0}, [], []
    flags, counts = {}, {}
    EpaCorrection().apply(values, imputed, missing, flags, counts)
    assert values["pm2.5_epa"] == pytest.approx(484.13, abs=1e-9)
    assert counts == {"epa:applied": 1} and missing == [] and flags == {}
    values = {"pm2.5_cf_1": 700.0, "humidity": 30.0}
    EpaCorrection(extended=False).apply(values, [], missing := [], {}, counts := {})
    assert values["pm2.5_epa"] is None and counts == {"epa:above_range": 1}
    # humidity imputed: a value from PA 611 does not depend on it, so it is not marked imputed
    values, imputed = {"pm2.5_cf_1": 700.0, "humidity": 30.0}, ["humidity"]
    EpaCorrection().apply(values, imputed, [], {}, {})
    assert imputed == ["humidity"]
    values, imputed = {"pm2.5_cf_1": 400.0, "humidity": 30.0}, ["humidity"]
    EpaCorrection().apply(values, imputed, [], {}, {})
    assert imputed == ["humidity", "pm2.5_epa"]


# --- AQI and NowCast --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("c", "want"),
    [
        (0.0, 0),
        (9.0, 50),
        (9.09, 50),  # truncated to 9.0
        (9.1, 51),
        (35.4, 100),
        (35.5, 101),
        (55.4, 150),
        (55.5, 151),
        (125.4, 200),
        (125.5, 201),
        (225.4, 300),
        (225.5, 301),
        (325.4, 500),
        (900.0, 500),
        (-3.0, 0),
        # 20.0: (100 − 51)/(35.4 − 9.1)·(20 − 9.1) + 51 = 71.31
        (20.0, 71),
        # 150.0: (300 − 201)/(225.4 − 125.5)·(150 − 125.5) + 201 = 225.28
        (150.0, 225),
    ],
)
def test_aqi_at_the_2024_breakpoints(c, want):
    assert aqi(c) == want


def test_categories():
    assert [category(i) for i in (0, 50, 51, 100, 101, 151, 201, 300, 301, 500)] == [
        "Good",
        "Good",
        "Moderate",
        "Moderate",
        "Unhealthy for Sensitive Groups",
        "Unhealthy",
        "Very Unhealthy",
        "Very Unhealthy",
        "Hazardous",
        "Hazardous",
    ]


def reference_nowcast(times, values, now):
    """The EPA NowCast at time `now` from the definition: hourly means of the readings up to
    `now` in each of the last 12 clock hours (this one included), weights max(min/max, ½)."""
    hour = now // 3600
    means = []
    for k in range(12):
        inside = [max(v, 0.0) for t, v in zip(times, values, strict=True) if t // 3600 == hour - k]
        means.append(float(np.mean(inside)) if inside else None)
    if sum(m is not None for m in means[:3]) < 2:
        return None
    known = [m for m in means if m is not None]
    w = max(min(known) / max(known), 0.5) if max(known) > 0 else 1.0
    num = sum(w**k * m for k, m in enumerate(means) if m is not None)
    den = sum(w**k for k, m in enumerate(means) if m is not None)
    return num / den


def test_nowcast_equals_its_definition_on_a_random_day_with_gaps():
    rng = np.random.default_rng(3)
    times, values = [], []
    t = 0
    for _ in range(900):
        t += int(rng.choice([120, 120, 120, 240, 3000]))  # some silences of an hour or more
        times.append(t)
        values.append(float(rng.lognormal(2.0, 1.0)) - (1.0 if rng.random() < 0.05 else 0.0))
    nowcast = NowCast()
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        got = nowcast.update(t, v)
        want = reference_nowcast(times[: i + 1], values[: i + 1], t)
        if want is None:
            assert got is None
        else:
            assert got == pytest.approx(want, rel=1e-9)
    assert pickle.loads(pickle.dumps(nowcast)).past == nowcast.past


def test_nowcast_of_a_steady_level_is_that_level_and_reacts_to_a_plume():
    nowcast = NowCast()
    for t in range(0, 6 * 3600, 120):
        level = nowcast.update(t, 12.0)
    assert level == pytest.approx(12.0)
    for t in range(6 * 3600, 7 * 3600, 120):
        level = nowcast.update(t, 200.0)
    # c1 = 200, c2..c7 = 12 (hours 0-5), w = max(12/200, 0.5) = 0.5
    want = (200 + sum(0.5**k * 12 for k in range(1, 7))) / sum(0.5**k for k in range(7))
    assert level == pytest.approx(want) and math.isclose(want, 106.74, abs_tol=0.01)
    # (200 − 151)/(125.4 − 55.5)·(106.7 − 55.5) + 151 = 186.9
    assert aqi(level) == 187


# --- kinds ------------------------------------------------------------------------------------


def test_kinds():
    assert all(kind_of([code]) == "sensor_fault" for code in FAULTS)
    assert kind_of([]) == "anomaly" and kind_of(["score"], event=True) == "pollution_event"
    assert kind_of(["out_of_range", "score"], event=True) == "sensor_fault"


def test_sensor_incidents_open_once_and_close_after_a_clean_half_hour():
    from preparation.incidents import SensorIncidents, incident_record

    track = SensorIncidents(clear_after=1800)
    records = []
    for k in range(40):
        t = 1000 + 120 * k
        reasons = ["flatline"] if 5 <= k < 20 else (["channel_zero", "score"] if k == 21 else [])
        records += track.observe(3, t, reasons)
    # open at k=5; k=21 (120 s after k=20 had cleared? no: 240 s after the last flag) joins it;
    # close at the first clean reading 1,800 s after k=21, i.e. k=36
    assert [(r.state, (r.time - 1000) // 120) for r in records] == [("open", 5), ("close", 36)]
    assert records[1].reasons == ["channel_zero", "flatline"] and records[1].count == 16
    assert incident_record(records[1])["started"] == "1970-01-01T00:26:40Z"
