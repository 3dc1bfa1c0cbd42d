"""Test helpers for the database sinks: what a table should hold, written from the flow's records
here (not by the sinks' code), and what it holds, read back with plain SQL and normalised (times
as ISO text, JSON parsed, booleans as bool) so SQLite and PostgreSQL compare alike."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC
from typing import Any

KEYS = {
    "anomalies": ("sensor_index", "time"),
    "readings": ("sensor_index", "time"),
    "events": ("sensor_index", "last_seen", "event"),
    "dead_letters": ("origin", "raw"),
    "incidents": ("id", "state"),
}
JSON_COLUMNS = {"values", "imputed", "missing", "flags", "details", "reasons", "raw", "sensors"}
TIME_COLUMNS = {"time", "last_seen", "started"}


#: build_flow's options for the five outputs, and the table each writes.
OUTPUTS = {
    "output": "anomalies",
    "readings": "readings",
    "dead_letters": "dead_letters",
    "events": "events",
    "incidents": "incidents",
}


def expected(table: str, records: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Rows by primary key from the flow's records (a later record under the same key wins)."""
    out = {}
    for r in records:
        if table == "anomalies":
            fixed = ("sensor_index", "time", "kind", "reasons", "score", "imputed")
            row = {k: r[k] for k in fixed[2:]}
            row["details"] = {k: v for k, v in r.items() if k not in fixed}
            row["pm1_0_cf_1"] = r.get("pm1.0_cf_1")
        elif table == "readings":
            names = ("status", "score", "values", "imputed", "missing", "flags", "reasons")
            row = {k: r[k] for k in names}
            row["placeholder"] = r["placeholder"]
            for field in ("pm1.0_cf_1", "pm2.5_epa", "humidity", "temperature"):
                row[field.replace(".", "_")] = r["values"].get(field)
        elif table == "events":
            row = {k: r[k] for k in ("time", "seconds", "missed", "clock")}
        elif table == "incidents":
            fixed = ("id", "state", "kind", "time", "started", "reasons", "count")
            fixed += ("sensor_index", "area", "sensors")  # absent: NULL
            row = {k: r.get(k) for k in fixed[2:]}
            row["details"] = {k: v for k, v in r.items() if k not in fixed}
        else:
            row = {"reason": r["reason"]}
        key = tuple(
            json.dumps(r[k]) if k == "raw" else r[k] for k in KEYS[table]
        )  # raw compared as JSON of the original
        out[key] = row
    return out


def _normal(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in TIME_COLUMNS and not isinstance(value, str):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if name in JSON_COLUMNS and isinstance(value, str):
        return json.loads(value)
    if name == "placeholder":
        return bool(value)
    return value


def fetch(url: str, table: str) -> dict[tuple, dict[str, Any]]:
    """Every row of `table` by primary key, normalised; `url` is `sqlite:///PATH` or PostgreSQL."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d.name for d in cursor.description]
            rows = cursor.fetchall()
    out = {}
    for values in rows:
        row = {n: _normal(n, v) for n, v in zip(names, values, strict=True)}
        key = tuple(json.dumps(row[k]) if k == "raw" else row[k] for k in KEYS[table])
        out[key] = row
    return out


def matches(got: dict[tuple, dict[str, Any]], want: dict[tuple, dict[str, Any]]) -> bool:
    """The same keys, and each row holds the expected values (extra columns are not compared)."""
    return got.keys() == want.keys() and all(
        {k: got[key][k] for k in row} == row for key, row in want.items()
    )
