"""draft groups: CSV batches and campaigns shown on one approval card (issue 21)

Revision ID: 0012_draft_groups
Revises: 0011_triage
Create Date: 2026-12-07 00:40:00.000000

`draft_groups` (a batch from `commsdesk schedule import`, or a campaign: one message,
a variant per account) with the ts of its one approval card; `draft_group_items`: each
draft on it, its row, and the campaign name that tags it for reporting.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012_draft_groups'
down_revision: str | None = '0011_triage'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('draft_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('author', sa.String(length=32), nullable=False),
    sa.Column('approval_channel', sa.String(length=32), nullable=True),
    sa.Column('approval_ts', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_draft_groups'))
    )
    op.create_index(op.f('ix_draft_groups_approval_ts'), 'draft_groups', ['approval_ts'],
                    unique=False)
    op.create_table('draft_group_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('campaign', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'],
                            name=op.f('fk_draft_group_items_draft_id_drafts')),
    sa.ForeignKeyConstraint(['group_id'], ['draft_groups.id'],
                            name=op.f('fk_draft_group_items_group_id_draft_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_draft_group_items')),
    sa.UniqueConstraint('group_id', 'draft_id', name=op.f('uq_draft_group_items_group_id'))
    )
    op.create_index(op.f('ix_draft_group_items_group_id'), 'draft_group_items', ['group_id'],
                    unique=False)
    op.create_index(op.f('ix_draft_group_items_draft_id'), 'draft_group_items', ['draft_id'],
                    unique=False)
    op.create_index(op.f('ix_draft_group_items_campaign'), 'draft_group_items', ['campaign'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_draft_group_items_campaign'), table_name='draft_group_items')
    op.drop_index(op.f('ix_draft_group_items_draft_id'), table_name='draft_group_items')
    op.drop_index(op.f('ix_draft_group_items_group_id'), table_name='draft_group_items')
    op.drop_table('draft_group_items')
    op.drop_index(op.f('ix_draft_groups_approval_ts'), table_name='draft_groups')
    op.drop_table('draft_groups')
