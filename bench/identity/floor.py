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
    .venv/bin/python -m bench.identity.floor --page-size 16384 bind scattered_update

Measured on 2026-12-08 (2 cores, SQLite 3.40.1; three alternating runs), seconds:

    page size            4 KiB (sheaf's)   16 KiB
    polars_read          0.17-0.25         0.17-0.25
    insert_select        1.59-1.77         1.15-1.29
    bind                 3.02-4.23         2.71-2.93
    adbc                 3.45-4.45         2.87-3.34
    scattered_update     0.33-0.34         0.51-0.52

SQLite's own insert is some 8-20x a polars read before a single value is bound; binding
in C (adbc) is no cheaper than sheaf's 100 rows a statement from Python. Larger pages
make the bulk insert cheaper (a quarter of the pages, so a quarter of the WAL frames and
their two write calls each) and every scattered change dearer (each changed page goes to
the WAL whole): sheaf keeps SQLite's 4 KiB, for the re-loads that follow every first load.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

ROWS = 1_000_000
DATA = Path(__file__).resolve().parent / "data" / "accounts_1000000.csv"
COLUMNS = ["id", "native_identity", "name", "attributes", "content_hash", "identity_id"]
STAMP = "2026-01-01 00:00:00.000000"
CONSTANTS = ("source_id, created, modified", f"'s1', '{STAMP}', '{STAMP}'")
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


PAGE_SIZE = 4096  # SQLite's default, which sheaf's databases have
page_size = PAGE_SIZE  # (--page-size)


def _path() -> Path:
    _scratch.append(tempfile.TemporaryDirectory(prefix="sheaf-floor-"))
    return Path(_scratch[-1].name) / "floor.db"


# As sheaf's writers have them (sheaf.db): no automatic checkpoint inside the commit.
PRAGMAS = ("PRAGMA page_size={page_size}; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
           "PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-65536;")


def database(unique: bool = True, rowid: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(_path(), isolation_level=None)
    conn.executescript(PRAGMAS.format(page_size=page_size) + TABLE.format(
        unique=UNIQUE if unique else "", rowid="" if rowid else " WITHOUT ROWID",
        partial=PARTIAL if unique else ""))
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


def adbc(frame: pl.DataFrame) -> Callable[[], None]:
    """Values bound in C, from Arrow (the ADBC driver's bulk ingest, a row a statement).
    The driver links its own SQLite: it opens only its own file here, never one the
    sqlite3 module has open (sheaf keeps it out of its processes for that reason)."""
    import adbc_driver_sqlite.dbapi

    path = _path()
    table = frame.drop("identity_id").with_columns(
        pl.lit(v).alias(k) for k, v in zip(CONSTANTS[0].split(", "),
                                            ("s1", *[STAMP] * 2), strict=True)).to_arrow()
    db = adbc_driver_sqlite.dbapi.connect(str(path), autocommit=True)
    cursor = db.cursor()
    for statement in (PRAGMAS.format(page_size=page_size) + TABLE.format(
            unique=UNIQUE, rowid="", partial=PARTIAL)).split(";"):
        if statement.strip():
            cursor.execute(statement)
            if cursor.description:  # a pragma's answer, read so the statement ends
                cursor.fetchall()

    def run() -> None:
        cursor.execute("BEGIN")
        cursor.adbc_ingest("account", table, mode="append")
        cursor.execute("COMMIT")
        cursor.close()
        db.close()
    return run


def scattered_update(frame: pl.DataFrame) -> Callable[[], None]:
    """What a page size costs the other way: a 1%-changed re-load's write (10,000 accounts
    updated and 5,000 deleted, spread over the table, in id order) once the table is full
    and checkpointed (not timed). Every changed page goes to the WAL whole."""
    conn = database()
    _bind(conn, frame)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ids = frame["id"]
    picked = ids.gather(random.Random(1).sample(range(ids.len()), ids.len() * 3 // 200))
    updated, deleted = picked.head(picked.len() * 2 // 3), picked.tail(picked.len() // 3)
    values = [("New Name", '{"department": "Finance"}', 5, None, STAMP, i)
              for i in updated.sort().to_list()]

    def run() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "UPDATE account SET name = ?, attributes = ?, content_hash = ?, "
            "identity_id = COALESCE(?, identity_id), modified = ? WHERE id = ?", values)
        conn.executemany("DELETE FROM account WHERE id = ?", [(i,) for i in deleted.sort()])
        conn.execute("COMMIT")
    return run


def polars_read(frame: pl.DataFrame) -> Callable[[], None]:
    """What the benchmark divides by (``bench.identity.generate`` makes the 1M file)."""
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing: run python -m bench.identity.generate first")
    return lambda: None if pl.read_csv(DATA).is_empty() else None


VARIANTS = {f.__name__: f for f in (polars_read, insert_select, bind, adbc, index_after,
                                    without_rowid, json_each, scattered_update)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help=f"some of: {', '.join(VARIANTS)}")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE,
                        help=f"bytes (default {PAGE_SIZE}, sheaf's and SQLite's)")
    args = parser.parse_args()
    global page_size
    page_size = args.page_size
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    frame = rows(args.rows)
    print(f"{args.rows:,} rows, SQLite {sqlite3.sqlite_version}, {page_size}-byte pages, "
          f"{os.cpu_count()} cores")
    for name in args.variants or list(VARIANTS):
        run = VARIANTS[name](frame)
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        print(f"{name:16} wall {time.perf_counter() - wall:6.2f} s   "
              f"cpu {time.process_time() - cpu:6.2f} s")
        while _scratch:
            _scratch.pop().cleanup()


if __name__ == "__main__":
    main()
