"""Times and field names at the edges (issue 20): the plausible window every air-quality source
checks, four-digit years in every output, capped gap filling, and field names that cannot blow
up or poison the outputs.

Expected times are written out or computed with `calendar.timegm`, never with the code under
test; "unchanged state" is checked against the same run without the implausible row.
"""

from __future__ import annotations

import calendar
import json
import sqlite3
import time

import orjson
import pytest
from bytewax.testing import TestingSink, run_main

from config import ConfigError, resolve
from core.readings import DeadLetter, Reading
from data import simulate
from dataflows.air_quality import build_flow
from dataflows.backfill import backfill_flow
from dataflows.steps import event_record, reading_record
from preparation.gaps import GapEvent
from preparation.incidents import Incident, incident_record
from sources.poller import API_KEY_ENV
from tests.conftest import payload, write_lines
from tests.fake_purpleair import API_KEY, FakePurpleAir
from tests.test_columns_equivalence import assert_same, reference, run
from tests.test_poller import Clock, drive, poller

T0 = calendar.timegm((2026, 4, 1, 0, 0, 0))
YEAR_99 = calendar.timegm((99, 6, 1, 0, 0, 0))
YEAR_9 = calendar.timegm((9, 6, 1, 0, 0, 0))
YEAR_9999 = calendar.timegm((9999, 12, 31, 23, 59, 59))
IN_2030 = calendar.timegm((2030, 1, 1, 0, 0, 0))
FIELDS = ("sensor_index", "last_seen", "humidity", "pm1.0_cf_1")
QUIET = {"progress": None, "spatial": False}


@pytest.fixture
def real_window(monkeypatch):
    """The plausible window as shipped (tests/conftest.py moves its start to the year 1)."""
    monkeypatch.undo()


def rows_every_step(sensor: int, start: int, n: int, step: int = 120) -> list[list]:
    return [[sensor, start + k * step, 30.0 + k % 5, 2.0 + k % 7] for k in range(n)]


def readings_of(got: dict) -> list[dict]:
    return [r for r in got["readings"] if not r["placeholder"]]


# --- four-digit years -----------------------------------------------------------------------


def test_every_output_time_has_a_four_digit_year():
    reading = Reading(5, YEAR_99, {"pm1.0_cf_1": 1.0})
    assert reading_record(reading)["time"] == "0099-06-01T00:00:00Z"
    event = GapEvent("gap", 5, YEAR_9, 240, 1, YEAR_99)
    assert event_record(event)["last_seen"] == "0009-06-01T00:00:00Z"
    assert event_record(event)["time"] == "0099-06-01T00:00:00Z"
    incident = Incident(5, "open", "flatline", YEAR_9, YEAR_9, ["flatline"], 1)
    assert incident_record(incident)["time"] == "0009-06-01T00:00:00Z"
    assert reading_record(Reading(5, YEAR_9999, {}))["time"] == "9999-12-31T23:59:59Z"
    assert reading_record(Reading(5, T0, {}))["time"] == "2026-04-01T00:00:00Z"


def test_years_9_and_99_are_stored_as_such(tmp_path, database_url):
    """Moved window (the year 1 on: tests/conftest.py): a database reads the years as written,
    not as 2009, NULL or an overflow that stops the run."""
    path = write_lines(
        tmp_path / "old.jsonl",
        [payload([[1, YEAR_9, 30, 2.0], [2, YEAR_99, 30, 2.0], [3, T0, 30, 2.0]], FIELDS)],
    )
    run_main(build_flow(str(path), readings=database_url, events="/dev/null", **QUIET))
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            got = conn.execute("SELECT sensor_index, datetime(time) FROM readings").fetchall()
        want = {1: "0009-06-01 00:00:00", 2: "0099-06-01 00:00:00", 3: "2026-04-01 00:00:00"}
    else:
        import psycopg

        with psycopg.connect(database_url) as conn:
            got = conn.execute(
                "SELECT sensor_index, extract(year FROM time)::int FROM readings"
            ).fetchall()
        want = {1: 9, 2: 99, 3: 2026}
    assert dict(got) == want


# --- the plausible window -------------------------------------------------------------------


