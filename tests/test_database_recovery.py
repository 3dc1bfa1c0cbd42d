"""Exactly once across crashes and database trouble, in SQLite and a real PostgreSQL server.

A flow writing all four outputs to a database is killed with SIGKILL part-way (or stopped by a
locked, full or stopped database_url), then run again from its recovery directory: the database
then holds exactly the rows of an uninterrupted run, none lost, none twice.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from bytewax.testing import TestingSink, run_main

from data import simulate
from dataflows.air_quality import build_flow
from sinks.database import DatabaseSink
from tests.conftest import ROOT
from tests.databases import OUTPUTS, expected, fetch, matches
from tests.test_recovery import commit_epoch

#: `[outputs.database]` for the trouble tests: a short budget (3 retries within about 0.7 s), so
#: the flow gives up quickly.
SHORT = {"timeout": 0.1, "retries": 3, "backoff": {"base": 0.05, "cap": 0.2}}

_SIMULATED: dict[int, bytes] = {}


def simulated(run_dir: Path, n_sensors: int) -> Path:
    """12 hours of `n_sensors` simulated sensors, with a line that is not JSON every 30 lines
    (so dead letters are written on both sides of a kill), as `run_dir/polls.jsonl`. The file
    is generated once per size; the tests that use a size share it."""
    if n_sensors not in _SIMULATED:
        sim = simulate.generate(seed=21, n_sensors=n_sensors, hours=12)
        polls, _ = simulate.write(sim, run_dir)
        lines = polls.read_text().splitlines()
        for i in range(len(lines) - 1, 0, -30):
            lines.insert(i, f"garbage line {i} \x00 \udcff NaN")
        text = "\n".join(lines) + "\n"
        _SIMULATED[n_sensors] = text.encode("utf-8", errors="surrogateescape")
    polls = run_dir / "polls.jsonl"
    polls.write_bytes(_SIMULATED[n_sensors])
    return polls


def recovery_dir(run_dir: Path) -> Path:
    db = run_dir / "recovery"
    db.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(db), "1"], check=True, cwd=ROOT)
    return db


def start(polls: Path, url: str, db: Path, log: Path, **database) -> subprocess.Popen:
    """The flow, its outputs into `url`, snapshotting every second into `db`."""
    options = "".join(f", {option}={url!r}" for option in OUTPUTS)
    target = f"dataflows.air_quality:build_flow({str(polls)!r}{options}, database={database!r})"
    command = [sys.executable, "-m", "bytewax.run", target, "-r", str(db), "-s", "1", "-b", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("a") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def count(url: str, table: str = "readings") -> int:
    try:
        if url.startswith("sqlite:///"):
            uri = f"file:{url.removeprefix('sqlite:///')}?mode=ro"
            with sqlite3.connect(uri, uri=True, timeout=1) as conn:
                return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except (sqlite3.OperationalError, psycopg.Error):
        return 0  # not created yet (or the server is down)


def wait_for_rows_and_a_snapshot(proc, url, db) -> bool:
    """True once rows are in the database and a snapshot is committed; False if it ended."""
    for _ in range(1200):  # at most 60 s
        if proc.poll() is not None:
            return False
        if count(url) and commit_epoch(db) >= 1:
            return True
        time.sleep(0.05)
    raise AssertionError("the flow wrote nothing for 60 s")


_REFERENCES: dict[str, dict[str, list]] = {}


def reference(polls: Path) -> dict[str, list]:
    """The uninterrupted run's records per table (once per file content: the tests share one)."""
    digest = hashlib.sha256(polls.read_bytes()).hexdigest()
    if digest not in _REFERENCES:
        sinks = {option: [] for option in OUTPUTS}
        run_main(build_flow(str(polls), **{o: TestingSink(s) for o, s in sinks.items()}))
        _REFERENCES[digest] = {OUTPUTS[o]: records for o, records in sinks.items()}
    return _REFERENCES[digest]


def assert_exactly_the_uninterrupted_rows(url: str, polls: Path) -> dict[str, int]:
    """Every table equals the uninterrupted run's rows; returns the row count per table."""
    want = reference(polls)
    sizes = {}
    for table, records in want.items():
        got, rows = fetch(url, table), expected(table, records)
        assert matches(got, rows), table
        sizes[table] = len(got)
    return sizes


def finish(proc: subprocess.Popen, log: Path) -> int:
    try:
        return proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.returncode is not None, log.read_text()[-3000:]


