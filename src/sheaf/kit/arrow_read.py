"""Large reads from a SQLite file straight into Arrow columns, in a child process.

Python's sqlite3 hands every row over as a tuple of Python objects: for the 2.4M source
lines an aggregation sums, building them and then the frame from them is most of the
run (some 5 of 6.5 s on the benchmark machine). The ADBC SQLite driver reads into Arrow
in C (about 1.8 s for the same rows), but it links its own copy of SQLite, and two
copies of SQLite in one process drop each other's POSIX locks
(sqlite.org/howtocorrupt.html, 2.2): so it never loads in a sheaf process. A child
process of its own opens the file, runs the one query and streams Arrow IPC back
through a pipe.

The child reads its own snapshot, a moment after the caller's transaction began: use
it only where that is as good (the aggregation's source lines, whose commit checks the
inputs' mark read in the caller's snapshot). Anything else, or a child that fails, reads
through ``bulk.fetch_frame`` on the caller's connection.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection

from sheaf.kit import bulk

log = logging.getLogger(__name__)
_CHILD = Path(__file__).with_name("arrow_child.py")
# Starting the child costs some 0.45 s (Python, pyarrow, the driver); reading in process
# costs some 2 us a row more than the child (5 integer columns, benchmark machine): the
# child pays from about a quarter of a million rows.
CHILD_ROWS = 250_000


def database_file(conn: Connection) -> str | None:
    """The SQLite file ``conn`` is on, or None (PostgreSQL, or a database in memory)."""
    if conn.dialect.name != "sqlite":
        return None
    name = conn.engine.url.database
    return None if not name or name == ":memory:" or name.startswith("file:") else name


def fetch_frame(conn: Connection, sql: str, params: Sequence[Any], schema: dict[str, Any],
                rows: int) -> pl.DataFrame:
    """The rows of ``sql`` (qmark parameters) as a frame of ``schema``: read by the child
    when ``conn`` is on a SQLite file and ``rows`` (the caller's upper estimate) is enough
    to pay for starting it, else (or should the child fail) on ``conn``."""
    path = database_file(conn)
    if path is not None and rows >= CHILD_ROWS:
        try:
            return _from_child(path, sql, params, schema)
        except (OSError, RuntimeError, pl.exceptions.PolarsError) as exc:
            log.warning("columnar read in a child process failed (%s): reading in process",
                        exc)
    return bulk.fetch_frame(conn, sql, params, schema)


def _from_child(path: str, sql: str, params: Sequence[Any],
                schema: dict[str, Any]) -> pl.DataFrame:
    import pyarrow as pa
    import pyarrow.ipc

    # (run by its path: a module of the package would import the package first)
    child = subprocess.Popen([sys.executable, str(_CHILD)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps({"path": path, "sql": sql, "params": [
            int(p) if isinstance(p, bool) else p for p in params]}).encode())
        child.stdin.close()
        try:
            table = pyarrow.ipc.open_stream(child.stdout).read_all()
        except pa.ArrowInvalid:
            table = None
        assert child.stderr is not None
        error = child.stderr.read().decode(errors="replace").strip()
        if child.wait() != 0 or table is None:
            raise RuntimeError(error.splitlines()[-1] if error else
                               f"the reader exited with {child.returncode}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.rename(dict(zip(frame.columns, schema, strict=True))).cast(pl.Schema(schema))