def test_a_year_99_row_is_a_dead_letter_not_a_poison_pill(tmp_path, postgres_url, real_window):
    """The issue's case: 30 good readings and one dated the year 99 in one batch to PostgreSQL.
    The 30 are written, the odd row is a dead letter with its reason, the run ends."""
    good = [[100 + k, T0 + k, 30, 2.0] for k in range(30)]
    path = write_lines(
        tmp_path / "polls.jsonl", [payload([*good, [999, YEAR_99, 30, 2.0]], FIELDS)]
    )
    totals = []
    flow = build_flow(
        str(path),
        readings=postgres_url,
        dead_letters=postgres_url,
        events="/dev/null",
        totals=TestingSink(totals),
        **QUIET,
    )
    run_main(flow)
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        dead = conn.execute("SELECT reason, raw FROM dead_letters").fetchall()
    assert stored == 30
    [(reason, raw)] = dead
    assert reason == (
        f"last_seen {YEAR_99} (0099-06-01T00:00:00Z) is before the earliest plausible time "
        "2000-01-01T00:00:00Z"
    )
    assert json.loads(raw) == [999, YEAR_99, 30, 2.0]
    assert totals[0]["readings"] == 30 and totals[0]["dead_letters"] == 1


def test_rows_outside_the_window_are_dead_letters_and_counts_add_up(tmp_path, real_window):
    now = int(time.time())
    before_2000 = calendar.timegm((1999, 12, 31, 23, 59, 59))
    start_2000 = calendar.timegm((2000, 1, 1, 0, 0, 0))
    rows = [
        [1, before_2000, 30, 2.0],  # dead: a second before the window
        [2, start_2000, 30, 2.0],  # kept: the window's first second
        [3, now + 300, 30, 2.0],  # kept: within the 600 s skew
        [4, now + 86_400, 30, 2.0],  # dead: a day ahead
        [5, YEAR_9999, 30, 2.0],  # dead
        [6, T0, 30, 2.0],
    ]
    stamp_only = {"data_time_stamp": IN_2030, "fields": ["sensor_index", "humidity"]}
    stamp_only["data"] = [[7, 30], [8, 31]]  # dead: their time is the stamp's, in 2030
    path = write_lines(tmp_path / "p.jsonl", [payload(rows, FIELDS), stamp_only])
    got = run(str(path), readings=True, **QUIET)
    assert sorted(r["sensor_index"] for r in readings_of(got)) == [2, 3, 6]
    reasons = {d["raw"][0]: d["reason"] for d in got["dead_letters"]}
    assert set(reasons) == {1, 4, 5, 7, 8}
    assert reasons[1].endswith("is before the earliest plausible time 2000-01-01T00:00:00Z")
    assert "is after the latest plausible time" in reasons[4]
    assert reasons[4].endswith("(the clock plus 600 s)")
    assert reasons[5].startswith(f"last_seen {YEAR_9999} (9999-12-31T23:59:59Z) is after")
    assert reasons[7].startswith(f"data_time_stamp {IN_2030} (2030-01-01T00:00:00Z) is after")
    [totals] = got["totals"]
    assert totals["readings"] + totals["dead_letters"] == 8


def test_the_window_is_an_option(tmp_path):
    rows = [[1, T0 - 86_400, 30, 2.0], [2, T0, 30, 2.0], [3, T0 + 86_400, 30, 2.0]]
    path = write_lines(tmp_path / "p.jsonl", [payload(rows, FIELDS)])
    window = {"earliest": "2026-04-01T00:00:00Z", "latest": "2026-04-01T00:00:00+00:00"}
    got = run(str(path), readings=True, **window, **QUIET)
    assert [r["sensor_index"] for r in readings_of(got)] == [2]
    assert [d["raw"][0] for d in got["dead_letters"]] == [1, 3]
    assert got["dead_letters"][1]["reason"].endswith("plausible time 2026-04-01T00:00:00Z")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"earliest": "2030-01-01", "latest": "2020-01-01T00:00:00Z"},
            "[source.times] earliest: a window that keeps no row; allowed: a window that holds "
            "a time: 2030-01-01T00:00:00Z is after 2020-01-01T00:00:00Z",
        ),
        (
            {"earliest": "3000-01-01T00:00:00Z"},
            "[source.times] earliest: a window that keeps no row",
        ),
        (
            {"latest": "soon"},
            "[source.times] latest: 'soon' is not allowed; allowed: an ISO 8601 date or "
            "date-time in whole seconds",
        ),
        ({"time_skew": -1}, "[source.times] skew: -1 is out of range"),
    ],
)
def test_a_window_that_keeps_nothing_or_is_not_a_time_is_a_configuration_error(options, message):
    with pytest.raises(ConfigError) as error:
        resolve(**options)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("bad_time", [IN_2030, YEAR_9999, YEAR_99], ids=["2030", "9999", "99"])
