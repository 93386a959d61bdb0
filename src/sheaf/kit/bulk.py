"""Bulk reads and writes between polars frames and the database, one round trip per batch.

Goes beneath the ORM on purpose: a 10^6-row aggregation cannot afford an object per row.
SQLite gets ``executemany`` (inserts many rows a statement); PostgreSQL gets ``COPY`` for
inserts.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Connection, text

BATCH = 50_000
# SQLite binds at most 32,766 parameters a statement (3.32+; sheaf needs 3.35).
SQLITE_MAX_VARIABLES = 32_766
ROWS_PER_STATEMENT = 100


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
    conn: Connection, sql: str, params: Sequence[Any], schema: dict[str, Any],
    chunk: int = 200_000,
) -> pl.DataFrame:
    """The rows of ``sql`` as a frame, read ``chunk`` rows at a time, so the Python row
    tuples never exist for more than one chunk (a tuple per row costs some ten times the
    row's columnar size). On the caller's connection: one snapshot, the caller's own
    writes included. (An ADBC SQLite driver reads straight into Arrow, but it links its
    own copy of SQLite into the process, and two copies in one process drop each other's
    POSIX locks: sqlite.org/howtocorrupt.html, 2.2.)"""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    frames = [pl.DataFrame(schema=schema)]
    try:
        cursor.execute(_sql(conn, sql), tuple(params))
        while rows := cursor.fetchmany(chunk):
            frames.append(pl.DataFrame(rows, schema=schema, orient="row"))
    finally:
        cursor.close()
    return pl.concat(frames, rechunk=True)


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
    written: Callable[[int], None] | None = None,
) -> None:
    """Insert every row of ``frame``; ``constants`` are columns equal on every row (written
    into the statement once rather than bound once per row). ``prepare`` turns each batch
    into the columns to write, so a wide derived column (JSON text, say) never exists for
    every row at once; the next batch is prepared on another thread while this one is
    written (polars releases the GIL, and so does SQLite while it steps). ``written`` is
    told each batch's row count once it is written (progress)."""
    if frame.height == 0:
        return
    raw = conn.connection.driver_connection
    constants = constants or {}
    prepared = prepare or _same
    write = _insert_sqlite if _is_sqlite(conn) else _copy_postgresql
    with ThreadPoolExecutor(1) as preparing:
        batches = frame.iter_slices(BATCH)
        pending: Future[pl.DataFrame] | None = preparing.submit(prepared, next(batches))
        while pending is not None:
            batch = pending.result()
            following = next(batches, None)
            pending = None if following is None else preparing.submit(prepared, following)
            write(raw, table, batch, constants)
            if written is not None:
                written(batch.height)


def _same(frame: pl.DataFrame) -> pl.DataFrame:
    return frame


def _insert_sqlite(raw: Any, table: str, batch: pl.DataFrame, constants: dict[str, str]) -> None:
    """Many rows per statement: executing a statement per row costs SQLite and the driver
    about twice the CPU of the insert itself (measured at 10^6 rows). A column that is
    null on every row of the batch (identity links on a first load, say) is written as
    NULL in the statement instead of a million bound Nones."""
    empty = [c for c in batch.columns if batch[c].null_count() == batch.height]
    if empty and len(empty) < batch.width:
        batch = batch.drop(empty)
    else:
        empty = []
    width = batch.width
    per_statement = max(1, min(ROWS_PER_STATEMENT, SQLITE_MAX_VARIABLES // width))
    columns = ", ".join([*batch.columns, *empty, *constants])
    literals = ["NULL"] * len(empty) + [_literal(v) for v in constants.values()]
    row = "(" + ", ".join(["?"] * width + literals) + ")"
    whole = batch.height - batch.height % per_statement
    # Row-major values, one column at a time, then cut into statement-sized tuples.
    values: list[Any] = [None] * (whole * width)
    for i, name in enumerate(batch.columns):
        values[i::width] = batch[name].head(whole).to_list()
    if whole:
        sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([row] * per_statement)
        raw.executemany(sql, zip(*[iter(values)] * (per_statement * width), strict=True))
    if whole < batch.height:
        raw.executemany(f"INSERT INTO {table} ({columns}) VALUES {row}",
                        batch.slice(whole).iter_rows())


def _copy_postgresql(raw: Any, table: str, batch: pl.DataFrame, constants: dict[str, str]) -> None:
    names = [*batch.columns, *constants]
    buffer = io.BytesIO()
    batch.with_columns(
        pl.lit(v, dtype=pl.String).alias(k) for k, v in constants.items()
    ).write_csv(buffer, include_header=False, null_value="", quote_style="non_numeric")
    with raw.cursor() as cursor, cursor.copy(
        f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT csv)"
    ) as copy:
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


def reserve_ids(conn: Connection, table: str, column: str, count: int) -> int:
    """The first of ``count`` consecutive ids nobody else will take: SQLite's write lock
    is this transaction's; on PostgreSQL the table lock keeps other inserts (and so their
    draws on the sequence) out while the sequence is moved past the block."""
    if conn.dialect.name == "sqlite":
        return int(conn.execute(text(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")
                                ).scalar_one()) + 1
    conn.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
    seq = f"pg_get_serial_sequence('{table}', '{column}')"
    first = int(conn.execute(text(f"SELECT nextval({seq})")).scalar_one())
    conn.execute(text(f"SELECT setval({seq}, :last)"), {"last": first + count - 1})
    return first
