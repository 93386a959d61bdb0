"""`sheaf jobs show` on the default SQLite database without SQLAlchemy or pydantic.

Importing SQLAlchemy's ORM and pydantic-settings costs more CPU than the 0.5 s the command
is allowed in all. On the default database (SQLite in the data directory) the job row is
one indexed SELECT that the standard library's sqlite3 makes in milliseconds; the row is
shaped by the same ``job_json`` as everywhere else. Anything else (SHEAF_DATABASE_URL set)
takes the ordinary path.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# Job columns SQLAlchemy stores as JSON text, and as naive UTC datetimes (see kit.base)
_JSON = frozenset({"payload", "messages", "counters"})


def _env(name: str) -> str | None:
    # (as pydantic-settings reads them: names are not case-sensitive)
    wanted = name.lower()
    return next((v for k, v in os.environ.items() if k.lower() == wanted), None)


def sqlite_file() -> tuple[Path, Path] | None:
    """(data dir, database file) when the database is the data directory's SQLite file;
    None when SHEAF_DATABASE_URL names another (the ordinary path then)."""
    if _env("SHEAF_DATABASE_URL"):
        return None
    data_dir = Path(_env("SHEAF_DATA_DIR") or "./var").expanduser().resolve()
    return data_dir, data_dir / "sheaf.db"


def _value(name: str, raw: Any) -> Any:
    if raw is None:
        return None
    if name in _JSON:
        return json.loads(raw)
    if name.endswith("_at") or name == "run_after":
        return datetime.fromisoformat(raw).replace(tzinfo=UTC)
    return raw


def jobs_starting(path: Path, prefix: str, limit: int = 11) -> list[SimpleNamespace]:
    """Jobs whose id starts with ``prefix``, as objects with the Job model's attributes."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    connection = sqlite3.connect(path, timeout=60)
    try:
        cursor = connection.execute(
            "SELECT * FROM job WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT ?",
            (escaped + "%", limit))
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    finally:
        connection.close()
    return [SimpleNamespace(**{n: _value(n, v) for n, v in zip(names, row, strict=True)})
            for row in rows]
