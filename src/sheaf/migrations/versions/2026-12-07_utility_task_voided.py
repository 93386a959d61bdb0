"""The bills each chargeback task voided, so reversing the task can un-void them; and an
index of aggregate bills by version (``hasBills`` of a version was a scan of every bill),
and one of a task's bills still analyzing (counted on every poll of a task).

Revision ID: c5d1e8a2b6f3
Revises: a7c3e91f5d24
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c5d1e8a2b6f3'
down_revision: str | None = 'a7c3e91f5d24'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'utility_task_voided',
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('bill_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['bill_id'], ['utility_bill.bill_id'],
                                name=op.f('fk_utility_task_voided_bill_id_utility_bill'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['task_id'], ['utility_chargeback_task.task_id'],
                                name=op.f('fk_utility_task_voided_task_id_utility_chargeback_task'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('task_id', 'bill_id', name=op.f('pk_utility_task_voided')))
    with op.batch_alter_table('utility_task_voided', schema=None) as batch_op:
        batch_op.create_index('ix_utility_task_voided_bill', ['bill_id'], unique=False)
    with op.batch_alter_table('utility_bill', schema=None) as batch_op:
        batch_op.create_index('ix_utility_bill_version', ['version_id'], unique=False,
                              sqlite_where=sa.text('version_id IS NOT NULL'),
                              postgresql_where=sa.text('version_id IS NOT NULL'))
        batch_op.create_index('ix_utility_bill_analyzing', ['task_id'], unique=False,
                              sqlite_where=sa.text('analyzing = 1'),
                              postgresql_where=sa.text('analyzing'))


def downgrade() -> None:
    with op.batch_alter_table('utility_bill', schema=None) as batch_op:
        batch_op.drop_index('ix_utility_bill_analyzing')
        batch_op.drop_index('ix_utility_bill_version')
    with op.batch_alter_table('utility_task_voided', schema=None) as batch_op:
        batch_op.drop_index('ix_utility_task_voided_bill')
    op.drop_table('utility_task_voided')
