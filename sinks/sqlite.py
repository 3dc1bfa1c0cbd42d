"""SQLite, the embedded default: one file that several workers and processes write safely.

The database is in WAL mode (readers never block the writer, and a reader such as a dashboard
can query while the flow writes); each batch takes the write lock at its start (`BEGIN
IMMEDIATE`), so concurrent writers queue on the busy timeout instead of failing part-way, and
`synchronous=FULL` makes each committed batch durable before Bytewax's snapshot of its epoch
can be. Times are ISO 8601 UTC text (`2026-04-01T03:22:00Z`: sorts as time, and SQLite's date
functions read it); JSON columns are text that SQLite's JSON functions read.

>>> import tempfile, os
>>> from sinks.tables import TABLES
>>> path = os.path.join(tempfile.mkdtemp(), "x.db")
>>> dialect = SqliteDialect(path, timeout=1.0)
>>> conn = dialect.connect(); dialect.create(conn, TABLES["events"])
>>> row = (7, "2026-04-01T00:00:00Z", "gap", "2026-04-01T00:10:00Z", 600, 4, "event")
>>> dialect.upsert(conn, TABLES["events"], [row]); dialect.upsert(conn, TABLES["events"], [row])
>>> conn.execute("SELECT count(*), max(missed) FROM events").fetchone()
(1, 4)
>>> conn.execute("PRAGMA journal_mode").fetchone()
('wal',)
"""

from __future__ import annotations

import sqlite3

from sinks.tables import Table, quote

TYPES = {
    "int": "INTEGER",
    "real": "REAL",
    "text": "TEXT",
    "time": "TEXT",
    "bool": "INTEGER",
    "json": "TEXT",
}

#: Primary result codes of trouble that passes (an extended code's low byte is its primary).
TRANSIENT_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


def create_statements(table: Table) -> list[str]:
    """`CREATE TABLE` and `CREATE INDEX`, each `IF NOT EXISTS`."""
    return table.create_sql(TYPES)


class SqliteDialect:
    """Connections, schema and upserts for one SQLite file."""

    errors = (sqlite3.Error,)

    def __init__(self, path: str, timeout: float):
        self.path = path
        self.where = path
        self.timeout = timeout

    @staticmethod
    def transient(error: Exception) -> bool:
        """Busy, locked, out of memory, read-only, I/O error, disk full, cannot open: trouble
        that passes. SQLITE_ERROR (an SQL mistake, a view where a table should be) does not."""
        if not isinstance(error, sqlite3.OperationalError):
            return False
        code = getattr(error, "sqlite_errorcode", None)
        return code is None or code & 0xFF in TRANSIENT_CODES

    def connect(self) -> sqlite3.Connection:
        # `timeout` is SQLite's busy timeout: how long a statement waits for another's lock
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def create(self, conn: sqlite3.Connection, table: Table) -> None:
        with _transaction(conn):
            for statement in create_statements(table):
                conn.execute(statement)
        found = [row[1] for row in conn.execute(f"PRAGMA table_info({quote(table.name)})")]
        table.check_columns(found, self.where)

    def upsert(self, conn: sqlite3.Connection, table: Table, rows: list[tuple]) -> None:
        with _transaction(conn):
            conn.executemany(table.upsert_sql("?"), rows)

    def close(self, conn: sqlite3.Connection) -> None:
        conn.close()


class _transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` when anything fails in between."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type | None, *_: object) -> None:
        if kind is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
