"""What the live view reads from the flow's database (SQLite or PostgreSQL), as plain dicts.

Every query is bounded by an index (`readings` by `(sensor_index, time)` and by `time`,
`anomalies` likewise, `events` by its key) and returns at most a few thousand rows: a sensor's
story is aggregated in the database to the number of points the chart can show. A table the flow
did not write (no readings output, no `incidents` table yet) reads as empty, never as an error.

Times are ISO 8601 UTC text (`2026-04-01T00:02:00Z`) in and out, whatever the dialect.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from sinks.database import database_url, redact

#: Alerts newer than this (before the newest reading) mark a sensor on the map.
MARK_SECONDS = 3600
#: A sensor's story spans this much before its newest reading unless asked otherwise.
STORY_SECONDS = 86400
#: The most points a story's series has (more readings are averaged into buckets).
MAX_POINTS = 5000
#: The most flagged readings, alerts and incidents a story lists.
LIST_LIMIT = 1000
#: Channels and fields a story reads from the `values` JSON (no typed column of their own).
CHANNEL_A, CHANNEL_B, NOWCAST = "pm2.5_cf_1_a", "pm2.5_cf_1_b", "pm2.5_nowcast"


class BadRequest(ValueError):
    """A query parameter the view cannot use (answered with HTTP 400)."""


def iso(value: Any) -> str | None:
    """A database time (PostgreSQL's datetime, SQLite's text) as ISO 8601 UTC text."""
    if value is None or isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, name: str) -> datetime:
    """An ISO 8601 time from a query parameter (UTC when it names no zone), or `BadRequest`.

    >>> parse_time("2026-04-01T00:02:00Z", "end").isoformat()
    '2026-04-01T00:02:00+00:00'
    >>> parse_time("yesterday", "start")
    Traceback (most recent call last):
    viewer.queries.BadRequest: start: 'yesterday' is not an ISO 8601 time
    """
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise BadRequest(f"{name}: {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if not datetime(1971, 1, 1, tzinfo=UTC) <= when <= datetime(9000, 1, 1, tzinfo=UTC):
        raise BadRequest(f"{name}: {text!r} is out of range")
    return when.astimezone(UTC)


def _text(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(value: Any) -> Any:
    """A JSON column's value: SQLite gives text, psycopg the parsed value."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


@dataclass(frozen=True)
class Dialect:
    """The SQL that differs between SQLite and PostgreSQL."""

    p: str  # placeholder
    epoch: str  # `{}`: a time column -> epoch seconds
    field: str  # `{}`: a key of the `values` JSON, as a real
    nonempty: str  # `{}`: a JSON array column is not empty
    member: str  # `{}`: a JSON array column holds the parameter (an int)
    bucket: str  # a row's bucket: (epoch seconds - origin) // width, origin and width parameters

    def time(self, when: datetime) -> Any:
        return when if self.p == "%s" else _text(when)


SQLITE = Dialect(
    "?",
    "unixepoch({})",
    """CAST(json_extract("values", '$."{}"') AS REAL)""",
    "{} <> '[]'",
    "EXISTS (SELECT 1 FROM json_each({}) WHERE value = ?)",
    "(unixepoch(time) - ?) / ?",
)
POSTGRES = Dialect(
    "%s",
    "extract(epoch FROM {})",
    """("values"->>'{}')::double precision""",
    "{} <> '[]'::jsonb",
    "{} @> to_jsonb(%s::bigint)",
    "floor((extract(epoch FROM time) - %s) / %s)",
)


