"""Database housekeeping that must never fail the work it follows."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import pytest

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
