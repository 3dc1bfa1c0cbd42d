"""Rows written per second into each database: the flow with its four outputs (anomalies,
readings, events, dead letters) in SQLite and in PostgreSQL, against the same flow with the same
outputs going to discarding sinks, in the same run.

    python -m benchmarks.run --databases [--repeats 3]

Each run writes into a new SQLite file or a new PostgreSQL database (so every row is an insert,
as in a first run), on the shipped data, with 1 worker and with 2 processes. The PostgreSQL
server is the tests' throw-away one (`tests/postgres.py`) with fsync on; SQLite commits with
`synchronous=FULL`. Rows/s counts every row the tables hold at the end (readings, anomalies,
events, dead letters) over the run's time, start-up of the connections included.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
from contextlib import nullcontext
from pathlib import Path

from benchmarks.run import SHIPPED, _spawn, count_readings

TABLES = ("readings", "anomalies", "events", "dead_letters")
LAYOUTS = (("1 worker", 1, 1), ("2 processes", 1, 2))


def _rows(url: str) -> int:
    """Rows in all four tables."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)
    import psycopg

    with psycopg.connect(url) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)


def _fresh(kind: str, folder: Path, server, n: int) -> str:
    """A new, empty database of `kind` (the n-th of the run): a file in `folder`, or a database
    on `server`."""
    if kind == "sqlite":
        return f"sqlite:///{folder / f'bench{n}.db'}"
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE bench{n}")
    return server.url_for(f"bench{n}")


def main(repeats: int = 3) -> int:
    from tests.postgres import PostgresServer, server_bin

    path = str(SHIPPED)
    readings = count_readings(path)
    bin_dir = server_bin()
    kinds = ["sqlite"] + (["postgresql"] if bin_dir else [])
    if bin_dir is None:
        print("no PostgreSQL server installed: SQLite only")
    print(f"shipped data: {readings:,} readings, median of {repeats} runs")
    n = 0
    server_context = PostgresServer(bin_dir, durable=True) if bin_dir else nullcontext()
    with tempfile.TemporaryDirectory() as tmp, server_context as server:
        for label, workers, procs in LAYOUTS:
            plain = [_spawn("discarded", path, workers, procs) for _ in range(repeats)]
            base = statistics.median(readings / r["seconds"] for r in plain)
            print(f"  flow into discarding sinks {label:<12}{base:>10,.0f} readings/s")
            for kind in kinds:
                rates, rows = [], 0
                for _ in range(repeats):
                    n += 1
                    url = _fresh(kind, Path(tmp), server, n)
                    seconds = _spawn("database", path, workers, procs, url)["seconds"]
                    rows = _rows(url)
                    rates.append((rows / seconds, readings / seconds))
                row_rate = statistics.median(r for r, _ in rates)
                reading_rate = statistics.median(r for _, r in rates)
                print(
                    f"  flow into {kind:<16} {label:<12}{reading_rate:>10,.0f} readings/s "
                    f"= {row_rate:>8,.0f} rows/s ({rows:,} rows), "
                    f"{reading_rate / base:.2f} of discarding"
                )
    return 0