def count_rewrites(url: str) -> None:
    """Count every row a later upsert rewrites in `readings` and `anomalies` (a test trigger)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("CREATE TABLE rewrites (n INTEGER)")
            conn.execute("INSERT INTO rewrites VALUES (0)")
            for table in ("readings", "anomalies"):
                conn.execute(
                    f"CREATE TRIGGER {table}_rewritten AFTER UPDATE ON {table} "
                    "BEGIN UPDATE rewrites SET n = n + 1; END"
                )
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE rewrites (n BIGINT)")
        conn.execute("INSERT INTO rewrites VALUES (0)")
        conn.execute(
            "CREATE FUNCTION count_rewrite() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN UPDATE rewrites SET n = n + 1; RETURN NULL; END $$"
        )
        for table in ("readings", "anomalies"):
            conn.execute(
                f"CREATE TRIGGER {table}_rewritten AFTER UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION count_rewrite()"
            )


def rewrites(url: str) -> int:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute("SELECT n FROM rewrites").fetchone()[0]
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT n FROM rewrites").fetchone()[0]


def test_killed_part_way_and_resumed_the_database_holds_each_row_once(tmp_path, database_url):
    for n_sensors in (200, 600, 1800):  # a longer file when the flow outran the kill
        run_dir = tmp_path / f"n{n_sensors}"
        run_dir.mkdir()
        polls, db, log = simulated(run_dir, n_sensors), recovery_dir(run_dir), run_dir / "run.log"
        proc = start(polls, database_url, db, log)
        try:
            if wait_for_rows_and_a_snapshot(proc, database_url, db):
                time.sleep(0.3)  # into the next epoch: rows written after the last snapshot
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
        finally:
            finish(proc, log)
        if database_url.startswith("sqlite:///"):
            Path(database_url.removeprefix("sqlite:///")).unlink()
        else:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for table in OUTPUTS.values():
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
    else:
        pytest.fail("the flow finished before it could be killed, even on the longest file")
    killed_at, before = commit_epoch(db), count(database_url)
    count_rewrites(database_url)

    proc = start(polls, database_url, db, log)
    assert finish(proc, log) == 0, log.read_text()[-3000:]
    sizes = assert_exactly_the_uninterrupted_rows(database_url, polls)
    assert 0 < before < sizes["readings"]  # it was killed part-way, and resumed, not restarted
    assert sizes["dead_letters"] > 5 and sizes["incidents"] > 5
    print(
        f"\n{database_url.split(':')[0]} recovery ({n_sensors} sensors x 12 h): killed after "
        f"commit epoch {killed_at} with {before} readings rows; after the resume {sizes} rows, "
        f"equal to the uninterrupted run (0 lost, 0 twice); rows the resumed run wrote again: "
        f"{rewrites(database_url)}"
    )


def test_a_locked_sqlite_database_stops_the_flow_and_the_rerun_resumes(tmp_path):
    polls, db, log = simulated(tmp_path, 200), recovery_dir(tmp_path), tmp_path / "run.log"
    path = tmp_path / "flow.db"
    url = f"sqlite:///{path}"
    proc = start(polls, url, db, log, **SHORT)
    try:
        assert wait_for_rows_and_a_snapshot(proc, url, db), log.read_text()[-3000:]
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another writer holds the lock
        try:
            assert finish(proc, log) != 0
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    finally:
        finish(proc, log)
    text = log.read_text()
    assert "database is locked; retry 1 of 3" in text.replace(")", "")
    assert "could not write" in text and "after 4 attempts" in text and "database is locked" in text
    proc = start(polls, url, db, log, **SHORT)
    assert finish(proc, log) == 0, log.read_text()[-3000:]
    assert_exactly_the_uninterrupted_rows(url, polls)


def test_a_stopped_postgres_server_stops_the_flow_and_the_rerun_resumes(
    tmp_path, postgres_server, postgres_url
):
    polls, db, log = simulated(tmp_path, 200), recovery_dir(tmp_path), tmp_path / "run.log"
    proc = start(polls, postgres_url, db, log, **SHORT)
    try:
        assert wait_for_rows_and_a_snapshot(proc, postgres_url, db), log.read_text()[-3000:]
        postgres_server.stop("immediate")  # as if it crashed
        try:
            assert finish(proc, log) != 0
        finally:
            postgres_server.start()
    finally:
        finish(proc, log)
    text = log.read_text()
    assert "retry 1 of 3" in text and "after 4 attempts" in text
    assert "DatabaseUnavailable" in text and ":***@127.0.0.1" in text
    proc = start(polls, postgres_url, db, log, **SHORT)
    assert finish(proc, log) == 0, log.read_text()[-3000:]
    assert_exactly_the_uninterrupted_rows(postgres_url, polls)


def test_a_postgres_restart_within_the_retry_budget_is_ridden_out(postgres_server, postgres_url):
    record = {"sensor_index": 1, "time": "2026-04-01T00:00:00Z", "score": 0.9, "imputed": []}
    part = DatabaseSink(postgres_url, "anomalies", retries=6, backoff={"base": 0.5}).build(
        "anomalies_out", 0, 1
    )
    postgres_server.stop("immediate")
    restart = threading.Timer(1.0, postgres_server.start)
    restart.start()
    try:
        part.write_batch([record])  # fails, waits, reconnects once the server is back
    finally:
        restart.join()
        part.close()
    assert list(fetch(postgres_url, "anomalies")) == [(1, "2026-04-01T00:00:00Z")]


def test_a_full_disk_stops_the_flow_and_the_rerun_resumes_once_there_is_room(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {mounted.stderr.decode().strip()}")
    try:
        polls, db, log = simulated(tmp_path, 200), recovery_dir(tmp_path), tmp_path / "run.log"
        url = f"sqlite:///{mount / 'flow.db'}"
        proc = start(polls, url, db, log, **SHORT)
        assert finish(proc, log) != 0
        text = log.read_text()
        assert "database or disk is full; retry 1 of 3" in text.replace(")", "")
        assert "after 4 attempts" in text
        subprocess.run(["mount", "-o", "remount,size=256m", str(mount)], check=True)
        proc = start(polls, url, db, log, **SHORT)
        assert finish(proc, log) == 0, log.read_text()[-3000:]
        assert_exactly_the_uninterrupted_rows(url, polls)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
