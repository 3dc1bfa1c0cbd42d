"""The column path's quality-control stages against the per-reading rules they twin (the oracle),
used as the per-sensor chain uses them: `FlatlineColumns` and `ChannelColumns` (chained) against
`preparation.flatline.Flatline` and `preparation.channels.ChannelAgreement`, `NowCastColumns`
against `preparation.aqi.NowCast` and `aqi`, `IncidentColumns` against
`preparation.incidents.SensorIncidents`, on random streams (`tests/qc_streams.py`, 1-row to
5,000-row calls): every value bit for bit, every flag, reason (in order), count and incident
record, the per-slot state too, with pickle round-trips mid-stream."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from columns.channels import ChannelColumns
from columns.flatline import FlatlineColumns
from columns.incidents import IncidentColumns
from columns.nowcast import NowCastColumns, aqi_values
from preparation.aqi import AQI_FIELD, NOWCAST_FIELD, NowCast, aqi
from preparation.channels import ChannelAgreement
from preparation.correction import EPA_FIELD
from preparation.flatline import Flatline
from preparation.incidents import SensorIncidents
from preparation.reasons import FLATLINE
from tests.qc_streams import Row, epa_stream, fault_stream, same_float, stream, work_of


def qc_options(seed: int) -> tuple[tuple[int, int], ChannelAgreement]:
    """A random flatline length (readings, seconds) and channel rule (the template the flow
    copies per sensor)."""
    rng = np.random.default_rng(seed + 1000)
    readings = (int(rng.choice([2, 3, 5, 15])), int(rng.choice([0, 360, 1800])))
    template = ChannelAgreement(
        float(rng.choice([5.0, 2.0, 0.0])),
        float(rng.choice([0.7, 0.3])),
        float(rng.choice([2.0, 0.5])),
        int(rng.choice([1, 3, 15])),
        zero_seconds=int(rng.choice([0, 360, 1800])),
        use_flags=bool(rng.random() < 0.8),
        history=bool(rng.random() < 0.8),
    )
    return readings, template


def per_reading(rows: list[Row], rules: dict, readings: tuple[int, int], template: ChannelAgreement,
                counts: dict) -> list[tuple[dict, dict, list]]:  # fmt: skip
    """The oracle: the per-sensor chain's flatline and channel steps, reading by reading."""
    out = []
    for row in rows:
        if row.sensor not in rules:
            rules[row.sensor] = (Flatline(*readings), template.copy())
        flatline, channels = rules[row.sensor]
        raw, flags, reasons = row.values, {}, []
        if not row.placeholder:
            flatline.apply(raw, flags, reasons, counts, row.time)
        raw = channels.apply(raw, flags, reasons, counts, row.time)
        out.append((raw, flags, reasons))
    return out


def check_call(work, want: list[tuple[dict, dict, list]]) -> None:
    fields = work.fields
    for i, (values, flags, reasons) in enumerate(want):
        assert [f for f in fields if f in values] == list(values)
        for j, name in enumerate(fields):
            # a field the rule added to other rows is NaN where the per-reading row has no key
            assert same_float(values.get(name), work.values[i, j]), (i, name)
        assert work.flags.get(i, {}) == flags and list(work.flags.get(i, {})) == list(flags)
        assert work.reasons.get(i, []) == reasons


def check_state(flatline: FlatlineColumns, channels: ChannelColumns, rules, slot_of) -> None:
    for sensor, (rule, check) in rules.items():
        slot = slot_of[sensor]
        assert (flatline.run_pm[slot], flatline.run_all[slot]) == (rule.run_pm, rule.run_all)
        assert (flatline.start_pm[slot], flatline.start_all[slot]) == (
            rule.start_pm,
            rule.start_all,
        )
        assert same_float(check.last, channels.last[slot])
        assert (channels.zeros_a[slot], channels.zeros_b[slot]) == (check.zeros_a, check.zeros_b)
        if check.zeros_a:
            assert channels.start_a[slot] == check.start_a
        if check.zeros_b:
            assert channels.start_b[slot] == check.start_b


