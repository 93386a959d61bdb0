"""Idempotency keys belong to a client and a request, not to a job type.

A key was unique per job type, so one client's key answered another client's request with
the first client's task. Keys are now unique per client, and each keyed job records a
fingerprint of the request that created it (endpoint, source, parameters) so that the
same key sent with a different request can be refused.

Revision ID: b4c542aaf13a
Revises: f3106506bfd7
Create Date: 2026-12-01 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b4c542aaf13a"
down_revision: str | None = "f3106506bfd7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_SQL = "status IN ('queued', 'running')"


def _recreate_active_lock_index() -> None:
    # SQLite rebuilds the table to change a constraint; make sure the partial index that
    # enforces one active job per lock key comes back with its WHERE clause.
    op.execute("DROP INDEX IF EXISTS uq_job_active_lock_key")
    op.create_index("uq_job_active_lock_key", "job", ["lock_key"], unique=True,
                    sqlite_where=sa.text(ACTIVE_SQL), postgresql_where=sa.text(ACTIVE_SQL))


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("idempotency_client", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("request_fingerprint", sa.String(length=64), nullable=True))
        batch.drop_constraint("uq_job_type", type_="unique")
    # Keys sent so far came from API clients, recorded as the job's launcher.
    op.execute("UPDATE job SET idempotency_client = substr(launcher, 1, 64) "
               "WHERE idempotency_key IS NOT NULL")
    with op.batch_alter_table("job") as batch:
        batch.create_unique_constraint("uq_job_idempotency_client",
                                       ["idempotency_client", "idempotency_key"])
    _recreate_active_lock_index()


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_constraint("uq_job_idempotency_client", type_="unique")
        batch.create_unique_constraint("uq_job_type", ["type", "idempotency_key"])
        batch.drop_column("request_fingerprint")
        batch.drop_column("idempotency_client")
    _recreate_active_lock_index()
