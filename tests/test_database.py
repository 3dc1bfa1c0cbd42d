"""Database sinks against SQLite and a real PostgreSQL server: what the flow writes equals what it
emits, a replayed batch changes nothing, several workers and processes write one database_url, and
a database in trouble is retried, then stops the flow with a clear error."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest
from bytewax.errors import BytewaxRuntimeError
from bytewax.testing import TestingSink, cluster_main, run_main

from config import ConfigError
from core.dead_letters import json_safe
from core.json_lines import to_line
from data import simulate
from dataflows.air_quality import build_flow
from sinks.database import DatabaseRejected, DatabaseSink, DatabaseUnavailable
from sinks.tables import storable_raw
from tests.conftest import run_processes, write_lines
from tests.databases import OUTPUTS, expected, fetch, matches
from tests.test_dead_letters import ODD


@pytest.fixture(scope="module")
def polls_file(tmp_path_factory):
    """12 simulated sensors over 8 hours, with a line that is not JSON and a bad row."""
    out = tmp_path_factory.mktemp("dbsim")
    path, _ = simulate.write(simulate.generate(seed=9, n_sensors=12, hours=8), out)
    lines = path.read_text().splitlines()
    # poll 41 with a bad row, placed before poll 40: every sensor jumps a poll (gap events,
    # once the sensors' own cadence is known) and then sees poll 40 late
    bad_row = json.loads(lines[40])
    bad_row["data"][0][2] = "not a number \x00 é"
    lines[39:39] = [json.dumps(bad_row)]
    lines[2:2] = ["not json {"]
    path.write_text("\n".join(lines) + "\n")
    return path


def emitted(polls_file, workers=1):
    """The flow's records, from Bytewax's testing sinks (the reference for the database_url)."""
    sinks = {option: [] for option in OUTPUTS}
    flow = build_flow(str(polls_file), **{o: TestingSink(s) for o, s in sinks.items()})
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return {OUTPUTS[o]: records for o, records in sinks.items()}


@pytest.fixture(scope="module")
def reference(polls_file):
    return emitted(polls_file)


def cause(exc: BaseException, kind: type) -> BaseException:
    """The exception of `kind` that `exc` (Bytewax's wrapper) was raised from."""
    while not isinstance(exc, kind):
        assert exc.__cause__ is not None, f"no {kind.__name__} behind {exc!r}"
        exc = exc.__cause__
    return exc


def assert_holds(url, reference):
    for table, records in reference.items():
        got, want = fetch(url, table), expected(table, records)
        assert matches(got, want), table


def test_the_database_holds_exactly_what_the_flow_emits(polls_file, reference, database_url):
    assert len(reference["anomalies"]) >= 4 and len(reference["dead_letters"]) == 2
    assert len(reference["events"]) > 0
    keys = {(r["sensor_index"], r["time"]) for r in reference["readings"]}
    # a sensor that did not report between two polls repeats its row: one row, the later one
    assert 0 < len(reference["readings"]) - len(keys) < 20
    run_main(build_flow(str(polls_file), **dict.fromkeys(OUTPUTS, database_url)))
    assert_holds(database_url, reference)
    rows = fetch(database_url, "readings")
    assert len(rows) == len(keys)
    imputed = [r for r in rows.values() if "humidity" in r["imputed"]]
    assert imputed and all(r["humidity"] is not None for r in imputed)
    raws = [row["raw"] for row in fetch(database_url, "dead_letters").values()]
    assert "not json {" in raws  # the raw input, read back as it was
    assert any(isinstance(raw, list) and "not a number \x00 é" in raw for raw in raws)


def test_a_second_run_over_the_same_input_changes_nothing(polls_file, reference, database_url):
    for _ in range(2):
        run_main(build_flow(str(polls_file), **dict.fromkeys(OUTPUTS, database_url)))
    assert_holds(database_url, reference)
    assert len(fetch(database_url, "anomalies")) == len(reference["anomalies"])


def test_a_replayed_batch_with_a_repeated_key_keeps_one_row_the_last(database_url):
    sink = DatabaseSink(database_url, "anomalies")
    part = sink.build("anomalies_out", 0, 1)
    first = {"sensor_index": 5, "time": "2026-04-01T00:00:00Z", "score": 0.8, "imputed": []}
    second = {**first, "score": 0.9, "pm1.0_cf_1": 3.5, "imputed": ["humidity"]}
    other = {**first, "sensor_index": 6}
    part.write_batch([first, other, second])
    part.write_batch([first, other, second])
    part.close()
    got = fetch(database_url, "anomalies")
    assert got[(5, "2026-04-01T00:00:00Z")]["score"] == 0.9
    assert got[(5, "2026-04-01T00:00:00Z")]["pm1_0_cf_1"] == 3.5
    assert got[(5, "2026-04-01T00:00:00Z")]["imputed"] == ["humidity"]
    assert len(got) == 2


def test_two_workers_write_what_one_worker_emits(polls_file, reference, database_url):
    cluster_main(
        build_flow(str(polls_file), **dict.fromkeys(OUTPUTS, database_url)),
        [],
        0,
        worker_count_per_proc=2,
    )
    assert_holds(database_url, reference)


def test_two_processes_write_what_one_worker_emits(polls_file, reference, database_url):
    options = "".join(f", {option}={database_url!r}" for option in OUTPUTS)
    run_processes(f"dataflows.air_quality:build_flow({str(polls_file)!r}{options})")
    assert_holds(database_url, reference)


def test_a_table_with_other_columns_is_refused_at_start(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE anomalies (sensor_index INTEGER, time TEXT)")
    with pytest.raises(DatabaseRejected, match=r"table anomalies in .*old.db has the columns \['s"):
        DatabaseSink(path, "anomalies").build("anomalies_out", 0, 1)


def test_a_target_that_cannot_be_a_database_is_a_configuration_error(tmp_path):
    missing = str(tmp_path / "no" / "such" / "folder.db")
    with pytest.raises(ConfigError, match=r"^\[outputs\] readings: the folder of .* does not"):
        build_flow(readings=missing)
    with pytest.raises(ConfigError, match=r"^\[outputs.sample\] path: a database; allowed"):
        build_flow(sample=3, sample_path=str(tmp_path / "sample.db"))
    with pytest.raises(ConfigError, match=r"^\[outputs.database\] retries: -1 is out of range"):
        build_flow(database={"retries": -1})
    with pytest.raises(ValueError, match="names no database"):
        DatabaseSink("anomalies.jsonl", "anomalies")
    with pytest.raises(ValueError, match="table must be one of"):
        DatabaseSink("x.db", "alerts")


def test_a_deployment_file_names_the_databases_and_their_retry_budget(polls_file, tmp_path):
    path = tmp_path / "flow.db"
    (tmp_path / "flow.toml").write_text(
        f'[source]\npath = "{polls_file}"\n\n[outputs]\nanomalies = "sqlite:///{path}"\n'
        f'readings = "{path}"\n\n[outputs.database]\nretries = 2\ntimeout = 0.5\n'
    )
    flow = build_flow(config=str(tmp_path / "flow.toml"), events="/dev/null")
    run_main(flow)
    url = f"sqlite:///{path}"
    assert len(fetch(url, "readings")) > 2000 and len(fetch(url, "anomalies")) >= 4


def test_a_locked_sqlite_database_is_retried_then_stops_the_flow(tmp_path, caplog):
    path = tmp_path / "locked.db"
    part = DatabaseSink(path, "anomalies", timeout=0.05).build("anomalies_out", 0, 1)
    part.close()  # the table exists
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        sink = DatabaseSink(path, "anomalies", timeout=0.05, retries=2, backoff={"base": 0.01})
        record = {"sensor_index": 1, "time": "2026-04-01T00:00:00Z", "score": 0.9, "imputed": []}
        with (
            caplog.at_level(logging.WARNING, "air_quality.database"),
            pytest.raises(DatabaseUnavailable) as failure,
        ):
            sink.build("anomalies_out", 0, 1)  # creating the tables takes the write lock
        message = str(failure.value)
        assert "anomalies in" in message and "after 3 attempts" in message
        assert "database is locked" in message and "resume" in message
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 2 and all("database is locked" in w for w in warnings)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    part = sink.build("anomalies_out", 0, 1)  # the lock is gone: it works again
    part.write_batch([record])
    assert len(fetch(f"sqlite:///{path}", "anomalies")) == 1


def test_an_sqlite_error_no_retry_fixes_is_refused_at_once(tmp_path, caplog):
    """A view where the table should be (same columns) can be neither indexed nor written:
    SQLITE_ERROR, which no retry fixes (an SQL mistake of ours would be one too), is refused at
    once, not retried for minutes as if the database were busy."""
    path = tmp_path / "view.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE kept (a INTEGER)")
        conn.execute(
            "CREATE VIEW anomalies AS SELECT a AS sensor_index, a AS time, a AS kind, "
            "a AS reasons, a AS score, a AS pm1_0_cf_1, a AS pm2_5_cf_1, a AS pm10_0_cf_1, "
            "a AS pm2_5_epa, a AS temperature, a AS humidity, a AS pressure, a AS aqi, "
            "a AS details, a AS imputed FROM kept"
        )
    sink = DatabaseSink(path, "anomalies", retries=2, backoff={"base": 0.01})
    with (
        caplog.at_level(logging.WARNING, "air_quality.database"),
        pytest.raises(DatabaseRejected, match="could not connect: OperationalError: views may"),
    ):
        sink.build("anomalies_out", 0, 1)
    assert caplog.records == []


def test_a_wrong_password_is_retried_then_stops_the_flow(postgres_server, caplog):
    url = postgres_server.url_for(password="wrong")
    sink = DatabaseSink(url, "readings", retries=1, backoff={"base": 0.01})
    with (
        caplog.at_level(logging.WARNING, "air_quality.database"),
        pytest.raises(BytewaxRuntimeError) as failure,
    ):
        run_main(build_flow(readings=sink))
    message = str(cause(failure.value, DatabaseUnavailable))
    assert "password authentication failed" in message and "wrong" not in message
    assert ":***@127.0.0.1" in message
    assert len(caplog.records) == 1 and "retry 1 of 1" in caplog.records[0].getMessage()


def test_a_long_bad_line_is_stored_as_the_dead_letter_the_flow_emits(tmp_path, database_url):
    """A raw input over the dead letters' limit is kept as its prefix and its length; the
    database holds that same raw, not a prefix of it cut again (which lost the length)."""
    polls = write_lines(tmp_path / "long.jsonl", ["not json " + "é" * 6000, "[1, " * 3000])
    emitted = []
    run_main(build_flow(str(polls), dead_letters=TestingSink(emitted), events="/dev/null"))
    run_main(build_flow(str(polls), dead_letters=database_url, events="/dev/null"))
    assert [r["raw"]["bytes"] for r in emitted] == [12009, 12000]
    assert matches(fetch(database_url, "dead_letters"), expected("dead_letters", emitted))


@pytest.mark.parametrize("name", sorted(ODD))
def test_a_dead_letters_raw_is_stored_as_the_json_lines_sinks_write_it(name):
    safe = json_safe(ODD[name])  # what the flow's dead letter holds (dead_letter_record)
    assert storable_raw(safe)[0] == to_line(safe)


def test_a_password_given_as_a_url_parameter_is_not_shown(postgres_server, caplog):
    url = f"postgresql://aqs@127.0.0.1:{postgres_server.port}/postgres?password=wrong-in-query"
    sink = DatabaseSink(url, "readings", retries=1, backoff={"base": 0.01})
    with (
        caplog.at_level(logging.WARNING, "air_quality.database"),
        pytest.raises(DatabaseUnavailable) as failure,
    ):
        sink.build("readings_out", 0, 1)
    shown = [str(failure.value), *(r.getMessage() for r in caplog.records)]
    assert "password authentication failed" in shown[0] and len(shown) == 2
    assert all("wrong-in-query" not in text and "password=***" in text for text in shown)


def test_field_names_no_database_takes_are_stored_with_a_replacement_character(
    tmp_path, database_url
):
    """A NUL (PostgreSQL's JSONB refuses it) in a payload's field name must not stop the flow at
    the database; a lone surrogate (no UTF-8 encoder takes it) makes the payload's rows dead
    letters, stored with their reason (docs/edges.md)."""
    polls = write_lines(
        tmp_path / "odd.jsonl",
        [
            '{"data_time_stamp": 1000, "fields": ["sensor_index", "last_seen", "pm\\u0000x", '
            '"pm1.0_cf_1"], "data": [[1, 1000, 1.0, 2.0]]}',
            '{"data_time_stamp": 1000, "fields": ["sensor_index", "last_seen", "pm\\ud800x", '
            '"pm1.0_cf_1"], "data": [[2, 1000, 3.0, 4.0]]}',
        ],
    )
    run_main(build_flow(str(polls), **dict.fromkeys(OUTPUTS, database_url)))
    rows = fetch(database_url, "readings")
    assert sorted(rows) == [(1, "1970-01-01T00:16:40Z")]
    assert [r["values"]["pm\ufffdx"] for _, r in sorted(rows.items())] == [1.0]
    assert [r["pm1_0_cf_1"] for _, r in sorted(rows.items())] == [2.0]
    dead = fetch(database_url, "dead_letters")
    assert [(row["raw"], row["reason"]) for row in dead.values()] == [
        ([2, 1000, 3.0, 4.0], "payload field name 'pm\\ud800x' is not valid Unicode")
    ]
