"""Connections to the Store's database: a SQLite file, or a PostgreSQL server shared by hosts.

`Store` and `Insights` write their SQL once, with `?` placeholders and portable types; each
class here holds only what differs between the two databases: how to connect and share
connections between threads, how a write transaction starts, column types, the append-only
rule, locks that span processes, and the few functions the insights queries need.

    open_database("path/to/file.sqlite3")          → SQLiteDatabase
    open_database("postgresql://user@host:5432/db") → PostgresDatabase

A SQLite file is for one host (its locking breaks on network file systems); several app
servers share one PostgreSQL. A password in the URL never appears in a message.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from suggester.errors import SuggesterError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT_S = 5
POOL_SIZE = 8  # idle PostgreSQL connections kept per process (gthread: 4 threads per worker)


class StoreError(SuggesterError):
    """The database cannot be used: unreadable file, unreachable server, newer schema."""


class StoreBusy(StoreError):
    """Another process held a database-wide lock for longer than we could wait."""


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ...) -> Cursor: ...


class Database(Protocol):
    """What `Store` needs from a database; see the two implementations below."""

    kind: str
    location: str  # for messages: a path, or host:port/dbname (never a password)
    path: Path | None
    integrity_error: type[Exception]
    unusable_errors: tuple[type[Exception], ...]  # the database is not one Suggester can use
    ddl: dict[str, str]  # column types and clauses that `Store`'s schema leaves open
    functions: dict[str, str]  # JSON and date expressions of the insights queries
    row_order: str  # a column that orders suggestions by insertion

    def read(self) -> AbstractContextManager[Connection]: ...

    def write(self) -> AbstractContextManager[Connection]: ...

    def exclusive(self, name: str, timeout: float) -> AbstractContextManager[None]: ...

    def lock_schema(self, db: Connection) -> None: ...

    def append_only(self, table: str) -> list[str]: ...

    def unusable(self, exc: Exception) -> StoreError: ...

    def close(self) -> None: ...


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def open_database(target: Path | str) -> Database:
    """A PostgreSQL URL opens a server connection pool; anything else is a SQLite file path."""
    if is_postgres_url(target):
        return PostgresDatabase(str(target))
    return SQLiteDatabase(Path(target))


class SQLiteDatabase:
    """One connection shared by the process's threads under a lock, in WAL mode."""

    kind = "sqlite"
    integrity_error = sqlite3.IntegrityError
    unusable_errors = (sqlite3.DatabaseError,)
    row_order = "rowid"
    ddl = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "timestamp": "TEXT", "row_order": ""}
    functions = {
        "first_correction": "json_extract(c.corrected_types, '$[0]')",
        "first_type": "json_extract(s.analysis_json, '$.inquiry_types[0].category')",
        "local_day": "date(created_at, :offset)",
        "cited_passages": "LEFT JOIN json_each(s.passages_json) p",
        "cited_article": "json_extract(p.value, '$.article_id')",
        "predicted_types": "json_each(s.analysis_json, '$.inquiry_types') t",
        "predicted_type": "json_extract(t.value, '$.category')",
        "analysis_types": "json_extract(s.analysis_json, '$.inquiry_types')",
    }

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._closed = False
        # isolation_level=None: transactions are opened explicitly (BEGIN IMMEDIATE), so a
        # writer takes the write lock up front instead of failing midway under contention.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                   timeout=10)
        try:
            _switch_to_wal(self._db)
            self._db.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
            self._db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise self.unusable(exc) from exc

    def unusable(self, exc: Exception) -> StoreError:
        return StoreError(f"{self.path} is not a usable Suggester database ({exc}) — "
                          "move the file aside or set SUGGESTER_DATA_DIR to another folder")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._lock, self._errors():
            yield self._db

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._lock, self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def exclusive(self, name: str, timeout: float) -> AbstractContextManager[None]:
        # A SQLite file serves one host, where the caller's file lock already serialises.
        return nullcontext()

    def lock_schema(self, db: Connection) -> None:
        """BEGIN IMMEDIATE already keeps a second process out of the migration."""

    def append_only(self, table: str) -> list[str]:
        return [f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table.replace('_', ' ')} is append-only'); END"""
                for verb in ("UPDATE", "DELETE")]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        if self._closed:
            raise StoreError(f"the database {self.path} was closed")
        try:
            yield
        except sqlite3.OperationalError as exc:  # read-only file, full disk, locked too long
            raise StoreError(f"cannot use the database {self.path} ({exc}) — check that the "
                             "folder is writable and the disk has space") from exc


