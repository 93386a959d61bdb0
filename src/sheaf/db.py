"""Engine and session factories.

SQLite gets WAL (readers never wait for the writer), a busy timeout, foreign keys, and
``BEGIN IMMEDIATE`` for write transactions: a deferred transaction that later tries to
write can fail at once with "database is locked" instead of waiting its turn.

Automatic WAL checkpoints are off: SQLite runs them inside whichever commit crosses the
threshold, so a status update would pay for copying a big aggregation's pages back into
the database. The job executor checkpoints between jobs instead (``Database.checkpoint``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from sheaf.kit.files import private_file

log = logging.getLogger(__name__)

if sqlite3.sqlite_version_info < (3, 35):  # RETURNING and partial indexes
    raise RuntimeError(f"sheaf needs SQLite 3.35+, found {sqlite3.sqlite_version}")


# An execution option of a read connection that runs a single statement (Database.one)
ONE_STATEMENT = "sheaf_one_statement"

# Connections kept open for readers: as many as the API's thread pool has threads (40),
# so a burst of polls does not open and close connections (with their pragmas) beyond
# the default five. An idle SQLite connection costs a file handle and little memory.
SQLITE_READ_POOL = 40


def _create_private(url: str) -> None:
    """Create a SQLite database file 0600 before SQLite does (with the umask's mode).
    SQLite gives its -wal and -shm files the database file's permissions."""
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        if not path.exists() and path.parent.is_dir():
            private_file(path)


def _sqlite_engine(url: str, immediate: bool, foreign_keys: bool = True) -> Engine:
    _create_private(url)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60},
                           pool_size=5 if immediate else SQLITE_READ_POOL, max_overflow=10)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        if immediate:  # bulk aggregation writes touch many index pages
            cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if not immediate and connection.get_execution_options().get(ONE_STATEMENT):
            return  # (SQLite's autocommit: the statement is its own read transaction)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Owns the engines. ``read()`` for queries, ``write()`` for a unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=False)
            self.write_engine = _sqlite_engine(url, immediate=True)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
            self.write_engine = self.engine
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def one(self) -> Iterator[Connection]:
        """A pooled connection for one SELECT, the reads clients poll. On SQLite it runs
        without BEGIN ... ROLLBACK around it: a single statement reads one consistent
        snapshot by itself, and the two extra statements were a third of a task-status
        read's time."""
        with self.engine.connect() as conn:
            yield conn.execution_options(**{ONE_STATEMENT: True})

    @contextmanager
    def write(self, *, trusted_references: bool = False) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error.

        ``trusted_references``: SQLite does not check foreign keys in this transaction
        (checking them is about a sixth of the CPU of inserting 10^6 accounts). Only for
        a caller that has made sure, inside the transaction, that what it references
        exists.
        """
        if not (trusted_references and self.is_sqlite):
            with self._write() as session, session.begin():
                yield session
            return
        with self.write_engine.connect() as conn:
            # (on the driver connection: SQLite ignores this pragma inside a transaction)
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            try:
                with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                    yield session
            finally:
                try:
                    raw.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
                except sqlite3.Error:
                    conn.invalidate()  # never hand the pool a connection without them

    def checkpoint(self, mode: str = "PASSIVE") -> None:
        """Copy committed WAL pages back into the database file (SQLite only)."""
        if not self.is_sqlite:
            return
        # On the raw connection: inside a transaction SQLite would refuse to checkpoint.
        raw = self.engine.raw_connection()
        try:
            cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        finally:
            raw.close()

    def refresh_statistics(self) -> None:
        """Refresh SQLite's planner statistics from a sample of each index (a few ms).

        Without them SQLite cannot know that a million accounts belong to a handful of
        sources: it sorts every account to list a source's first page, and scans them all
        for ``nativeIdentity eq "..."`` instead of walking the (source_id,
        native_identity) index. PostgreSQL's autovacuum keeps its own statistics.
        """
        if not self.is_sqlite:
            return
        raw = self.write_engine.raw_connection()
        try:
            cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute("PRAGMA analysis_limit=1000")
            cursor.execute("ANALYZE")  # (every table: plans join accounts to sources)
        except sqlite3.Error as exc:  # slower queries, not a failed aggregation
            log.warning("could not refresh the database's statistics: %s", exc)
        finally:
            raw.close()

    def dispose(self, checkpoint: bool = True) -> None:
        """Close every connection; with ``checkpoint``, empty the WAL first (it waits, up
        to the busy timeout, for readers and writers still at work in other processes)."""
        if checkpoint:
            with suppress(Exception):  # a busy database keeps its WAL until the next one
                self.checkpoint("TRUNCATE")
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


def migration_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # SQLite changes a constraint by rebuilding the table: with foreign keys on,
        # dropping the old table would cascade-delete the rows that reference it (the
        # procedure in sqlite.org/lang_altertable.html turns them off first).
        return _sqlite_engine(url, immediate=False, foreign_keys=False)
    return create_engine(url, poolclass=NullPool)
