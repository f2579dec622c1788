"""triage: priority and sentiment on mentions, and people's corrections of them

Revision ID: 0011_triage
Revises: 0010_listening
Create Date: 2026-12-07 01:20:00.000000

`mentions.priority` (urgent|normal) with its reason, `mentions.sentiment`
(negative|neutral|positive) with VADER's compound score; `triage_corrections`: each
correction a person made (also audited), so they can be counted.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_triage'
down_revision: str | None = '0010_listening'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('mentions') as batch:
        batch.add_column(sa.Column('priority', sa.String(length=8), nullable=False,
                                   server_default='normal'))
        batch.add_column(sa.Column('priority_reason', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('sentiment', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('sentiment_score', sa.Float(), nullable=True))
    op.create_table('triage_corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=16), nullable=False),
    sa.Column('old_value', sa.String(length=16), nullable=True),
    sa.Column('new_value', sa.String(length=16), nullable=False),
    sa.Column('corrected_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'],
                            name=op.f('fk_triage_corrections_mention_id_mentions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_triage_corrections'))
    )
    with op.batch_alter_table('triage_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_triage_corrections_created_at'), ['created_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_triage_corrections_mention_id'), ['mention_id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('triage_corrections')
    with op.batch_alter_table('mentions') as batch:
        batch.drop_column('sentiment_score')
        batch.drop_column('sentiment')
        batch.drop_column('priority_reason')
        batch.drop_column('priority')
