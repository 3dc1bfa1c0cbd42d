"""The neighbour rules and the area stage: geometry against a brute-force haversine oracle
(numpy), the published disagreement rule by hand, window completeness and which readings count,
pollution events, and the same alerts on 1 and 2 workers."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from bytewax.testing import TestingSink, cluster_main, run_main

from core.readings import Reading
from dataflows.air_quality import build_flow
from preparation.areas import AreaLogic, AreaWindow, Observation, Placed
from preparation.incidents import Incident
from preparation.neighbours import (
    Neighbourhood,
    NeighbourRule,
    area_of,
    areas_near,
    disagreements,
    robust_centre,
)

EARTH_KM = 6371.0088


def haversine_km(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(a))


# --- geometry ---------------------------------------------------------------------------------


def test_balltree_neighbours_equal_a_brute_force_search():
    rng = np.random.default_rng(4)
    lat, lon = rng.uniform(37.2, 38.0, 300), rng.uniform(-122.6, -121.7, 300)
    found = Neighbourhood(lat, lon, 10.0).within(range(300))
    for i in range(300):
        d = haversine_km(lat[i], lon[i], lat, lon)
        want = {j for j in np.flatnonzero(d <= 10.0) if j != i}
        assert set(found[i].tolist()) == want


@pytest.mark.parametrize(
    ("lat_range", "lon_range"),
    [((37.0, 38.5), (-123.0, -121.5)), ((-0.5, 0.5), (179.5, 180.0)), ((69.0, 71.0), (10.0, 14.0))],
)
def test_every_neighbour_reaches_the_home_area(lat_range, lon_range):
    """Whatever two sensors within the radius, the neighbour is sent to the other's home area
    (bay area; across the antimeridian; far north, where cells are wide)."""
    rng = np.random.default_rng(5)
    lat = rng.uniform(*lat_range, 400)
    lon = (rng.uniform(*lon_range, 400) + 180.0) % 360.0 - 180.0
    for km in (10.0, 30.0):
        homes = [area_of(a, b, km) for a, b in zip(lat, lon, strict=True)]
        reach = [set(areas_near(a, b, km, 10.0)) for a, b in zip(lat, lon, strict=True)]
        for i in range(400):
            close = np.flatnonzero(haversine_km(lat[i], lon[i], lat, lon) <= 10.0)
            for j in close:
                assert homes[i] in reach[j], (i, j)
            assert homes[i] == next(iter(areas_near(lat[i], lon[i], km, 10.0)))


# --- the published rule -----------------------------------------------------------------------


def test_robust_centre_and_the_rule_by_hand():
    assert robust_centre([10.0, 12.0, 11.0, 13.0]) == (11.5, 1.4826 * 1.0)
    rule = NeighbourRule()
    # low levels: |x − centre| > 30 µg/m³
    assert rule.side(40.1, 10.0, 0.5) == 1 and rule.side(40.0, 10.0, 0.5) == 0
    assert rule.side(-24.6, 5.5, 0.5) == -1
    # in proportion to the level: |x − centre| > 50 % of it (a 17 % unit-to-unit gap is not off)
    assert rule.side(150.1, 100.0, 10.0) == 1 and rule.side(149.9, 100.0, 10.0) == 0
    assert rule.side(49.9, 100.0, 10.0) == -1 and rule.side(83.0, 100.0, 2.0) == 0
    assert rule.side(30.0, 100.0, 2.0) == -1
    # or more than twice the neighbours' spread when they spread wider (spread floored at 1)
    assert rule.side(160.0, 100.0, 31.0) == 0 and rule.side(163.0, 100.0, 31.0) == 1
    assert NeighbourRule(abs_limit=15).side(25.1, 10.0, 0.5) == 1
    assert NeighbourRule(abs_limit=0, rel_limit=0).side(52.5, 50.0, 0.1) == 1  # 2.5 > 2 × 1
    assert rule.disagrees(30.0, 80.0, 5.0) and not rule.disagrees(60.0, 80.0, 5.0)
    with pytest.raises(ValueError):
        NeighbourRule(event_share=0.0)
    with pytest.raises(ValueError):
        NeighbourRule(open_windows=5, of_windows=4)


def test_disagreements_need_enough_neighbours():
    # four sensors 1 km apart on a line, one 50 km off
    lat = [37.0 + k / 111.2 for k in range(4)] + [37.45]
    lon = [-122.0] * 5
    got = disagreements(NeighbourRule(), lat, lon, [5.0, 6.0, 7.0, 60.0, 5.0], range(5))
    assert got[4] is None  # no neighbour within 10 km
    assert [g[:2] for g in got[:4]] == [(3, 0), (3, 0), (3, 0), (3, 1)]
    assert got[3][2] == 6.0  # centre: median of 5, 6, 7


# --- the area stage ---------------------------------------------------------------------------


def obs(sensor, time, value=5.0, home=True, lat=None, ok=True):
    lat = 37.0 + sensor / 1000 if lat is None else lat
    reading = Reading(sensor, time, {"pm2.5_cf_1": value}) if home else None
    return Observation(sensor, time, lat, -122.0, value, ok, reading)


def placed(out):
    return [(p.reading.sensor_index, p.reading.time, tuple(p.reasons), p.event) for p in out
            if type(p) is Placed]  # fmt: skip


def test_a_window_closes_only_when_every_member_has_passed_it():
    logic = AreaLogic(NeighbourRule(min_neighbours=1), window=600, grace=0, offline_after=3600)
    out, _ = logic.on_batch([obs(1, 0), obs(2, 0)])  # first readings: never compared
    assert placed(out) == [(1, 0, (), False), (2, 0, (), False)]
    out, _ = logic.on_batch([obs(1, 120), obs(1, 240), obs(1, 600)])
    assert placed(out) == []  # sensor 2 has not passed 600 yet
    out, _ = logic.on_batch([obs(2, 130), obs(2, 610)])
    assert sorted(placed(out)) == [(1, 120, (), False), (1, 240, (), False), (2, 130, (), False)]
    # a window is judged once: the same readings in another order give the same verdict
    other = AreaLogic(NeighbourRule(min_neighbours=1), window=600, grace=0, offline_after=3600)
    got = []
    for batch in ([obs(2, 0), obs(2, 130)], [obs(1, 0), obs(1, 120)], [obs(2, 610)],
                  [obs(1, 240), obs(1, 600)]):  # fmt: skip
        got += placed(other.on_batch(batch)[0])
    assert sorted(got) == sorted(placed(out) + [(1, 0, (), False), (2, 0, (), False)])


def test_which_readings_count_is_decided_by_each_sensors_own_sequence():
    logic = AreaLogic(NeighbourRule(min_neighbours=1), window=600, grace=300, offline_after=1000)
    batch = [obs(1, 0), obs(1, 200), obs(1, 400), obs(1, 400), obs(1, 2000), obs(1, 2100)]
    out, _ = logic.on_batch(batch)
    now = placed(out)
    # first, within the grace (200), a repeat (400 again), back after silence (2000): at once;
    # then window 0 closes (the sensor passed 600) with the first 400
    assert now == [(1, 0, (), False), (1, 200, (), False), (1, 400, (), False),
                   (1, 2000, (), False), (1, 400, (), False)]  # fmt: skip
    assert logic.counts["spatial:unplaced"] == 4
    out, _ = logic.on_eof()
    assert placed(out) == [(1, 2100, (), False)]
    assert out[-1]["spatial:windows"] == 2


def test_a_silent_member_holds_windows_back_until_it_reports_or_the_input_ends():
    """A window waits for a member heard less than `offline_after` before it began: its next
    reading may still fall in the window. The wait depends on data only, never on arrival."""
    logic = AreaLogic(NeighbourRule(min_neighbours=1), window=600, grace=0, offline_after=1200)
    logic.on_batch([obs(1, 0), obs(2, 0), obs(2, 120)])  # sensor 1 then falls silent
    out, _ = logic.on_batch([obs(2, t) for t in range(240, 2600, 120)])
    # windows 0-2 (starts 0, 600, 1200 <= 0 + 1200) wait for sensor 1; later ones wait for them
    assert placed(out) == []
    out, _ = logic.on_batch([obs(1, 2700)])  # back after more than 1200 s: not compared
    assert (1, 2700, (), False) in placed(out)
    assert {(2, 120, (), False), (2, 2280, (), False)} <= set(placed(out))
    out, _ = logic.on_eof()
    assert (2, 2400, (), False) in placed(out) and (2, 2520, (), False) in placed(out)


def scene(logic, values, start, ok=True):
    """Sensors 1 km apart on a line, one window of readings at `values` (at start + 60, ...,
    + 540), then one reading each at start + 600 (the next window's) so that it closes;
    returns what leaves."""
    batch = []
    for t in [*range(start + 60, start + 600, 120), start + 600]:
        batch += [obs(s, t, v, lat=37.0 + s / 111.2, ok=ok) for s, v in enumerate(values)]
    return logic.on_batch(batch)[0]


def test_a_local_source_is_reported_after_three_of_four_windows_and_a_pollution_event():
    logic = AreaLogic(NeighbourRule(), window=600, grace=0, offline_after=3600, clear=1200)
    clean = [5.0 + s * 0.1 for s in range(10)]
    scene(logic, clean, 0)
    for k in range(1, 5):  # baselines
        scene(logic, clean, 600 * k)
    bad = list(clean)
    bad[3] = 60.0  # one sensor 55 µg/m³ above its neighbours (on agreeing channels)
    bad[7] = 0.5  # one 5 below: within the tolerance
    got = []
    for start in (3000, 3600, 4200):
        out = scene(logic, bad, start)
        got.append({(s, reasons) for s, _t, reasons, _e in placed(out) if reasons})
    # judged over several windows: reported from the third off window on, as a local source
    assert got == [set(), set(), {(3, ("above_neighbours",))}]
    alert = next(p for p in out if type(p) is Placed and p.reasons)
    # the median of the nine others (0.5, 5.0, 5.1, 5.2, 5.4, 5.5, 5.6, 5.8, 5.9)
    assert alert.neighbours == {"centre": 5.4, "excess": 54.6, "ratio": 11.111}
    windows = [w for w in out if type(w) is AreaWindow]
    assert [w.event for w in windows] == [False]
    out = scene(logic, clean, 4800)  # back among its neighbours: not reported
    assert not any(p.reasons for p in out if type(p) is Placed)
    smoke = [v + 80.0 for v in clean]  # everyone rises together
    out = scene(logic, smoke, 5400)
    windows = [w for w in out if type(w) is AreaWindow]
    assert windows[0].event and sorted(windows[0].rising) == list(range(10))
    assert all(e and not reasons for _s, _t, reasons, e in placed(out))
    # the baselines did not learn the plume
    assert logic.baselines[0][0] == pytest.approx(5.0, abs=0.01)
    resumed = AreaLogic(NeighbourRule(), 600, 0, 3600, pickle.loads(pickle.dumps(logic.snapshot())))
    assert resumed.baselines == logic.baselines and resumed.members == logic.members


def test_channel_faults_do_not_make_an_event():
    logic = AreaLogic(NeighbourRule(), window=600, grace=0, offline_after=3600)
    clean = [5.0] * 6
    for k in range(5):
        scene(logic, clean, 600 * k)
    out = scene(logic, [90.0] * 6, 3000, ok=False)  # every sensor's channels disagree
    assert [w.event for w in out if type(w) is AreaWindow] == [False]
    assert [w.rising for w in out if type(w) is AreaWindow] == [[]]


# --- in the flow ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoky(tmp_path_factory):
    from data import simulate

    out = tmp_path_factory.mktemp("smoky")
    sim = simulate.generate(seed=2, n_sensors=60, hours=10, channels=True, smoke=1)
    return simulate.write(sim, out)[0]


def alerts(source, workers=1, **options):
    out, found = [], []
    flow = build_flow(
        str(source),
        output=TestingSink(out),
        events=TestingSink([]),
        incidents=TestingSink(found),
        **options,
    )
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return sorted(json.dumps(a, sort_keys=True) for a in out + found)


def test_spatial_alerts_are_the_same_on_one_and_two_workers(smoky):
    one = alerts(smoky)
    assert one == alerts(smoky, workers=2)
    kinds = {json.loads(a)["kind"] for a in one}
    assert "pollution_event" in kinds
    states = [json.loads(a).get("state") for a in one]
    assert states.count("open") >= states.count("close") > 0  # incidents, the same too
    assert any("above_neighbours" in json.loads(a)["reasons"] for a in one)
    # with smaller batches the readings interleave otherwise: still the same
    assert one == alerts(smoky, workers=2, batch_size=37)


def test_the_spatial_stage_can_be_turned_off(smoky):
    off = [json.loads(a) for a in alerts(smoky, spatial=False)]
    assert {a["kind"] for a in off} <= {"sensor_fault", "anomaly"}
    assert not any("above_neighbours" in a["reasons"] for a in off)
    assert math.isfinite(len(off))


def test_the_snapshot_evaluation_applies_the_flows_rule(tmp_path):
    from evaluation.spatial import snapshot_flags

    lat = [37.0 + k / 111.2 for k in range(5)]
    rows = [[k, lat[k], -122.0, v] for k, v in enumerate([5.0, 6.0, 7.0, 90.0, 5.5])]
    rows.append([9, None, -122.0, 3.0])  # no position: not judged
    doc = {"fields": ["sensor_index", "latitude", "longitude", "pm2.5_cf_1"], "data": rows}
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(doc))
    found = snapshot_flags(path)
    assert (found["sensors"], found["placed"], found["judged"]) == (6, 5, 5)
    assert [c["sensor_index"] for c in found["cases"]] == [3]  # 90 against a median of 5.75
    assert found["cases"][0]["centre"] == 5.75 and found["high"] == 1


def test_calibration_drift_is_a_daily_finding_never_an_alert():
    """One sensor reads 1.5 times its neighbours (within the tolerance: never off them) for
    two days, then as they do: one calibration_drift incident, open at the end of the second
    day, closed at the end of the first day back; no reading carries a reason."""
    rule = NeighbourRule(drift_windows=2, drift_days=2)
    day = 86400
    logic = AreaLogic(rule, window=600, grace=0, offline_after=3 * day, incidents=1800)
    found, reasons = [], []
    for d, ratio in enumerate((1.5, 1.5, 1.0, 1.0)):
        for k in range(3):
            out = scene(logic, [20.0 * ratio, 20.0, 20.5, 19.5, 20.0], d * day + 600 * k)
            found += [i for i in out if type(i) is Incident]
            reasons += [p.reasons for p in out if type(p) is Placed and p.reasons]
    assert reasons == []
    drift = [(i.state, i.kind, i.sensor_index, i.time, i.started, i.details) for i in found]
    assert drift == [
        ("open", "calibration_drift", 0, 2 * day, 0, {"ratio": 1.5, "days": 2}),
        ("close", "calibration_drift", 0, 3 * day, 0, {"ratio": 1.0, "days": 2}),
    ]


def test_a_plume_sensor_that_sat_high_is_inside_the_event():
    """During an event, a sensor up by more than `join_abs` on its own baseline is among the
    event's sensors though it did not rise by half (it sat at 40); one below is not."""
    logic = AreaLogic(NeighbourRule(), window=600, grace=0, offline_after=3600, incidents=1800)
    clean = [5.0, 5.2, 5.4, 5.6, 40.0, 6.0]
    for k in range(5):
        scene(logic, clean, 600 * k)
    smoke = [25.0, 25.2, 25.4, 25.6, 47.0, 8.0]  # the 40 sensor rose by 7 only, the 6 by 2
    out = scene(logic, smoke, 3000)
    [opened] = [i for i in out if type(i) is Incident and i.kind == "pollution_event"]
    assert opened.sensors == [0, 1, 2, 3, 4]
    assert {p.reading.sensor_index for p in out if type(p) is Placed and p.event} == {0, 1, 2, 3, 4}