def test_one_implausible_row_changes_no_sensor_state(tmp_path, bad_time, real_window):
    """A simulated deployment with and without one row of sensor X dated `bad_time` mid-file:
    every reading, anomaly, gap event and incident is the same (X keeps its gap events and its
    AQI after it); the row is one dead letter more."""
    sim = simulate.generate(seed=8, n_sensors=4, hours=3)
    simulated, _ = simulate.write(sim, tmp_path / "sim")
    polls = [json.loads(line) for line in simulated.read_text().splitlines()]
    row = list(polls[45]["data"][0])
    sensor = row[0]
    for poll in polls[50:56]:  # a dropout of sensor X after the bad row: a gap to report
        poll["data"] = [r for r in poll["data"] if r[0] != sensor]
    row[polls[45]["fields"].index("last_seen")] = bad_time
    lines = [json.dumps(poll) for poll in polls]
    clean, odd = tmp_path / "clean.jsonl", tmp_path / "odd.jsonl"
    clean.write_text("\n".join(lines))
    odd.write_text("\n".join([*lines[:45], json.dumps({**polls[45], "data": [row]}), *lines[45:]]))
    options = {"readings": True, "incidents": True, "gaps": "events", "progress": None}
    want = run(str(clean), **options)
    got = run(str(odd), **options)
    later = [
        r for r in want["readings"] if r["sensor_index"] == sensor and r["time"] > "2026-04-01T01"
    ]
    assert later and all(r["values"].get("aqi") is not None for r in later[12:])
    assert any(e["event"] == "gap" and e["sensor_index"] == sensor for e in want["events"])
    for name in ("output", "readings", "incidents"):  # what the odd row itself made, if anything
        got[name] = [r for r in got[name] if r["time"].startswith("2026-")]
    dead, got["dead_letters"] = got["dead_letters"], []
    [got_totals], [want_totals] = got["totals"], want["totals"]
    got["totals"] = want["totals"] = []
    assert_same(got, want, layout_free=True)
    assert [(d["raw"], "plausible time" in d["reason"]) for d in dead] == [(row, True)]
    assert got_totals == {**want_totals, "dead_letters": 1}


