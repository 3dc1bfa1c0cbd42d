"""Shared fixtures: the real PurpleAir snapshot (skipped when absent) and small payload builders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT.parent / "shared" / "data" / "purpleair_snapshot.json"


@pytest.fixture(autouse=True)
def times_from_year_1(monkeypatch):
    """Most tests date their rows from epoch 1000 (1970): for them the plausible window opens in
    the year 1, not 2000 (`sources.times.EARLIEST`); its latest end stays the clock plus the
    skew. tests/test_times.py checks the real default."""
    import sources.times

    monkeypatch.setattr(sources.times, "EARLIEST", "0001-01-01T00:00:00Z")


@pytest.fixture
def snapshot_path() -> Path:
    if not SNAPSHOT.is_file():
        pytest.skip(f"real PurpleAir snapshot not found at {SNAPSHOT} (../shared/data/)")
    return SNAPSHOT


def payload(rows, fields=("sensor_index", "last_seen", "humidity", "pm1.0_cf_1"), stamp=1000):
    """A PurpleAir-shaped payload dict."""
    return {"data_time_stamp": stamp, "fields": list(fields), "data": list(rows)}


def write_lines(path: Path, documents) -> Path:
    """Write documents (dicts, or raw str lines) as JSON lines."""
    with path.open("w") as f:
        for doc in documents:
            f.write((doc if isinstance(doc, str) else json.dumps(doc)) + "\n")
    return path


def run_processes(target: str, processes: int = 2, timeout: float = 240) -> list[str]:
    """`python -m bytewax.run TARGET` as a cluster of `processes` processes on loopback ports,
    from the repository root; fails with a process's stderr when one does not exit 0, else
    returns each process's stderr (its log)."""
    from benchmarks.run import free_ports

    addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(processes))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bytewax.run", target, "-i", str(i), "-a", addresses],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    logs = []
    for proc in procs:
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err[-3000:]
        logs.append(err)
    return logs


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (`tests/postgres.py`), skipped with the reason
    only when no server is installed (`.ci/run` installs Debian's `postgresql`)."""
    from tests.postgres import PostgresServer, server_bin

    bin_dir = server_bin()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server installed (pg_ctl neither on PATH nor under "
            "/usr/lib/postgresql/*/bin); .ci/run installs Debian's postgresql"
        )
    with PostgresServer(bin_dir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """A new, empty database on the session's server, for one test."""
    import psycopg

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[-50:].lower()
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.url_for(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """Each database in turn: a new SQLite file, then a new database on the real server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'flow.db'}"
    return request.getfixturevalue("postgres_url")
