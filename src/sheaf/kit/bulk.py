"""Bulk reads and writes between polars frames and the database, one round trip per batch.

Goes beneath the ORM on purpose: a 10^6-row aggregation cannot afford an object per row.
SQLite gets ``executemany``; PostgreSQL gets ``COPY`` for inserts.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Connection

BATCH = 50_000


def _is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _sql(conn: Connection, sql: str) -> str:
    # Statements are written with qmarks; psycopg wants %s.
    return sql if _is_sqlite(conn) else sql.replace("?", "%s")


def timestamp(conn: Connection, value: datetime) -> str:
    """A UTC timestamp in the text form each backend's DateTime column stores or parses."""
    if _is_sqlite(conn):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value.isoformat()


def fetch_frame(
    conn: Connection, sql: str, params: Sequence[Any], schema: dict[str, Any]
) -> pl.DataFrame:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_sql(conn, sql), tuple(params))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return pl.DataFrame(rows, schema=schema, orient="row")


def fetch_by_ids(
    conn: Connection, sql_with_in: str, ids: list[str], schema: dict[str, Any]
) -> pl.DataFrame:
    """Run ``... WHERE x IN ({ids})`` in chunks SQLite's parameter limit allows."""
    frames = [pl.DataFrame(schema=schema)]
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        frames.append(fetch_frame(conn, sql_with_in.format(ids=marks), chunk, schema))
    return pl.concat(frames)


def insert_frame(
    conn: Connection,
    table: str,
    frame: pl.DataFrame,
    constants: dict[str, str] | None = None,
    prepare: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
) -> None:
    """Insert every row of ``frame``; ``constants`` are columns equal on every row (written
    into the statement once rather than bound once per row). ``prepare`` turns each batch
    into the columns to write, so a wide derived column (JSON text, say) never exists for
    every row at once."""
    if frame.height == 0:
        return
    raw = conn.connection.driver_connection
    batches = (prepare(b) if prepare else b for b in frame.iter_slices(BATCH))
    first = next(batches)
    rest = itertools.chain([first], batches)
    constants = constants or {}
    if _is_sqlite(conn):
        columns = ", ".join([*first.columns, *constants])
        values = ", ".join(["?"] * first.width + [_literal(v) for v in constants.values()])
        sql = f"INSERT INTO {table} ({columns}) VALUES ({values})"
        for batch in rest:
            raw.executemany(sql, batch.iter_rows())  # type: ignore[union-attr]
        return
    names = [*first.columns, *constants]
    with raw.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
        f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT csv)"
    ) as copy:
        for batch in rest:
            buffer = io.BytesIO()
            batch.with_columns(
                pl.lit(v, dtype=pl.String).alias(k) for k, v in constants.items()
            ).write_csv(buffer, include_header=False, null_value="", quote_style="non_numeric")
            copy.write(buffer.getvalue())


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def execute_frame(conn: Connection, sql: str, frame: pl.DataFrame) -> None:
    """``executemany`` of a qmark statement over a frame's rows (columns in order)."""
    if frame.height == 0:
        return
    statement = _sql(conn, sql)
    raw = conn.connection.driver_connection
    for batch in frame.iter_slices(BATCH):
        cursor = raw.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(statement, list(batch.iter_rows()))
        finally:
            cursor.close()
