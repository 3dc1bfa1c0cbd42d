"""The database tables of the flow's outputs, and how each output record becomes a row.

One `Table` per output: its typed columns, its primary key (what makes a row the same row when a
batch is replayed after a resume) and its indexes. Rows are dialect-neutral tuples (times as ISO
8601 UTC text, JSON as text, booleans as bool); each dialect maps the column kinds to its own
types (`sinks/sqlite.py`, `sinks/postgres.py`).

>>> row = TABLES["events"].row({"event": "gap", "sensor_index": 7,
...     "last_seen": "2026-04-01T00:00:00Z", "time": "2026-04-01T00:10:00Z",
...     "seconds": 600, "missed": 4, "clock": "event"})
>>> row
(7, '2026-04-01T00:00:00Z', 'gap', '2026-04-01T00:10:00Z', 600, 4, 'event')
>>> TABLES["events"].key(row)
(7, '2026-04-01T00:00:00Z', 'gap')
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.dead_letters import RAW_LIMIT, json_safe
from core.json_lines import to_line

#: Column kinds (each dialect has a type for each).
KINDS = ("int", "real", "text", "time", "bool", "json")
#: Measurements with a typed column of their own in `readings` and `anomalies` (every value is
#: also in the `values` or `details` JSON column); a dot in a name becomes `_`.
MEASUREMENTS = (
    "pm1.0_cf_1",
    "pm2.5_cf_1",
    "pm10.0_cf_1",
    "pm2.5_epa",
    "temperature",
    "humidity",
    "pressure",
    "aqi",
)


#: `storable_raw`'s limit: a raw the flow already made safe (`dead_letter_record`: at most about
#: 12 x RAW_LIMIT characters of JSON, with non-ASCII text escaped) passes through unchanged, so
#: its prefix is not cut again; any other raw is still bounded.
STORED_RAW_LIMIT = 16 * RAW_LIMIT


class SchemaMismatch(ValueError):
    """A table of that name exists with other columns."""


def quote(name: str) -> str:
    """An SQL identifier, quoted (`values` and `time` are key words)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class Column:
    """A typed column: its name, its kind (one of `KINDS`), and whether it may be NULL."""

    name: str
    kind: str
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class Table:
    """A table's name, typed columns, primary key, indexes, and its record → row function."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...]
    to_row: Callable[[Mapping[str, Any]], tuple]
    #: Where the primary key's columns are in a row (derived from `columns`).
    key_positions: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        object.__setattr__(self, "key_positions", tuple(map(names.index, self.primary_key)))

    def row(self, record: Mapping[str, Any]) -> tuple:
        """One record as a row of this table's columns."""
        return self.to_row(record)

    def key(self, row: tuple) -> tuple:
        """The primary key's values of a row."""
        return tuple(row[p] for p in self.key_positions)

    def create_sql(self, types: Mapping[str, str]) -> list[str]:
        """`CREATE TABLE` and `CREATE INDEX` statements, each `IF NOT EXISTS`, with a dialect's
        `types` for the column kinds."""
        columns = [
            f"{quote(c.name)} {types[c.kind]}{'' if c.nullable else ' NOT NULL'}"
            for c in self.columns
        ]
        key = ", ".join(map(quote, self.primary_key))
        statements = [
            f"CREATE TABLE IF NOT EXISTS {quote(self.name)} ({', '.join(columns)}, "
            f"PRIMARY KEY ({key}))"
        ]
        for index in self.indexes:
            name = quote(f"{self.name}_by_{'_'.join(index)}")
            on = ", ".join(map(quote, index))
            statements.append(f"CREATE INDEX IF NOT EXISTS {name} ON {quote(self.name)} ({on})")
        return statements

    def key_sql(self) -> str:
        """The primary key's columns, quoted, for `ON CONFLICT` and `ORDER BY`."""
        return ", ".join(map(quote, self.primary_key))

    def upsert_sql(self, placeholder: str = "?", select: str | None = None) -> str:
        """`INSERT ... ON CONFLICT (key) DO UPDATE SET` every other column: a row already there
        under the same key is replaced by the new one (SQLite and PostgreSQL alike). The values
        are one row of placeholders, or every row of `SELECT ... FROM select`."""
        names = ", ".join(quote(c.name) for c in self.columns)
        updates = ", ".join(
            f"{quote(c.name)} = excluded.{quote(c.name)}"
            for c in self.columns
            if c.name not in self.primary_key
        )
        if select is None:
            values = f"VALUES ({', '.join([placeholder] * len(self.columns))})"
        else:
            values = f"SELECT {names} FROM {select}"
        return (
            f"INSERT INTO {quote(self.name)} ({names}) {values} "
            f"ON CONFLICT ({self.key_sql()}) DO UPDATE SET {updates}"
        )

    def check_columns(self, found: Sequence[str], where: str) -> None:
        """Refuse a table that exists with other columns (an older or a foreign schema)."""
        expected = [c.name for c in self.columns]
        if list(found) != expected:
            raise SchemaMismatch(
                f"table {self.name} in {where} has the columns {list(found)}, expected "
                f"{expected}: write to another database, or rename that table"
            )

    def rows(self, records: Iterable[Mapping[str, Any]]) -> list[tuple]:
        """One row per primary key (the last record wins, as the upsert would), in key order, so
        concurrent writers take row locks in the same order."""
        by_key: dict[tuple, tuple] = {}
        for record in records:
            row = self.to_row(record)
            by_key[self.key(row)] = row
        return [by_key[k] for k in sorted(by_key)]


