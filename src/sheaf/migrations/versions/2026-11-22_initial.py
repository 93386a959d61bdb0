"""Create the job, credential and identity tables.

Revision ID: 3c2a7a26d966
Revises: 
Create Date: 2026-11-22 17:55:28.163713
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sheaf.kit.base

revision: str = '3c2a7a26d966'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('credential',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('secret_hash', sa.String(length=300), nullable=False),
    sa.Column('authorities', sa.JSON(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_credential'))
    )
    op.create_table('job',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('lock_key', sa.String(length=200), nullable=True),
    sa.Column('subject_id', sa.String(length=64), nullable=True),
    sa.Column('launcher', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_after', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', sheaf.kit.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sheaf.kit.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('worker_id', sa.String(length=100), nullable=True),
    sa.Column('heartbeat_at', sheaf.kit.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_expires_at', sheaf.kit.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('progress_current', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=True),
    sa.Column('progress_message', sa.String(length=500), nullable=True),
    sa.Column('cancel_requested_at', sheaf.kit.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.Column('counters', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job')),
    sa.UniqueConstraint('type', 'idempotency_key', name=op.f('uq_job_type'))
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_status_run_after', ['status', 'run_after'], unique=False)
        batch_op.create_index('ix_job_subject', ['subject_id', 'created_at'], unique=False)
        batch_op.create_index('uq_job_active_lock_key', ['lock_key'], unique=True, sqlite_where=sa.text("status IN ('queued', 'running')"), postgresql_where=sa.text("status IN ('queued', 'running')"))

    op.create_table('source',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('connector', sa.String(length=64), nullable=False),
    sa.Column('connector_attributes', sa.JSON(), nullable=False),
    sa.Column('owner', sa.JSON(), nullable=True),
    sa.Column('authoritative', sa.Boolean(), nullable=False),
    sa.Column('delete_threshold', sa.Integer(), nullable=False),
    sa.Column('correlation', sa.JSON(), nullable=False),
    sa.Column('created', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('modified', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_aggregated', sheaf.kit.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('snapshot_generation', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source')),
    sa.UniqueConstraint('name', name=op.f('uq_source_name'))
    )
    op.create_table('identity',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('attributes', sa.Text(), nullable=False),
    sa.Column('source_id', sa.String(length=32), nullable=True),
    sa.Column('created', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('modified', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_identity_source_id_source'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity'))
    )
    with op.batch_alter_table('identity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_source_id'), ['source_id'], unique=False)

    op.create_table('job_event',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('at', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_job_event_job_id_job'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_event'))
    )
    with op.batch_alter_table('job_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_event_job_id'), ['job_id'], unique=False)

    op.create_table('source_schema',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('native_object_type', sa.String(length=64), nullable=False),
    sa.Column('identity_attribute', sa.String(length=128), nullable=False),
    sa.Column('display_attribute', sa.String(length=128), nullable=False),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('created', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('modified', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_source_schema_source_id_source'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source_schema')),
    sa.UniqueConstraint('source_id', 'name', name=op.f('uq_source_schema_source_id'))
    )
    with op.batch_alter_table('source_schema', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_schema_source_id'), ['source_id'], unique=False)

    op.create_table('account',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=32), nullable=False),
    sa.Column('native_identity', sa.String(length=512), nullable=False),
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('attributes', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.BigInteger(), nullable=False),
    sa.Column('identity_id', sa.String(length=32), nullable=True),
    sa.Column('created', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('modified', sheaf.kit.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['identity.id'], name=op.f('fk_account_identity_id_identity'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_account_source_id_source'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account')),
    sa.UniqueConstraint('source_id', 'native_identity', name=op.f('uq_account_source_id'))
    )
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.create_index('ix_account_identity_id', ['identity_id'], unique=False, sqlite_where=sa.text('identity_id IS NOT NULL'), postgresql_where=sa.text('identity_id IS NOT NULL'))



def downgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index('ix_account_identity_id')

    op.drop_table('account')
    with op.batch_alter_table('source_schema', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_schema_source_id'))

    op.drop_table('source_schema')
    with op.batch_alter_table('job_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_event_job_id'))

    op.drop_table('job_event')
    with op.batch_alter_table('identity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_source_id'))

    op.drop_table('identity')
    op.drop_table('source')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('uq_job_active_lock_key', sqlite_where=sa.text("status IN ('queued', 'running')"), postgresql_where=sa.text("status IN ('queued', 'running')"))
        batch_op.drop_index('ix_job_subject')
        batch_op.drop_index('ix_job_status_run_after')

    op.drop_table('job')
    op.drop_table('credential')
