"""Database sinks: each batch of records is one transaction of upserts into its table.

A batch that Bytewax replays after a resume (the outputs between the last snapshot and the
crash) writes the same rows under the same primary keys, so it changes nothing: with recovery,
the database holds each result exactly once. Every worker (thread or process) has its own
connection; the dialects make concurrent writers safe (`sinks/sqlite.py`, `sinks/postgres.py`).

A database in trouble (down, locked, full, refusing the password) is retried with exponential
backoff (`sources/retry.py`), one short line in the log per failed attempt; when the retries are
spent the flow stops with `DatabaseUnavailable`, naming the table, the database and the last
error. The failed batch was not committed, and neither was the epoch it belongs to, so a run
resumed from the recovery directory writes it again: nothing is lost.

>>> database_url("anomalies.db"), database_url("sqlite:///data/x.sqlite")
('sqlite:///anomalies.db', 'sqlite:///data/x.sqlite')
>>> database_url("postgresql://me@db.example/aq"), database_url("anomalies.jsonl")
('postgresql://me@db.example/aq', None)

Every message (a retry's warning, the final error, the driver's error it quotes) goes through
`core.redaction.redact` with the URL it is about: no password reaches the log.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from core.redaction import redact
from sinks.tables import TABLES, SchemaMismatch, Table
from sources.retry import Backoff, attempts, cause, retrying

log = logging.getLogger("air_quality.database")

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: Seconds one attempt waits for a lock or a connection.
TIMEOUT = 10.0
#: Default retry budget: 8 retries, waits of about 0.5-1, 1-2, 2-4, ... up to 15-30 s: between
#: about 1 and 2 minutes of trouble are ridden out before the flow stops.
RETRIES = 8
BACKOFF = Backoff(base=1.0, cap=30.0)

T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    """The database could not take a batch within the retry budget; the batch is not written."""


class DatabaseRejected(RuntimeError):
    """The database refused a batch or the schema for a reason retrying cannot fix."""


class Dialect(Protocol):
    """What a database needs to provide to `DatabaseSink`."""

    where: str  # the database, for messages (no password)
    errors: tuple[type[Exception], ...]  # the driver's errors

    def transient(self, error: Exception) -> bool:
        """Whether one of `errors` is worth retrying (connection, lock, disk full)."""
        ...

    def connect(self) -> Any: ...

    def create(self, conn: Any, table: Table) -> None: ...

    def upsert(self, conn: Any, table: Table, rows: list[tuple]) -> None: ...

    def close(self, conn: Any) -> None: ...


def database_url(target: Any) -> str | None:
    """The database URL that an output target names, or None when it names no database.

    `sqlite:///PATH` or a path ending in .db, .sqlite or .sqlite3 is SQLite; `postgresql://...`
    (or `postgres://`) is PostgreSQL.
    """
    if isinstance(target, Path):
        target = str(target)
    if not isinstance(target, str):
        return None
    if target.startswith("sqlite:///") or target.startswith(POSTGRES_SCHEMES):
        return target
    if target.lower().endswith(SQLITE_SUFFIXES):
        return "sqlite:///" + target
    return None


def dialect_for(url: str, timeout: float) -> Dialect:
    """The dialect of a `database_url`; `timeout`: seconds to wait for a lock or a connection."""
    if url.startswith("sqlite:///"):
        from sinks.sqlite import SqliteDialect

        return SqliteDialect(url.removeprefix("sqlite:///"), timeout)
    if url.startswith(POSTGRES_SCHEMES):
        from sinks.postgres import PostgresDialect

        return PostgresDialect(url, timeout)
    raise ValueError(f"not a database URL: {url!r} (sqlite:///PATH or postgresql://...)")


class _DatabasePartition(StatelessSinkPartition[Mapping[str, Any]]):
    """One worker's connection to the database: connects (and creates the table) when built,
    then writes each batch in one transaction, riding out transient trouble."""

    def __init__(self, sink: DatabaseSink, worker_index: int):
        self._sink = sink
        self._dialect = dialect_for(sink.url, sink.timeout)
        self._table = TABLES[sink.table]
        self._conn: Any = None
        self._rng = random.Random(None if sink.seed is None else sink.seed + worker_index)
        self._attempt("connect", lambda _conn: None)  # a bad target fails before any data

    def write_batch(self, items: list[Mapping[str, Any]]) -> None:
        rows = self._table.rows(items)
        if rows:
            self._attempt(
                f"write {len(rows)} rows",
                lambda conn: self._dialect.upsert(conn, self._table, rows),
            )

    def _attempt(self, what: str, action: Callable[[Any], T]) -> T:
        """Run `action` on a live connection, reconnecting and retrying on transient errors."""
        sink, dialect, table = self._sink, self._dialect, self._table.name
        retryer = retrying(
            f"{table} in {dialect.where}: could not {what}",
            policy=sink.backoff,
            retries=sink.retries,
            rng=self._rng,
            transient=lambda exc: isinstance(exc, dialect.errors) and dialect.transient(exc),
            log=log,
            describe=lambda exc: cause(self._redacted(exc)),
        )
        try:
            return retryer(self._once, action)
        except (*dialect.errors, SchemaMismatch) as exc:
            # from None: the driver's own error, shown in a traceback, may hold the URL
            if isinstance(exc, SchemaMismatch) or not dialect.transient(exc):
                raise DatabaseRejected(
                    f"{table} in {dialect.where}: could not {what}: "
                    f"{type(exc).__name__}: {self._redacted(exc)}"
                ) from None
            fix = "Fix the database"
            if what.startswith("write"):
                fix = "Nothing of this batch was written; fix the database"
            raise DatabaseUnavailable(
                f"{table} in {dialect.where}: could not {what} after {attempts(retryer)} "
                f"attempts, last: {cause(self._redacted(exc))}. {fix}, then run the same "
                "command again (with -r, it resumes from the last snapshot and writes what is "
                "missing)"
            ) from None

    def _redacted(self, exc: BaseException) -> str:
        """The error's text on one line, with every piece of the target's credentials masked
        (redacted whole before any truncation, so no cut can leave part of a secret)."""
        return redact(" ".join(str(exc).split()), self._sink.url)

    def _once(self, action: Callable[[Any], T]) -> T:
        """One attempt on a live connection (opened, and the table created, if need be); a
        failed one drops the connection, so the next attempt starts on a new one."""
        try:
            if self._conn is None:
                self._conn = self._dialect.connect()
                self._dialect.create(self._conn, self._table)
            return action(self._conn)
        except (*self._dialect.errors, SchemaMismatch):
            self._drop()
            raise

    def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._dialect.close(conn)

    def close(self) -> None:
        self._drop()


class DatabaseSink(DynamicSink[Mapping[str, Any]]):
    """Upsert the flow's records (dicts) into `table` of the database at `url`.

    `table` is one of `sinks.tables.TABLES` (`anomalies`, `readings`, `dead_letters`, `events`,
    `incidents`), matching the records the sink receives. `url` is anything `database_url`
    accepts. `timeout` is how long one attempt waits for a lock or a connection; `retries` and
    `backoff` (a `Backoff` or its options) how long trouble is ridden out before the flow stops.
    """

    def __init__(
        self,
        url: str | Path,
        table: str,
        *,
        timeout: float = TIMEOUT,
        retries: int = RETRIES,
        backoff: Backoff | Mapping[str, float] | None = None,
        seed: int | None = None,
    ):
        resolved = database_url(url)
        if resolved is None:
            raise ValueError(
                f"{url!r} names no database: use sqlite:///PATH, a path ending in "
                f"{', '.join(SQLITE_SUFFIXES)}, or postgresql://..."
            )
        if table not in TABLES:
            raise ValueError(f"table must be one of {sorted(TABLES)}, got {table!r}")
        if retries < 0 or timeout <= 0:
            raise ValueError("retries must be >= 0 and timeout > 0")
        if resolved.removeprefix("sqlite:///") in ("", ":memory:"):
            raise ValueError(
                f"{table}: {url!r} keeps nothing (an in-memory database); "
                "allowed: a database file path or postgresql://..."
            )
        if resolved.startswith("sqlite:///"):
            folder = Path(resolved.removeprefix("sqlite:///")).parent
            if not folder.is_dir():
                raise ValueError(f"{table}: the folder of {url!r} does not exist ({folder})")
        self.url = resolved
        self.table = table
        self.timeout = timeout
        self.retries = retries
        if isinstance(backoff, Mapping):
            backoff = Backoff(**backoff)
        self.backoff = backoff or BACKOFF
        self.seed = seed

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _DatabasePartition:
        return _DatabasePartition(self, worker_index)
