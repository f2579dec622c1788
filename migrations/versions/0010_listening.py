"""keyword listening: heard posts and their search cursors

Revision ID: 0010_listening
Revises: 0009_saved_replies
Create Date: 2026-12-07 01:10:00.000000

`mentions.origin`: `mention` (as before), `heard` (found by a `[[listening]]` search,
no @) or `private` (a direct message). `listen_cursors`: where each listening search
resumes, when it runs next, and how much of its rate budget its window has used.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_listening'
down_revision: str | None = '0009_saved_replies'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('mentions') as batch:
        batch.add_column(sa.Column('origin', sa.String(length=16), nullable=False,
                                   server_default='mention'))
    op.create_table('listen_cursors',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('since_id', sa.String(length=128), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_used', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                            name=op.f('fk_listen_cursors_account_id_accounts')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_listen_cursors'))
    )


def downgrade() -> None:
    op.drop_table('listen_cursors')
    with op.batch_alter_table('mentions') as batch:
        batch.drop_column('origin')