class Store:
    """Read-only queries on one database; `url`: as the flow's outputs take it."""

    def __init__(self, url: str, pool_size: int = 4):
        resolved = database_url(url)
        if resolved is None:
            raise ValueError(
                f"{url!r} names no database: a path ending in .db, .sqlite or .sqlite3, "
                "sqlite:///PATH, or postgresql://..."
            )
        self.url = resolved
        self.where = redact(resolved)
        self.sqlite = resolved.startswith("sqlite:///")
        self.d = SQLITE if self.sqlite else POSTGRES
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._opened = 0

    # --- connections ---------------------------------------------------------------------

    def _connect(self) -> Any:
        if self.sqlite:
            path = self.url.removeprefix("sqlite:///")
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, timeout=5.0, check_same_thread=False
            )
            return conn
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET statement_timeout = 10000")
        return conn

    def check(self) -> None:
        """Connect once, so a wrong database is one clear error before the server starts."""
        with self._conn():
            pass

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        ok = False
        try:
            yield conn
            ok = True
        finally:
            if ok and self._pool.qsize() < self._pool_size:
                self._pool.put(conn)
            else:
                conn.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._conn() as conn:
            cursor = conn.execute(sql.replace("?", self.d.p) if not self.sqlite else sql, params)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._conn() as conn:
            return conn.execute(sql if self.sqlite else sql.replace("?", "%s"), params).fetchall()

    def tables(self) -> set[str]:
        """The tables the database holds."""
        if self.sqlite:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
        return {r["name"] for r in self._rows(sql)}

    # --- the map -------------------------------------------------------------------------

    def newest(self) -> datetime | None:
        """The newest reading's time (the view's "now": a replayed file has its own clock)."""
        if "readings" not in self.tables():
            return None
        row = self._rows("SELECT max(time) AS t FROM readings")[0]["t"]
        if row is None:
            return None
        return parse_time(row, "newest") if isinstance(row, str) else row.astimezone(UTC)

    def sensors(self) -> dict[str, Any]:
        """Every sensor's newest reading (position, corrected PM2.5, AQI), its recent alert
        kinds and whether it is offline, with the newest reading's time."""
        tables = self.tables()
        if "readings" not in tables:
            return {"newest": None, "columns": [], "sensors": []}
        if self.sqlite:
            # SQLite: the row of max(time) per group, over the primary key's index
            latest = self._tuples(
                "SELECT sensor_index, max(time) AS time, pm2_5_epa, aqi, "
                "json_extract(\"values\", '$.latitude'), json_extract(\"values\", '$.longitude') "
                "FROM readings WHERE placeholder = 0 GROUP BY sensor_index"
            )
        else:
            # PostgreSQL: a skip scan down the primary key (sensor_index, time): each step is
            # one index descent to the next sensor's newest reading, not a scan of every reading
            newest_row = (
                "SELECT sensor_index, time, pm2_5_epa, aqi, "
                "(\"values\"->>'latitude')::float8 AS lat, "
                "(\"values\"->>'longitude')::float8 AS lon FROM readings r WHERE NOT placeholder"
            )
            latest = self._tuples(
                f"WITH RECURSIVE s AS (({newest_row} "
                "ORDER BY sensor_index DESC, time DESC LIMIT 1) UNION ALL "
                f"SELECT n.* FROM s CROSS JOIN LATERAL ({newest_row} "
                "AND r.sensor_index < s.sensor_index "
                "ORDER BY sensor_index DESC, time DESC LIMIT 1) n) "
                "SELECT sensor_index, to_char(time, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                "pm2_5_epa, aqi, lat, lon FROM s ORDER BY sensor_index"
            )
        newest = max((r[1] for r in latest), default=None)
        marks: dict[int, list[str]] = {}
        if newest is not None and "anomalies" in tables:
            since = self._since(newest, MARK_SECONDS)
            for sensor, kind in self._tuples(
                "SELECT sensor_index, kind FROM anomalies WHERE time > ? "
                "GROUP BY sensor_index, kind",
                (since,),
            ):
                marks.setdefault(sensor, []).append(kind)
        offline = set(self.offline()) if "events" in tables else set()
        columns = ["sensor_index", "lat", "lon", "time", "pm2_5_epa", "aqi", "kinds", "offline"]
        rows = [
            [sensor, lat, lon, when, epa, aqi, sorted(marks.get(sensor, ())), sensor in offline]
            for sensor, when, epa, aqi, lat, lon in latest
        ]
        return {"newest": newest, "columns": columns, "sensors": rows}

    def _since(self, newest: Any, seconds: int) -> Any:
        when = parse_time(newest, "newest") if isinstance(newest, str) else newest
        return self.d.time(when - timedelta(seconds=seconds))

    def offline(self) -> list[int]:
        """Sensors whose `sensor_offline` event no later reading has ended."""
        if not {"events", "readings"} <= self.tables():
            return []
        return [
            r["sensor_index"]
            for r in self._rows(
                "SELECT DISTINCT e.sensor_index FROM events e WHERE e.event = 'sensor_offline' "
                "AND NOT EXISTS (SELECT 1 FROM readings r "
                "WHERE r.sensor_index = e.sensor_index AND r.time > e.last_seen)"
            )
        ]

    # --- incidents -----------------------------------------------------------------------

    def incidents(self, limit: int = 200, sensor: int | None = None) -> dict[str, Any]:
        """Open incidents newest first (or every incident of one sensor, open or closed, as
        spans), from the `incidents` table when the flow writes one."""
        if "incidents" not in self.tables():
            return {"available": False, "open": 0, "incidents": []}
        if sensor is None:
            rows = self._rows(
                "SELECT * FROM incidents o WHERE o.state = 'open' AND NOT EXISTS ("
                "SELECT 1 FROM incidents c WHERE c.id = o.id AND c.state = 'close') "
                "ORDER BY o.started DESC, o.id LIMIT ?",
                (limit,),
            )
            total = self._rows(
                "SELECT count(DISTINCT id) AS n FROM incidents o WHERE o.state = 'open' AND "
                "NOT EXISTS (SELECT 1 FROM incidents c WHERE c.id = o.id AND c.state = 'close')"
            )[0]["n"]
            return {"available": True, "open": total, "incidents": [_incident(r) for r in rows]}
        member = self.d.member.format("sensors")
        rows = self._rows(
            f"SELECT * FROM incidents WHERE sensor_index = ? OR {member} "
            "ORDER BY started, id LIMIT ?",
            (sensor, sensor, LIST_LIMIT),
        )
        spans: dict[str, dict[str, Any]] = {}
        for r in map(_incident, rows):
            span = spans.setdefault(r["id"], {**r, "end": None})
            if r["state"] == "close":
                span.update(state="close", end=r["time"], reasons=r["reasons"])
        return {"available": True, "incidents": list(spans.values())}

    # --- a sensor's story ----------------------------------------------------------------

    def story(
        self,
        sensor: int,
        start: datetime | None = None,
        end: datetime | None = None,
        points: int = 1000,
    ) -> dict[str, Any]:
        """One sensor over a span: its series (raw A/B channels, cleaned and corrected PM2.5,
        NowCast, AQI; averaged into at most `points` buckets), its imputed and flagged
        readings, alerts, gaps and incidents."""
        if not 2 <= points <= MAX_POINTS:
            raise BadRequest(f"points: {points} is not between 2 and {MAX_POINTS}")
        tables = self.tables()
        if "readings" not in tables:
            raise LookupError("no readings table: run the flow with readings to this database")
        d = self.d
        if end is None:
            last = self._rows(
                "SELECT max(time) AS t FROM readings WHERE sensor_index = ?", (sensor,)
            )[0]["t"]
            if last is None:
                raise LookupError(f"sensor {sensor}: no readings")
            end = parse_time(last, "end") if isinstance(last, str) else last.astimezone(UTC)
        if start is None:
            start = end - timedelta(seconds=STORY_SECONDS)
        if start >= end:
            raise BadRequest("start must be before end")
        span = (sensor, d.time(start), d.time(end))
        where = "sensor_index = ? AND time >= ? AND time <= ?"
        count = self._rows(f"SELECT count(*) AS n FROM readings WHERE {where}", span)[0]["n"]
        series = [
            ("pm2_5_cf_1", "pm2_5_cf_1"),
            ("pm2_5_epa", "pm2_5_epa"),
            ("aqi", "aqi"),
            ("a", d.field.format(CHANNEL_A)),
            ("b", d.field.format(CHANNEL_B)),
            ("nowcast", d.field.format(NOWCAST)),
        ]
        imputed, flagged = d.nonempty.format("imputed"), d.nonempty.format("reasons")
        if count <= points:
            bucket = 0
            select = ", ".join(f"{sql} AS {name}" for name, sql in series)
            rows = self._rows(
                f"SELECT time, {select}, "
                f"CASE WHEN {imputed} THEN 1 ELSE 0 END AS imputed, "
                f"CASE WHEN {flagged} THEN 1 ELSE 0 END AS flagged, "
                "CASE WHEN placeholder THEN 1 ELSE 0 END AS placeholder "
                f"FROM readings WHERE {where} ORDER BY time",
                span,
            )
            for r in rows:
                r["time"] = iso(r["time"])
        else:  # averaged in the database into buckets of `bucket` seconds
            # `points` buckets hold the whole span, both ends included
            bucket = int((end - start).total_seconds()) // points + 1
            origin = int(start.timestamp())
            select = ", ".join(f"avg({sql}) AS {name}" for name, sql in series)
            rows = self._rows(
                f"SELECT {d.bucket} AS k, "
                f"min({d.epoch.format('time')}) AS t, {select}, "
                f"sum(CASE WHEN {imputed} THEN 1 ELSE 0 END) AS imputed, "
                f"sum(CASE WHEN {flagged} THEN 1 ELSE 0 END) AS flagged, "
                "sum(CASE WHEN placeholder THEN 1 ELSE 0 END) AS placeholder "
                f"FROM readings WHERE {where} GROUP BY k ORDER BY k",
                (origin, bucket, *span),
            )
            for r in rows:
                r["time"] = _text(datetime.fromtimestamp(float(r.pop("t")), tz=UTC))
                del r["k"]
                for name in ("imputed", "flagged", "placeholder"):
                    r[name] = int(r[name])
        flags = self._rows(
            f"SELECT time, reasons, flags FROM readings WHERE {where} AND {flagged} "
            "ORDER BY time LIMIT ?",
            (*span, LIST_LIMIT),
        )
        alerts = []
        if "anomalies" in tables:
            alerts = self._rows(
                f"SELECT time, kind, reasons, score FROM anomalies WHERE {where} "
                "ORDER BY time LIMIT ?",
                (*span, LIST_LIMIT),
            )
        gaps = []
        if "events" in tables:
            gaps = self._rows(
                "SELECT event, last_seen, time, seconds FROM events WHERE sensor_index = ? "
                "AND last_seen <= ? ORDER BY last_seen DESC LIMIT ?",
                (sensor, d.time(end), LIST_LIMIT),
            )
            gaps = [g for g in gaps if _ends_after(g, start)]
        incidents = self.incidents(sensor=sensor)["incidents"] if "incidents" in tables else []
        for r in flags:
            r.update(time=iso(r["time"]), reasons=_json(r["reasons"]), flags=_json(r["flags"]))
        for r in alerts:
            r.update(time=iso(r["time"]), reasons=_json(r["reasons"]))
        for g in gaps:
            g.update(last_seen=iso(g["last_seen"]), time=iso(g["time"]))
        start_text, end_text = _text(start), _text(end)
        incidents = [
            i
            for i in incidents
            if i["started"] <= end_text and (i["end"] or end_text) >= start_text
        ]
        return {
            "sensor_index": sensor,
            "start": start_text,
            "end": end_text,
            "readings": count,
            "bucket_seconds": bucket,
            "series": rows,
            "flagged": flags,
            "alerts": alerts,
            "gaps": gaps,
            "incidents": incidents,
        }

    # --- the run's health ----------------------------------------------------------------

    def health(self, minutes: int = 60) -> dict[str, Any]:
        """The last `minutes` rows of per-minute counts, totals, dead letters by reason,
        offline sensors and the last poll."""
        if not 1 <= minutes <= 10080:
            raise BadRequest(f"minutes: {minutes} is not between 1 and 10080")
        tables = self.tables()
        out: dict[str, Any] = {"minutes": [], "totals": {}, "dead_letter_reasons": []}
        if "health" in tables:
            rows = self._rows(
                "SELECT minute, sum(readings) AS readings, sum(dead_letters) AS dead_letters, "
                "sum(gaps) AS gaps, sum(offline) AS offline, max(newest) AS newest, "
                "max(updated) AS updated FROM health GROUP BY minute ORDER BY minute DESC "
                "LIMIT ?",
                (minutes,),
            )
            for r in rows:
                for name in ("minute", "newest", "updated"):
                    r[name] = iso(r[name])
                for name in ("readings", "dead_letters", "gaps", "offline"):
                    r[name] = int(r[name])
            out["minutes"] = rows[::-1]
            totals = self._rows(
                "SELECT sum(readings) AS readings, sum(dead_letters) AS dead_letters, "
                "sum(gaps) AS gaps, sum(offline) AS offline, max(newest) AS last_poll, "
                "max(updated) AS updated FROM health"
            )[0]
            out["totals"] = {
                k: iso(v) if k in ("last_poll", "updated") else int(v or 0)
                for k, v in totals.items()
            }
        if "dead_letters" in tables:
            out["dead_letter_reasons"] = self._rows(
                "SELECT reason, count(*) AS n FROM dead_letters GROUP BY reason "
                "ORDER BY n DESC, reason LIMIT 10"
            )
        out["offline_sensors"] = sorted(self.offline())
        return out


def _ends_after(gap: dict[str, Any], start: datetime) -> bool:
    """Whether a gap event reaches into a span starting at `start` (one still open does)."""
    end = gap["time"]
    if end is None:
        return True
    return (parse_time(end, "time") if isinstance(end, str) else end) >= start


def _incident(row: dict[str, Any]) -> dict[str, Any]:
    """An incident row as the flow's incident record (times as text, JSON parsed)."""
    out = dict(row)
    for name in ("time", "started"):
        out[name] = iso(out.get(name))
    for name in ("reasons", "sensors"):
        if name in out:
            out[name] = _json(out[name]) or []
    out["id"] = str(out.get("id"))
    return out
