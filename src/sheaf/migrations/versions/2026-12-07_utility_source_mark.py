"""A count of the changes that can alter an aggregation's result, kept by triggers, and the
mark each chargeback task read its inputs at: a re-run whose inputs carry the same mark
as an earlier task over the same periods and places has that task's outcome, and is
not computed again (see utility.aggregation).

SQLite counts updates and deletes row by row, and leaves inserts of bills and bill lines
to the mark's highest ids (a trigger per inserted row doubles a bulk import's insert
time; SQLite's single writer means an id below the highest can only appear after a
delete, which is counted). PostgreSQL counts every statement, inserts included: there
ids are drawn from sequences by concurrent transactions and can commit out of order; the
counter's row lock orders the transactions that change the inputs.

Revision ID: d8f2b4c61e07
Revises: c5d1e8a2b6f3
Create Date: 2026-12-07 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd8f2b4c61e07'
down_revision: str | None = 'c5d1e8a2b6f3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the changes of it that count ("UPDATE" alone: any column)
_COUNTED: dict[str, list[str]] = {
    'utility_bill': ['UPDATE OF account_id, billing_period, void, accrual, task_id, '
                     'version_id, total_cost_micro', 'DELETE'],
    'utility_bill_line': ['UPDATE', 'DELETE'],
    'utility_calculated_version': ['INSERT', 'UPDATE', 'DELETE'],
    'utility_version_source': ['INSERT', 'UPDATE', 'DELETE'],
    'utility_meter': ['UPDATE OF place_id, use_unit_id', 'DELETE'],
    'utility_place': ['UPDATE OF parent_id', 'DELETE'],
    'utility_unit': ['UPDATE', 'DELETE'],
}
_INSERTS_TOO = ('utility_bill', 'utility_bill_line')


def _name(table: str, event: str) -> str:
    return f"trg_{table}_{event.split()[0].lower()}_counted"


def upgrade() -> None:
    op.create_table(
        'utility_source_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('changes', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_utility_source_state')))
    op.execute("INSERT INTO utility_source_state (id, changes) VALUES (1, 0)")
    with op.batch_alter_table('utility_chargeback_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_mark', sa.String(length=64), nullable=True))
    # (an upsert: counting goes on should the row ever be emptied, as tests do)
    bump = ("INSERT INTO utility_source_state (id, changes) VALUES (1, 1) ON CONFLICT (id) "
            "DO UPDATE SET changes = utility_source_state.changes + 1")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("CREATE FUNCTION utility_count_change() RETURNS trigger LANGUAGE plpgsql "
                   f"AS $$ BEGIN {bump}; RETURN NULL; END $$")
        for table, events in _COUNTED.items():
            for event in events + (['INSERT'] if table in _INSERTS_TOO else []):
                # (BEFORE: a transaction takes the counter's row lock before the rows its
                # first counted statement changes, and so always in the same order, which
                # an aggregation's commit also follows: no deadlock between writers)
                op.execute(f"CREATE TRIGGER {_name(table, event)} BEFORE {event} ON {table} "
                           "FOR EACH STATEMENT EXECUTE FUNCTION utility_count_change()")
        return
    for table, events in _COUNTED.items():
        for event in events:
            op.execute(f"CREATE TRIGGER {_name(table, event)} AFTER {event} ON {table} "
                       f"FOR EACH ROW BEGIN {bump}; END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table, events in _COUNTED.items():
        for event in events + (['INSERT'] if postgres and table in _INSERTS_TOO else []):
            op.execute(f"DROP TRIGGER {_name(table, event)}" + (f" ON {table}" if postgres
                                                                 else ""))
    if postgres:
        op.execute("DROP FUNCTION utility_count_change()")
    with op.batch_alter_table('utility_chargeback_task', schema=None) as batch_op:
        batch_op.drop_column('source_mark')
    op.drop_table('utility_source_state')