class PostgresDatabase:
    """A small pool of autocommit connections to one PostgreSQL database, shared by threads.

    A connection is taken for one read or one transaction and returned, so any number of
    threads (gunicorn's gthread workers, Flask's dev server) share at most `POOL_SIZE` idle
    connections. When the server drops a connection, the idle ones are dropped too and the
    next call connects afresh, so the app recovers after a database restart.
    """

    kind = "postgresql"
    path = None
    row_order = "seq"
    # Timestamps stay ISO text, as in SQLite, so both compare them the same way; "C" makes
    # the comparison byte order whatever the database's locale.
    ddl = {"id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
           "timestamp": 'TEXT COLLATE "C"',
           "row_order": ",\n            seq BIGINT GENERATED ALWAYS AS IDENTITY"}
    functions = {
        "first_correction": "(c.corrected_types::jsonb ->> 0)",
        "first_type": "(s.analysis_json::jsonb #>> '{inquiry_types,0,category}')",
        "local_day": "((created_at::timestamptz AT TIME ZONE 'UTC') "
                     "+ CAST(:offset AS interval))::date::text",
        "cited_passages": "LEFT JOIN LATERAL jsonb_array_elements(s.passages_json::jsonb) "
                          "p(value) ON TRUE",
        "cited_article": "(p.value ->> 'article_id')",
        "predicted_types": "LATERAL jsonb_array_elements(COALESCE("
                           "s.analysis_json::jsonb -> 'inquiry_types', '[]'::jsonb)) t(value)",
        "predicted_type": "(t.value ->> 'category')",
        "analysis_types": "(s.analysis_json::jsonb -> 'inquiry_types')::text",
    }

    def __init__(self, url: str) -> None:
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
        except ImportError as exc:  # pragma: no cover - psycopg is a dependency
            raise StoreError("PostgreSQL needs the psycopg package — "
                             "run `pip install 'psycopg[binary]'`") from exc
        self._psycopg = psycopg
        self.integrity_error = psycopg.IntegrityError
        self.unusable_errors = (psycopg.DatabaseError,)
        self._url = url
        try:
            parts = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StoreError(f"SUGGESTER_DATABASE_URL is not a valid PostgreSQL URL "
                             f"({_scrub(str(exc), url)})") from exc
        self._password = str(parts.get("password") or "")
        self.location = (f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/"
                         f"{parts.get('dbname') or parts.get('user') or ''}")
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._connection() as connection:
            yield _Translated(connection)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._connection() as connection, connection.transaction():
            yield _Translated(connection)

    @contextmanager
    def exclusive(self, name: str, timeout: float) -> Iterator[None]:
        """Hold a PostgreSQL advisory lock named `name`: one holder across every host."""
        key = _lock_key(name)
        with self._connection() as connection:
            deadline = time.monotonic() + timeout
            while not connection.execute("SELECT pg_try_advisory_lock(%s)",
                                         (key,)).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise StoreBusy(f"another app server has held the {name} lock on "
                                    f"{self.location} for over {timeout:.0f} s; try again")
                time.sleep(0.05)
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def unusable(self, exc: Exception) -> StoreError:
        return StoreError(f"{self.location} is not a usable Suggester database "
                          f"({_scrub(str(exc), self._password)}) — point "
                          "SUGGESTER_DATABASE_URL at an empty database or one Suggester made")

    def lock_schema(self, db: Connection) -> None:
        # Two hosts starting at once must not both apply the same migration.
        db.execute(f"SELECT pg_advisory_xact_lock({_lock_key('schema')})")

    def append_only(self, table: str) -> list[str]:
        message = f"{table.replace('_', ' ')} is append-only"
        return [
            f"""CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION '{message}'; END $$""",
            f"""CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""",
            f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()""",
        ]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        psycopg = self._psycopg
        with self._lock:
            if self._closed:
                raise StoreError(f"the connection to {self.location} was closed")
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._connect()
        try:
            yield connection
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            connection.close()
            self._drop_idle()  # they were opened before the same failure
            raise StoreError(f"lost the connection to PostgreSQL at {self.location} "
                             f"({_scrub(str(exc), self._password)}) — check that the "
                             "server is running; the next request reconnects") from exc
        except BaseException:
            self._release(connection)
            raise
        self._release(connection)

    def _connect(self) -> Any:
        psycopg = self._psycopg
        try:
            return psycopg.connect(self._url, autocommit=True,
                                   connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            lines = str(exc).strip().splitlines()  # the first says why; the rest are hints
            reason = _scrub(lines[0] if lines else type(exc).__name__, self._password)
            raise StoreError(f"cannot connect to PostgreSQL at {self.location} ({reason}) — "
                             "check that the server is running and SUGGESTER_DATABASE_URL"
                             ) from exc

    def _release(self, connection: Any) -> None:
        healthy = not connection.closed and not connection.broken and \
            connection.info.transaction_status == self._psycopg.pq.TransactionStatus.IDLE
        with self._lock:
            if healthy and not self._closed and len(self._idle) < POOL_SIZE:
                self._idle.append(connection)
                return
        connection.close()

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class _Translated:
    """A psycopg connection that takes the `?` placeholders `Store` writes."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        if not params:
            return self._connection.execute(sql)
        return self._connection.execute(_placeholders(sql), params)


_NAMED = re.compile(r"(?<!:):([a-z_]+)")


def _placeholders(sql: str) -> str:
    """`?` → `%s` and `:name` → `%(name)s`; the shared SQL has no literal % or ?."""
    assert "%" not in sql, "shared SQL must not contain %"
    return _NAMED.sub(r"%(\1)s", sql.replace("?", "%s"))


def _lock_key(name: str) -> int:
    """A stable 64-bit advisory lock key for a name."""
    return int.from_bytes(hashlib.sha256(f"suggester:{name}".encode()).digest()[:8], "big",
                          signed=True)


def _scrub(text: str, password: str) -> str:
    return text.replace(password, "***") if password else text


def _switch_to_wal(db: sqlite3.Connection, *, seconds: float = 10.0) -> None:
    """Turn on WAL, waiting for other openers of a new file: switching the journal mode needs
    the file to itself, and SQLite answers "database is locked" at once instead of calling the
    busy handler (four workers starting together on an empty data dir hit it in CI)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