def column_name(field: str) -> str:
    """A measurement's column: `pm2.5_cf_1` → `pm2_5_cf_1`."""
    return field.replace(".", "_")


def to_json(value: Any) -> str:
    """Compact JSON text for a JSON column (orjson; a non-finite float would be null).

    Text no database takes in JSON (a lone surrogate; NUL, which PostgreSQL's JSONB refuses),
    say in a field name of a payload, becomes U+FFFD: the rare record that holds some is
    written again through `storable_text`.

    >>> to_json({"pm\\x00x": 1.0, "ok": ["a\\ud800"]}) == '{"pm\\ufffdx":1.0,"ok":["a\\ufffd"]}'
    True
    """
    try:
        text = orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:  # a lone surrogate
        return orjson.dumps(_storable(value), default=str).decode()
    if "\\u0000" in text:
        return orjson.dumps(_storable(value), default=str).decode()
    return text


def _storable(value: Any) -> Any:
    """`value` with every text in it (keys too) made `storable_text`."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, Mapping):
        return {storable_text(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def storable_raw(raw: Any) -> tuple[str, str]:
    """A dead letter's raw input as text any database stores, and its SHA-256 (hex).

    The text is the JSON of `core.dead_letters.json_safe(raw)` (no NaN, no lone surrogate,
    bounded; a long input is its prefix and its length), ASCII only, so a NUL or any byte that
    is not UTF-8 reaches the database as an escape. The raw of a flow's dead letter is already
    `json_safe`: it is stored as the JSON-lines sinks write it.

    >>> storable_raw([1, float("nan"), "é\\x00"])[0]
    '[1,"NaN","\\\\u00e9\\\\u0000"]'
    >>> cut = json_safe("x" * 5000)
    >>> storable_raw(cut)[0] == to_line(cut) == to_line({"prefix": "x" * 4096, "characters": 5000})
    True
    """
    text = to_line(json_safe(raw, STORED_RAW_LIMIT))
    return text, hashlib.sha256(text.encode("ascii")).hexdigest()


def _measurements(values: Mapping[str, Any]) -> list[Any]:
    return [values.get(name) for name in MEASUREMENTS]


def _reading_row(r: Mapping[str, Any]) -> tuple:
    values = r["values"]
    return (
        r["sensor_index"],
        r["time"],
        r["status"],
        r["score"],
        r["placeholder"],
        *_measurements(values),
        to_json(values),
        to_json(r["imputed"]),
        to_json(r["missing"]),
        to_json(r["flags"]),
        to_json(r.get("reasons", [])),
    )


_ANOMALY_FIXED = frozenset({"sensor_index", "time", "kind", "reasons", "score", "imputed"})


def _anomaly_row(r: Mapping[str, Any]) -> tuple:
    details = {k: v for k, v in r.items() if k not in _ANOMALY_FIXED}
    return (
        r["sensor_index"],
        r["time"],
        r.get("kind", "anomaly"),
        to_json(r.get("reasons", [])),
        r["score"],
        *_measurements(details),
        to_json(details),
        to_json(r["imputed"]),
    )


def _event_row(e: Mapping[str, Any]) -> tuple:
    return (
        e["sensor_index"],
        e["last_seen"],
        e["event"],
        e["time"],
        e["seconds"],
        e["missed"],
        e["clock"],
    )


def storable_text(value: Any) -> str:
    """Text that encodes as UTF-8 and holds no NUL (which PostgreSQL's TEXT refuses).

    >>> storable_text("a\\x00b\\ud800") == "a\\ufffdb\\ufffd"
    True
    """
    text = str(value)
    if not text.isascii():
        text = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text.replace("\x00", "\ufffd")


def _dead_letter_row(d: Mapping[str, Any]) -> tuple:
    raw, digest = storable_raw(d["raw"])
    return (storable_text(d["origin"]), digest, storable_text(d["reason"]), raw)


#: An incident record's fields with a column of their own; any other (a kind's own facts) is
#: kept in the `details` JSON column, so new incident kinds need no new schema.
_INCIDENT_FIXED = frozenset(
    {"id", "state", "kind", "time", "started", "reasons", "count", "sensor_index", "area",
     "sensors"}
)  # fmt: skip


def _incident_row(i: Mapping[str, Any]) -> tuple:
    details = {k: v for k, v in i.items() if k not in _INCIDENT_FIXED}
    sensors = i.get("sensors")
    return (
        storable_text(i["id"]),
        storable_text(i["state"]),
        storable_text(i["kind"]),
        i["time"],
        i["started"],
        to_json(i.get("reasons", [])),
        i.get("count"),
        i.get("sensor_index"),
        None if i.get("area") is None else storable_text(i["area"]),
        None if sensors is None else to_json(sensors),
        to_json(details),
    )


_MEASUREMENT_COLUMNS = tuple(Column(column_name(f), "real") for f in MEASUREMENTS)

TABLES: dict[str, Table] = {
    "readings": Table(
        "readings",
        (
            Column("sensor_index", "int", False),
            Column("time", "time", False),
            Column("status", "text", False),
            Column("score", "real"),
            Column("placeholder", "bool", False),
            *_MEASUREMENT_COLUMNS,
            Column("values", "json", False),
            Column("imputed", "json", False),
            Column("missing", "json", False),
            Column("flags", "json", False),
            Column("reasons", "json", False),
        ),
        ("sensor_index", "time"),
        (("time",),),
        _reading_row,
    ),
    "anomalies": Table(
        "anomalies",
        (
            Column("sensor_index", "int", False),
            Column("time", "time", False),
            Column("kind", "text", False),
            Column("reasons", "json", False),
            Column("score", "real"),
            *_MEASUREMENT_COLUMNS,
            Column("details", "json", False),
            Column("imputed", "json", False),
        ),
        ("sensor_index", "time"),
        (("time",),),
        _anomaly_row,
    ),
    "events": Table(
        "events",
        (
            Column("sensor_index", "int", False),
            Column("last_seen", "time", False),
            Column("event", "text", False),
            Column("time", "time"),
            Column("seconds", "int", False),
            Column("missed", "int", False),
            Column("clock", "text", False),
        ),
        ("sensor_index", "last_seen", "event"),
        (("last_seen",),),
        _event_row,
    ),
    "dead_letters": Table(
        "dead_letters",
        (
            Column("origin", "text", False),
            Column("raw_sha256", "text", False),
            Column("reason", "text", False),
            Column("raw", "text", False),
        ),
        ("origin", "raw_sha256"),
        (),
        _dead_letter_row,
    ),
    # an incident's `open` and its `close` record, each once (a replayed one is the same row)
    "incidents": Table(
        "incidents",
        (
            Column("id", "text", False),
            Column("state", "text", False),
            Column("kind", "text", False),
            Column("time", "time", False),
            Column("started", "time", False),
            Column("reasons", "json", False),
            Column("count", "int"),
            Column("sensor_index", "int"),
            Column("area", "text"),
            Column("sensors", "json"),
            Column("details", "json", False),
        ),
        ("id", "state"),
        (("time",), ("sensor_index",)),
        _incident_row,
    ),
}


def _health_row(h: Mapping[str, Any]) -> tuple:
    return (
        h["minute"], h["run"], h["readings"], h["dead_letters"], h["gaps"], h["offline"],
        h["newest"], h["updated"],
    )  # fmt: skip


#: The run's health, one row per minute of the system clock and run (`dataflows/health.py`):
#: what the flow took in that minute, for the live view (`viewer/`).
TABLES["health"] = Table(
    "health",
    (
        Column("minute", "time", False),
        Column("run", "text", False),
        Column("readings", "int", False),
        Column("dead_letters", "int", False),
        Column("gaps", "int", False),
        Column("offline", "int", False),
        Column("newest", "time"),
        Column("updated", "time", False),
    ),
    ("minute", "run"),
    (),
    _health_row,
)
