"""The migrations create exactly the schema the models describe."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sheaf.config import Settings
from sheaf.migrate import upgrade
from sheaf.models import Base
from sheaf.runtime import Runtime


def test_models_match_migrations(runtime: Runtime) -> None:
    with runtime.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_scoping_idempotency_keys_keeps_jobs_and_their_history(tmp_path: Path) -> None:
    # SQLite rebuilds the job table to change its unique constraint: the rows that
    # reference jobs (job_event, ON DELETE CASCADE) must survive it.
    settings = Settings(data_dir=tmp_path)
    upgrade(settings, "9d4c2b7e5a31")
    with sqlite3.connect(tmp_path / "sheaf.db") as conn:
        conn.execute(
            "INSERT INTO job (id, type, status, attempt, max_attempts, idempotency_key, "
            "launcher, payload, created_at, updated_at, run_after, progress_current, messages,"
            " counters) VALUES ('j1', 't', 'succeeded', 1, 3, 'k', 'client-1', '{}', "
            "'2026-01-01', '2026-01-01', '2026-01-01', 0, '[]', '{}')")
        conn.execute("INSERT INTO job_event (job_id, at, to_status) "
                     "VALUES ('j1', '2026-01-01', 'queued')")
    upgrade(settings)
    with sqlite3.connect(tmp_path / "sheaf.db") as conn:
        assert conn.execute("SELECT count(*) FROM job_event").fetchone() == (1,)
        assert conn.execute("SELECT idempotency_client FROM job").fetchone() == ("client-1",)
        index = conn.execute("SELECT sql FROM sqlite_master WHERE name = "
                             "'uq_job_active_lock_key'").fetchone()[0]
        assert "WHERE status IN ('queued', 'running')" in index
