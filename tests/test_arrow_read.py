"""Columnar reads of a SQLite file through a child process: the same frame as reading in
process, the caller's process never loading the driver, and a failed child (or a column
whose type the driver cannot infer) read again in process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import Engine, create_engine, text

from sheaf.kit import arrow_read, bulk

SCHEMA = {"id": pl.Int64, "name": pl.String, "amount": pl.Int64, "ratio": pl.Float64}
QUERY = "SELECT id, name, amount, ratio FROM t WHERE flag = ? AND id >= ? ORDER BY id"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    folder = tmp_path / "a folder #1"  # (the child opens the file by URI)
    folder.mkdir()
    engine = create_engine(f"sqlite:///{folder / 'data.db'}")
    with engine.begin() as conn:
        conn.execute(text("PRAGMA journal_mode=WAL"))
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount INTEGER, "
                          "ratio REAL, flag BOOLEAN)"))
        # nulls first in a column, text past ASCII, 64-bit extremes
        conn.execute(text("INSERT INTO t VALUES (:id, :name, :amount, :ratio, :flag)"), [
            {"id": i, "name": None if i % 5 == 0 else f"n\u00e9-{i}",
             "amount": [None, 2**63 - 1, -(2**63), i][i % 4], "ratio": i / 7,
             "flag": i % 3 != 0} for i in range(5000)])
    yield engine
    engine.dispose()


def test_child_read_equals_the_in_process_read(engine: Engine) -> None:
    with engine.connect() as conn:
        expected = bulk.fetch_frame(conn, QUERY, [True, 10], SCHEMA)
        got = arrow_read._from_child(arrow_read.database_file(conn) or "", QUERY,
                                     [1, 10], SCHEMA)
        assert_frame_equal(got, expected)
        assert_frame_equal(arrow_read.fetch_frame(conn, QUERY, [True, 10], SCHEMA, rows=10**6),
                           expected)
        assert expected.height == 3327 and expected["name"].null_count() == 665
    assert "adbc_driver_sqlite" not in sys.modules


def test_a_failed_child_reads_in_process(engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(arrow_read, "_CHILD", Path("/nonexistent/arrow_child.py"))
    with engine.connect() as conn:
        with pytest.raises(RuntimeError):
            arrow_read._from_child(arrow_read.database_file(conn) or "", QUERY, [1, 0],
                                   SCHEMA)
        frame = arrow_read.fetch_frame(conn, QUERY, [True, 0], SCHEMA, rows=10**6)
    assert frame.height == 3333
    assert "reading in process" in caplog.text


def test_the_child_says_what_went_wrong(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(RuntimeError, match="no such column"):
        arrow_read._from_child(arrow_read.database_file(conn) or "",
                               "SELECT nope FROM t", [], {"nope": pl.Int64})


def test_a_column_the_driver_cannot_type_reads_in_process(engine: Engine) -> None:
    """The driver types a column from its first rows: text after a long run of nulls is
    an error in the child, and the read is made in process."""
    sql = "SELECT id, CASE WHEN id < 3000 THEN NULL ELSE 'x' END FROM t"
    schema = {"id": pl.Int64, "late": pl.String}
    with engine.connect() as conn:
        with pytest.raises(RuntimeError, match="Type mismatch"):
            arrow_read._from_child(arrow_read.database_file(conn) or "", sql, [], schema)
        frame = arrow_read.fetch_frame(conn, sql, [], schema, rows=10**6)
    assert frame["late"].null_count() == 3000 and frame.height == 5000


def test_a_small_read_stays_in_process(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_child(*args: object) -> pl.DataFrame:
        raise AssertionError("a child was started for a small read")

    monkeypatch.setattr(arrow_read, "_from_child", no_child)
    with engine.connect() as conn:
        frame = arrow_read.fetch_frame(conn, QUERY, [True, 0], SCHEMA,
                                       rows=arrow_read.CHILD_ROWS - 1)
    assert frame.height == 3333
