"""saved replies: the comms team's kept replies, and which drafts started from one

Revision ID: 0009_saved_replies
Revises: 0008_audit_keyed
Create Date: 2026-12-07 01:00:00.000000

`saved_replies`: a reply kept for everyone (scope "") or for one service (its name),
unique by (scope, name). `saved_reply_uses`: a draft started from one, with the text as
it was filled in (the approval card shows what the draft changed; stats count uses).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_saved_replies'
down_revision: str | None = '0008_audit_keyed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('saved_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=48), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('updated_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_replies')),
    sa.UniqueConstraint('scope', 'name', name=op.f('uq_saved_replies_scope'))
    )
    op.create_table('saved_reply_uses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('saved_reply_id', sa.Integer(), nullable=True),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=48), nullable=False),
    sa.Column('filled_text', sa.Text(), nullable=False),
    sa.Column('used_by', sa.String(length=32), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'],
                            name=op.f('fk_saved_reply_uses_draft_id_drafts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_reply_uses')),
    sa.UniqueConstraint('draft_id', name=op.f('uq_saved_reply_uses_draft_id'))
    )
    with op.batch_alter_table('saved_reply_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_saved_reply_uses_created_at'), ['created_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('saved_reply_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_saved_reply_uses_created_at'))
    op.drop_table('saved_reply_uses')
    op.drop_table('saved_replies')
