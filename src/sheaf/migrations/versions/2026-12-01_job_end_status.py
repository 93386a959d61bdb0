"""The status a running job ends in once its worker has stopped (a cancel or an
operator's end asked while it ran).

Revision ID: f3106506bfd7
Revises: 9d4c2b7e5a31
Create Date: 2026-12-01 22:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f3106506bfd7"
down_revision: str | None = "9d4c2b7e5a31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job", sa.Column("end_status", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("end_status")
