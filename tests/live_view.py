"""Test helpers for the live view (`viewer/`): a database that a real flow run wrote on the
shipped data, and the view served on a free loopback port in a thread."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bytewax.testing import TestingSink, run_main

from dataflows.air_quality import build_flow
from sinks.tables import TABLES
from tests.postgres import free_port

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "polls.jsonl"


def write_incidents(path: Path, records: list[dict[str, Any]]) -> None:
    """The flow's incident records into an `incidents` table of the SQLite file, for as long as
    the flow has no database table of its own for them (`sinks/tables.py`)."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS incidents (id TEXT NOT NULL, state TEXT NOT NULL, "
            "kind TEXT NOT NULL, time TEXT NOT NULL, started TEXT NOT NULL, reasons TEXT NOT NULL,"
            " count INTEGER NOT NULL, sensor_index INTEGER, area TEXT, sensors TEXT, "
            "PRIMARY KEY (id, state))"
        )
        conn.executemany(
            "INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r["id"], r["state"], r["kind"], r["time"], r["started"],
                    json.dumps(r["reasons"]), r["count"], r.get("sensor_index"),
                    r.get("area"), json.dumps(r.get("sensors", [])),
                )  # fmt: skip
                for r in records
            ],
        )


def flow_database(path: Path, source: Path = SHIPPED) -> list[dict[str, Any]]:
    """Run the flow on `source` with every output into the SQLite file `path`; returns the
    incident records (also in the database's `incidents` table)."""
    db = str(path)
    incidents: list[dict[str, Any]] = []
    outputs = dict.fromkeys(("output", "readings", "dead_letters", "events"), db)
    if "incidents" in TABLES:  # the flow writes them itself
        run_main(build_flow(str(source), incidents=db, **outputs))
        with sqlite3.connect(path) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM incidents")]
    run_main(build_flow(str(source), incidents=TestingSink(incidents), **outputs))
    write_incidents(path, incidents)
    return incidents


@contextmanager
def served(app: Any) -> Iterator[str]:
    """`app` under uvicorn on 127.0.0.1 in a thread; yields its base URL; stopped at the end."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live view did not start within 10 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
