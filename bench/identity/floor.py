"""Where a first load's write time goes: SQLite's own insert of 10^6 account rows, apart
from sheaf, in the ways tried to make it cheaper.

Each variant inserts the same rows (shaped like the benchmark's accounts: 32-hex time-
ordered ids, native identity, name, ~190-byte attributes JSON, a 64-bit hash) into a
fresh database file with the account table's columns, keys and pragmas, and prints wall
and CPU seconds. Compare them with each other and with ``polars_read`` (what the
benchmark's ratios divide by), not across machines.

    .venv/bin/python -m bench.identity.floor                      # every variant
    .venv/bin/python -m bench.identity.floor bind insert_select   # some
    .venv/bin/python -m bench.identity.floor --rows 10000         # a quick check
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

ROWS = 1_000_000
DATA = Path(__file__).resolve().parent / "data" / "accounts_1000000.csv"
COLUMNS = ["id", "native_identity", "name", "attributes", "content_hash", "identity_id"]
CONSTANTS = ("source_id, created, modified",
             "'s1', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000'")
TABLE = """
CREATE TABLE source (id VARCHAR(32) PRIMARY KEY);
CREATE TABLE identity (id VARCHAR(32) PRIMARY KEY);
CREATE TABLE account (
  id VARCHAR(32) NOT NULL PRIMARY KEY,
  source_id VARCHAR(32) NOT NULL REFERENCES source(id) ON DELETE CASCADE,
  native_identity VARCHAR(512) NOT NULL, name VARCHAR(512) NOT NULL,
  attributes TEXT NOT NULL, content_hash BIGINT NOT NULL,
  identity_id VARCHAR(32) REFERENCES identity(id) ON DELETE SET NULL,
  created DATETIME NOT NULL, modified DATETIME NOT NULL{unique}){rowid};
{partial}
INSERT INTO source VALUES ('s1');
"""
UNIQUE = ",\n  UNIQUE (source_id, native_identity)"
PARTIAL = ("CREATE INDEX ix_account_identity_id ON account (identity_id) "
           "WHERE identity_id IS NOT NULL;")


def rows(count: int) -> pl.DataFrame:
    frame = pl.DataFrame({"id": [f"{0x01A250FE4175589E << 64 | i:032x}" for i in range(count)],
                          "native_identity": [f"u{i:07d}" for i in range(count)]})
    record = pl.struct(
        email=pl.col("native_identity") + "@example.com", department=pl.lit("Engineering"),
        title=pl.lit("Senior Engineer"), location=pl.lit("Berlin"),
        manager=pl.lit("u0000001"), hire_date=pl.lit("2020-01-01"),
        status=pl.lit("active"), cost_center=pl.lit("CC-1234"))
    return frame.with_columns(
        name=pl.lit("Some Person ") + pl.col("native_identity"),
        attributes=record.struct.json_encode(),
        content_hash=(pl.col("native_identity").hash() // 4).cast(pl.Int64),
        identity_id=pl.lit(None, pl.String)).select(COLUMNS)


_scratch: list[tempfile.TemporaryDirectory[str]] = []  # each variant's database, removed after it


def database(unique: bool = True, rowid: bool = True) -> sqlite3.Connection:
    _scratch.append(tempfile.TemporaryDirectory(prefix="sheaf-floor-"))
    conn = sqlite3.connect(Path(_scratch[-1].name) / "floor.db", isolation_level=None)
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + TABLE.format(
        unique=UNIQUE if unique else "", rowid="" if rowid else " WITHOUT ROWID",
        partial=PARTIAL if unique else ""))
    conn.execute("PRAGMA cache_size=-65536")  # as sheaf's writers have it
    return conn


def _bind(conn: sqlite3.Connection, frame: pl.DataFrame) -> None:
    """sheaf's way (kit.bulk): 100 rows a statement, values bound from Python."""
    width, per = len(COLUMNS), 100
    row = "(" + ", ".join(["?"] * width) + ", " + CONSTANTS[1] + ")"
    sql = (f"INSERT INTO account ({', '.join(COLUMNS)}, {CONSTANTS[0]}) VALUES "
           + ", ".join([row] * per))
    conn.execute("BEGIN")
    for batch in frame.iter_slices(50_000):
        values: list[object] = [None] * (batch.height * width)
        for i, name in enumerate(COLUMNS):
            values[i::width] = batch[name].to_list()
        conn.executemany(sql, zip(*[iter(values)] * (per * width), strict=True))
    conn.execute("COMMIT")


def bind(frame: pl.DataFrame) -> Callable[[], None]:
    conn = database()
    return lambda: _bind(conn, frame)


def insert_select(frame: pl.DataFrame) -> Callable[[], None]:
    """SQLite's own work alone: the rows are already in a temp table (not timed)."""
    conn = database()
    conn.execute(f"CREATE TEMP TABLE staged ({', '.join(COLUMNS)})")
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO staged VALUES ({', '.join('?' * len(COLUMNS))})",
                     frame.iter_rows())
    conn.execute("COMMIT")

    def run() -> None:
        conn.execute("BEGIN")
        conn.execute(f"INSERT INTO account ({', '.join(COLUMNS)}, {CONSTANTS[0]}) "
                     f"SELECT *, {CONSTANTS[1]} FROM staged")
        conn.execute("COMMIT")
    return run


def index_after(frame: pl.DataFrame) -> Callable[[], None]:
    """Insert without the unique and partial indexes, then build them."""
    conn = database(unique=False)

    def run() -> None:
        _bind(conn, frame)
        conn.executescript(
            "BEGIN; CREATE UNIQUE INDEX uq ON account (source_id, native_identity);"
            + PARTIAL + " COMMIT;")
    return run


def without_rowid(frame: pl.DataFrame) -> Callable[[], None]:
    conn = database(rowid=False)
    return lambda: _bind(conn, frame)


def json_each(frame: pl.DataFrame) -> Callable[[], None]:
    """One JSON document a batch, taken apart by SQLite instead of bound value by value."""
    conn = database()
    picks = ", ".join(f"value->>'{c}'" for c in COLUMNS)
    sql = (f"INSERT INTO account ({', '.join(COLUMNS)}, {CONSTANTS[0]}) "
           f"SELECT {picks}, {CONSTANTS[1]} FROM json_each(?)")

    def run() -> None:
        conn.execute("BEGIN")
        for batch in frame.iter_slices(50_000):
            conn.execute(sql, (batch.write_json(),))
        conn.execute("COMMIT")
    return run


def polars_read(frame: pl.DataFrame) -> Callable[[], None]:
    """What the benchmark divides by (``bench.identity.generate`` makes the 1M file)."""
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing: run python -m bench.identity.generate first")
    return lambda: None if pl.read_csv(DATA).is_empty() else None


VARIANTS = {f.__name__: f for f in (polars_read, insert_select, bind, index_after,
                                    without_rowid, json_each)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help=f"some of: {', '.join(VARIANTS)}")
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args()
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    frame = rows(args.rows)
    print(f"{args.rows:,} rows, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} cores")
    for name in args.variants or list(VARIANTS):
        run = VARIANTS[name](frame)
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        print(f"{name:14} wall {time.perf_counter() - wall:6.2f} s   "
              f"cpu {time.process_time() - cpu:6.2f} s")
        while _scratch:
            _scratch.pop().cleanup()


if __name__ == "__main__":
    main()