def test_the_poller_refuses_a_future_last_seen(real_window, monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    sim = simulate.generate(seed=3, n_sensors=5, hours=0.2)
    polls = [dict(p) for p in sim.polls]
    fields = polls[1]["fields"]
    bad = list(polls[1]["data"][0])
    bad[fields.index("last_seen")] = int(time.time()) + 86_400
    polls[1]["data"] = [bad, *polls[1]["data"][1:]]
    clock = Clock()
    with FakePurpleAir(polls) as server:
        part = poller(server, clock, max_polls=len(polls)).build_part("read", "p", None)
        items = [item for _, batch in drive(part, clock) for item in batch]
    [letter] = [i for i in items if isinstance(i, DeadLetter)]
    assert letter.reason.startswith(f"last_seen {bad[fields.index('last_seen')]} (")
    assert "is after the latest plausible time" in letter.reason
    readings = [i for i in items if isinstance(i, Reading)]
    assert len(readings) == sum(len(p["data"]) for p in polls) - 1


def test_the_csv_source_checks_the_window(tmp_path, real_window):
    csv = tmp_path / "readings.csv"
    csv.write_text(
        "sensor_index,time,humidity,pm1.0_cf_1\n"
        "1,1999-12-31T23:59:59Z,31,2.1\n"
        "2,2026-04-01T00:00:00Z,31,2.1\n"
        f"3,{IN_2030 + 10**9},31,2.1\n"
        "4,2099-01-01,31,2.1\n"
        f"5,{T0 + 120},31,2.1\n"
    )
    readings, dead, totals = [], [], []
    flow = backfill_flow(
        csv,
        progress=None,
        readings=TestingSink(readings),
        dead_letters=TestingSink(dead),
        output=TestingSink([]),
        events="/dev/null",
        totals=TestingSink(totals),
        spatial=False,
    )
    run_main(flow)
    assert sorted(r["sensor_index"] for r in readings) == [2, 5]
    reasons = sorted(d["reason"] for d in dead)
    assert len(reasons) == 3
    assert "time 946684799 (1999-12-31T23:59:59Z) is before the earliest plausible" in reasons[2]
    assert all("plausible time" in r for r in reasons)
    assert totals[0]["readings"] + totals[0]["dead_letters"] == 5


# --- gap filling ----------------------------------------------------------------------------


def missed(seconds: int, interval: int = 120) -> int:
    """Whole intervals without a reading (independent of preparation.gaps.missed_steps)."""
    return max(round(seconds / interval) - 1, 0)


def test_a_jump_beyond_max_fill_is_a_gap_event_not_placeholders(tmp_path):
    jump = 30 * 86_400  # a month: 21,599 missed steps
    rows = [
        *rows_every_step(1, T0, 3),
        *rows_every_step(1, T0 + 240 + jump, 3),
        *rows_every_step(2, T0, 3),
        *rows_every_step(2, T0 + 240 + 1200, 3),  # 9 missed steps: filled
    ]
    path = write_lines(tmp_path / "p.jsonl", [payload(rows, FIELDS)])
    # a fixed step: these sensors' few readings could not teach their own cadence first
    options = {
        "gaps": "fill", "interval": 120, "offline_after": 400 * 86_400, "readings": True, **QUIET
    }
    got = run(str(path), **options)
    placeholders = [r for r in got["readings"] if r["placeholder"]]
    assert [r["sensor_index"] for r in placeholders] == [2] * missed(1200)
    [event] = [e for e in got["events"] if e["event"] == "gap"]
    assert (event["sensor_index"], event["seconds"]) == (1, jump)
    assert event["missed"] == missed(jump) == 21_599
    assert_same(got, reference(str(path), **options))


def test_max_fill_is_an_option(tmp_path):
    rows = [*rows_every_step(1, T0, 2), *rows_every_step(1, T0 + 120 + 1320, 2)]
    path = write_lines(tmp_path / "p.jsonl", [payload(rows, FIELDS)])
    options = {"gaps": "fill", "interval": 120, "readings": True, **QUIET}  # a fixed step
    filled = run(str(path), **options)
    capped = run(str(path), max_fill=5, **options)
    assert sum(r["placeholder"] for r in filled["readings"]) == 10 and not filled["events"]
    assert sum(r["placeholder"] for r in capped["readings"]) == 0
    assert [(e["event"], e["missed"]) for e in capped["events"]] == [("gap", 10)]
    assert_same(capped, reference(str(path), max_fill=5, **options))


# --- field names ----------------------------------------------------------------------------


def test_a_huge_field_name_is_dead_letters_not_200_mb_of_readings(tmp_path):
    huge = "x" * 100_000
    rows = rows_every_step(1, T0, 20)
    fields = (*FIELDS, huge)
    path = write_lines(
        tmp_path / "p.jsonl",
        [payload([[*r, 1.0] for r in rows], fields), payload(rows_every_step(2, T0, 3), FIELDS)],
    )
    assert path.stat().st_size > 100_000
    got = run(str(path), readings=True, **QUIET)
    assert [r["sensor_index"] for r in readings_of(got)] == [2, 2, 2]
    assert len(got["dead_letters"]) == 20
    reason = got["dead_letters"][0]["reason"]
    assert reason == f"payload field name '{'x' * 40}...' has 100000 characters, more than 100"
    written = sum(len(json.dumps(r)) for name in ("readings", "dead_letters") for r in got[name])
    assert written < 20_000


def test_a_lone_surrogate_field_name_is_a_dead_letter_every_line_reads_back(tmp_path):
    line = json.dumps(payload(rows_every_step(1, T0, 3), (*FIELDS[:3], "\ud800")))
    assert "\\ud800" in line
    good = json.dumps(payload(rows_every_step(2, T0, 3), FIELDS))
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n" + good + "\n")
    out = {name: tmp_path / f"{name}.jsonl" for name in ("readings", "dead_letters")}
    flow = build_flow(
        str(path),
        output="/dev/null",
        events="/dev/null",
        **{k: str(v) for k, v in out.items()},
        **QUIET,
    )
    run_main(flow)
    read = {k: [orjson.loads(x) for x in v.read_bytes().splitlines()] for k, v in out.items()}
    assert [r["sensor_index"] for r in read["readings"]] == [2, 2, 2]
    assert len(read["dead_letters"]) == 3
    assert read["dead_letters"][0]["reason"] == (
        "payload field name '\\ud800' is not valid Unicode"
    )


def test_a_csv_header_name_too_long_is_a_configuration_error(tmp_path):
    csv = tmp_path / "readings.csv"
    csv.write_text("sensor_index,time," + "y" * 101 + "\n1,2026-04-01,2\n")
    with pytest.raises(ConfigError, match="has 101 characters, more than 100"):
        backfill_flow(csv, progress=None)
