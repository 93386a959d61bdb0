"""Database housekeeping that must never fail the work it follows."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from sheaf.db import Database


def _indexed_table(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE account (source_id TEXT, native_identity TEXT)")
        conn.execute("CREATE INDEX ix_account ON account (source_id, native_identity)")
        conn.executemany("INSERT INTO account VALUES (?, ?)", [("s", str(i)) for i in range(50)])
        conn.commit()


def _statistics(path: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").fetchone():
            return []
        return conn.execute("SELECT idx, stat FROM sqlite_stat1").fetchall()


def test_a_statistics_refresh_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "sheaf.db"
    _indexed_table(path)
    db = Database(f"sqlite:///{path}")
    try:
        db.refresh_statistics()
    finally:
        db.dispose()
    assert _statistics(path) == [("ix_account", "50 50 1")]


def test_a_statistics_refresh_that_fails_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An aggregation refreshes SQLite's statistics after committing; a database that
    # refuses the refresh (here: opened read-only) must cost a warning, not the run.
    path = tmp_path / "sheaf.db"
    _indexed_table(path)
    db = Database(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with caplog.at_level(logging.WARNING, logger="sheaf.db"):
            db.refresh_statistics()
    finally:
        db.dispose()
    assert "could not refresh the database's statistics" in caplog.text
    assert "readonly" in caplog.text
    assert _statistics(path) == []


def test_one_statement_reads_run_without_begin_and_see_only_committed_rows(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        with db.write() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            session.execute(text("INSERT INTO t VALUES (1)"))
        statements: list[str] = []

        @event.listens_for(db.engine, "before_cursor_execute")
        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        with db.write() as writer:  # a writer holds the lock, uncommitted
            writer.execute(text("INSERT INTO t VALUES (2)"))
            with db.one() as conn:
                assert conn.execute(text("SELECT sum(x) FROM t")).scalar_one() == 1
        with db.one() as conn:
            assert conn.execute(text("SELECT sum(x) FROM t")).scalar_one() == 3
        assert statements == ["SELECT sum(x) FROM t"] * 2  # (no BEGIN around them)
        with db.read() as session:  # other reads still begin their transaction
            session.execute(text("SELECT 1"))
        assert statements[-2:] == ["BEGIN", "SELECT 1"]
    finally:
        db.dispose()