def run_both(calls: list[list[Row]], slots: int, seed: int) -> dict[str, int]:
    readings, template = qc_options(seed)
    rng = np.random.default_rng(seed + 2000)
    flatline, channels = FlatlineColumns(*readings), ChannelColumns.of(template)
    rules: dict = {}
    slot_of: dict[int, int] = {}
    want_counts: dict[str, int] = {}
    got_counts: dict[str, int] = {}
    for number, rows in enumerate(calls):
        want = per_reading(rows, rules, readings, template, want_counts)
        work, at = work_of(rows, slot_of)
        flatline.grow(len(slot_of))
        channels.grow(len(slot_of))
        flatline.apply(work, at, got_counts)
        channels.apply(work, at, got_counts)
        check_call(work, want)
        assert got_counts == want_counts, number
        if rng.random() < 0.1:  # recovery: the shard's state from its pickle, the oracle's copy
            flatline, channels = pickle.loads(pickle.dumps((flatline, channels)))
            rules = {k: (pickle.loads(pickle.dumps(f)), c.copy()) for k, (f, c) in rules.items()}
    check_state(flatline, channels, rules, slot_of)
    return want_counts


@pytest.mark.parametrize("seed", range(40))
def test_flatline_and_channels_equal_the_per_reading_rules(seed):
    counts = run_both(*stream(seed, sensors=30, calls=120), seed)
    assert sum(counts.values()) > 0  # the stream made the rules fire


def test_every_rule_fires_across_the_seeds():
    """The streams reach every code (so the equivalence above covers each), in a few seeds."""
    seen: dict[str, int] = {}
    for seed in range(8):
        for tag, n in run_both(*stream(seed, sensors=30, calls=120), seed).items():
            seen[tag] = seen.get(tag, 0) + n
    assert set(seen) == {
        "flatline",
        "channels:channel_disagreement",
        "channels:channel_zero",
        "channels:channel_downgraded",
    }


@pytest.mark.parametrize("seed", [100, 101])
def test_big_calls_of_5000_rows_and_single_rows(seed):
    run_both(*stream(seed, sensors=5000, calls=30, big=4), seed)


def test_a_template_copied_keeps_every_option():
    rule = ChannelAgreement(1.0, 0.2, 3.0, 4, zero_seconds=700, test_field="pm1.0_cf_1",
                            fields=("pm1.0_cf_1",), use_flags=False, history=False)  # fmt: skip
    twin = ChannelColumns.of(rule)
    for name in ("abs_limit", "rel_limit", "zero_other", "zero_run", "zero_seconds", "test_a",
                 "test_b", "fields", "use_flags", "history"):  # fmt: skip
        assert getattr(twin, name) == getattr(rule, name)


# --- NowCast and AQI --------------------------------------------------------------------------


def nowcast_fields(rows: list[Row], nowcasts: dict[int, NowCast]) -> list[dict]:
    """The oracle: the per-sensor chain's NowCast step, reading by reading."""
    out = []
    for row in rows:
        nowcast = nowcasts.setdefault(row.sensor, NowCast())
        filled = dict(row.values)
        pm = filled.get(EPA_FIELD)
        if pm is None or row.placeholder or FLATLINE in row.reasons:
            filled[NOWCAST_FIELD] = filled[AQI_FIELD] = None
        else:
            level = nowcast.update(row.time, pm)
            filled[NOWCAST_FIELD] = level
            filled[AQI_FIELD] = None if level is None else float(aqi(level))
        out.append(filled)
    return out


