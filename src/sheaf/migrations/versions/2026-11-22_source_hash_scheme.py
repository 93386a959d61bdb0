"""Record which hash function wrote a source's account hashes.

Revision ID: 7b1e0c4d2f10
Revises: 3c2a7a26d966
Create Date: 2026-11-22 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7b1e0c4d2f10"
down_revision: str | None = "3c2a7a26d966"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("source", sa.Column("hash_scheme", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source") as batch:
        batch.drop_column("hash_scheme")
