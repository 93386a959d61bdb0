"""Bulk inserts land every row exactly once, whatever the batch and statement boundaries."""

from __future__ import annotations

import polars as pl
import pytest
from sqlalchemy import text

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.kit import bulk
from sheaf.runtime import Runtime
from tests.identity.test_crash_safety import make_source


@pytest.mark.parametrize("rows", [1, 99, 100, 101, 250, bulk.BATCH + 7])
def test_insert_frame_writes_every_row_once(settings: Settings, rows: int) -> None:
    db = Database(settings.db_url)
    frame = pl.DataFrame({
        "id": [f"{i:032x}" for i in range(rows)],
        "name": [f"it's #{i}, \"quoted\"" if i % 3 else None for i in range(rows)],
    })
    try:
        with db.write() as session:
            bulk.insert_frame(
                session.connection(), "identity", frame,
                constants={"attributes": "{}", "created": "2026-01-01 00:00:00.000000",
                           "modified": "2026-01-01 00:00:00.000000"},
                prepare=lambda batch: batch.with_columns(pl.col("name").fill_null("none")),
            )
        with db.read() as session:
            stored = session.execute(text("SELECT id, name FROM identity ORDER BY id")).all()
    finally:
        db.dispose()
    expected = frame.with_columns(pl.col("name").fill_null("none")).rows()
    assert [tuple(r) for r in stored] == expected


def test_a_failed_insert_writes_nothing(settings: Settings) -> None:
    db = Database(settings.db_url)
    frame = pl.DataFrame({"id": [f"{i:032x}" for i in range(300)] + [f"{5:032x}"],
                          "name": ["x"] * 301})
    try:
        with pytest.raises(Exception, match="(?i)unique|duplicate"), db.write() as session:
            bulk.insert_frame(session.connection(), "identity", frame,
                              constants={"attributes": "{}", "created": "2026-01-01",
                                         "modified": "2026-01-01"})
        with db.read() as session:
            assert session.execute(text("SELECT count(*) FROM identity")).scalar() == 0
    finally:
        db.dispose()


@pytest.mark.parametrize("null_from", [0, 150, 300])
def test_columns_null_in_a_batch_are_stored_as_null(runtime: Runtime, null_from: int) -> None:
    """A batch whose column is null on every row writes NULL (as a literal on SQLite), and
    one where only some rows are null keeps their values."""
    source = make_source(runtime)
    db = runtime.db
    frame = pl.DataFrame({
        "id": [f"{i:032x}" for i in range(300)],
        "name": [f"n{i}" for i in range(300)],
        "source_id": [None if i >= null_from else source for i in range(300)],
    }, schema={"id": pl.String, "name": pl.String, "source_id": pl.String})
    with db.write() as session:
        bulk.insert_frame(session.connection(), "identity", frame,
                          constants={"attributes": "{}", "created": "2026-01-01",
                                     "modified": "2026-01-01"})
    with db.read() as session:
        stored = session.execute(
            text("SELECT id, name, source_id FROM identity ORDER BY id")).all()
    assert [tuple(r) for r in stored] == frame.rows()
