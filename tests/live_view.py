"""Test helpers for the live view (`viewer/`): a database that a real flow run wrote on the
shipped data, and the view served on a free loopback port in a thread."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bytewax.testing import TestingSink, run_main

from dataflows.air_quality import build_flow
from sinks.database import DatabaseSink
from tests.postgres import free_port

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "polls.jsonl"


def polls_with_bad_lines(folder: Path) -> Path:
    """The shipped polls with two lines that are not payloads (two dead letters)."""
    path = folder / "polls.jsonl"
    lines = SHIPPED.read_text().splitlines()
    lines[5:5] = ["not json {", '{"fields": 3}']
    path.write_text("\n".join(lines) + "\n")
    return path


def write_incidents(url: str, records: list[dict[str, Any]]) -> None:
    """Incident records into the database's `incidents` table, as the flow's sink writes them."""
    partition = DatabaseSink(url, "incidents").build("incidents_out", 0, 1)
    try:
        partition.write_batch(records)
    finally:
        partition.close()


def rows(url: str, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    """Rows of plain SQL as dicts, times as ISO text and JSON parsed (either dialect)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            found = cursor.fetchall()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            cursor = conn.execute(sql.replace("?", "%s"), params)
            names = [d.name for d in cursor.description]
            found = cursor.fetchall()
    return [{n: _normal(n, v) for n, v in zip(names, r, strict=True)} for r in found]


def _normal(name: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if name in ("reasons", "sensors", "flags", "imputed", "values") and isinstance(value, str):
        return json.loads(value)
    return value


@dataclass
class FlowRun:
    """What the flow emitted besides its database: its incident records and totals."""

    incidents: list[dict[str, Any]]
    totals: dict[str, int]


def flow_database(url: str, source: Path = SHIPPED, **options: Any) -> FlowRun:
    """Run the flow on `source` with every output into the database `url` (and `options`)."""
    totals: list[dict[str, int]] = []
    outputs = dict.fromkeys(("output", "readings", "dead_letters", "events", "incidents"), url)
    outputs["totals"] = TestingSink(totals)
    run_main(build_flow(str(source), **outputs, **options))
    return FlowRun(rows(url, "SELECT * FROM incidents"), totals[-1])


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
