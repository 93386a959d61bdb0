"""Governance groups: a source's managing group, a credential's memberships.

Revision ID: 9d4c2b7e5a31
Revises: 7b1e0c4d2f10
Create Date: 2026-11-22 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d4c2b7e5a31"
down_revision: str | None = "7b1e0c4d2f10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("credential", sa.Column("workgroups", sa.JSON(), nullable=False,
                                          server_default=sa.text("'[]'")))
    op.add_column("source", sa.Column("management_workgroup", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source") as batch:
        batch.drop_column("management_workgroup")
    with op.batch_alter_table("credential") as batch:
        batch.drop_column("workgroups")