def run_nowcast(calls: list[list[Row]], seed: int) -> int:
    rng = np.random.default_rng(seed + 3000)
    stage, nowcasts, slot_of, known = NowCastColumns(), {}, {}, 0
    for rows in calls:
        want = nowcast_fields(rows, nowcasts)
        work, at = work_of(rows, slot_of)
        stage.grow(len(slot_of))
        counts: dict[str, int] = {}
        stage.apply(work, at, counts)
        assert counts == {}
        for i, filled in enumerate(want):
            assert work.fields == list(filled)
            for j, name in enumerate(work.fields):
                assert same_float(filled[name], work.values[i, j]), (i, name, filled[name])
            known += filled[NOWCAST_FIELD] is not None
        if rng.random() < 0.1:
            stage = pickle.loads(pickle.dumps(stage))
            nowcasts = {k: pickle.loads(pickle.dumps(v)) for k, v in nowcasts.items()}
    return known


@pytest.mark.parametrize("seed", range(40))
def test_nowcast_and_aqi_equal_the_per_reading_ones(seed):
    calls, _ = epa_stream(seed)
    assert run_nowcast(calls, seed) > 0  # not only None


@pytest.mark.parametrize("seed", [200, 201])
def test_nowcast_on_big_calls_and_single_rows(seed):
    calls, _ = epa_stream(seed, sensors=5000, calls=40, big=4)
    run_nowcast(calls, seed)


def test_aqi_values_equal_aqi_at_every_tenth_and_between():
    levels = np.concatenate(
        [np.arange(0, 6000) / 10.0, np.random.default_rng(5).uniform(-5, 700, 20000), [-0.0]]
    )
    want = [float(aqi(c)) for c in levels.tolist()]
    got = aqi_values(levels)
    assert all(same_float(w, g) for w, g in zip(want, got.tolist(), strict=True))


# --- incidents --------------------------------------------------------------------------------


def run_incidents(calls: list[list[Row]], seed: int, clear_after: int) -> int:
    rng = np.random.default_rng(seed + 4000)
    stage, tracks, slot_of, made = IncidentColumns(clear_after), {}, {}, 0
    for rows in calls:
        want = []
        for row in rows:
            track = tracks.setdefault(row.sensor, SensorIncidents(clear_after))
            if not row.placeholder:
                want.extend(track.observe(row.sensor, row.time, row.reasons))
        work, at = work_of(rows, slot_of)
        stage.grow(len(slot_of))
        earlier = ["an earlier record"]
        got = stage.apply(work, at, {}, earlier)
        assert got is earlier and got[1:] == want
        assert all(type(i.time) is int and type(i.sensor_index) is int for i in got[1:])
        made += len(want)
        if rng.random() < 0.1:
            stage = pickle.loads(pickle.dumps(stage))
            tracks = {k: v.copy() for k, v in tracks.items()}
    for sensor, track in tracks.items():
        assert stage.open[slot_of[sensor]] == (track.open is not None)
    return made


@pytest.mark.parametrize("seed", range(40))
def test_incidents_equal_the_per_reading_ones(seed):
    clear_after = (0, 120, 600, 1800)[seed % 4]  # 0: the option allows 1, the class any
    assert run_incidents(fault_stream(seed)[0], seed, clear_after) > 0


@pytest.mark.parametrize("seed", [300, 301])
def test_incidents_on_big_calls_and_single_rows(seed):
    run_incidents(fault_stream(seed, sensors=5000, calls=40, big=4)[0], seed, 1800)


def test_flatline_keeps_what_a_row_already_has():
    """A row that comes with flags (a `Reading`'s own, copied by `on_batch`) and reasons keeps
    them; the rule adds its own after them, as `Flatline.apply` does on the copied dict."""
    rule, per_reading = FlatlineColumns(readings=2), Flatline(readings=2)
    rule.grow(1)
    for time in (0, 1200, 2400):
        rows = [Row(7, time, {"pm2.5_cf_1": 4.0, "humidity": 40.0})]
        work, _ = work_of(rows, {})
        work.flags, work.reasons = {0: {"source": "as read"}}, {0: ["earlier"]}
        flags, reasons = {"source": "as read"}, ["earlier"]
        per_reading.apply(rows[0].values, flags, reasons, {}, time)
        rule.apply(work, np.array([0]), {})
        assert (work.flags[0], work.reasons[0]) == (flags, reasons)
    assert reasons == ["earlier", "flatline"]
