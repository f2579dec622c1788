"""draft images

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 11:30:00.000000

Images attached to drafts (issue 8): shared in the approval message's thread, published
with the draft on networks that take media; the bytes are kept so that what was approved
is what is published.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('draft_images',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('slack_file_id', sa.String(length=32), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('mime_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('alt_text', sa.Text(), nullable=True),
    sa.Column('added_by', sa.String(length=32), nullable=False),
    sa.Column('draft_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], name=op.f('fk_draft_images_draft_id_drafts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_draft_images')),
    sa.UniqueConstraint('draft_id', 'slack_file_id', name=op.f('uq_draft_images_draft_id'))
    )


def downgrade() -> None:
    op.drop_table('draft_images')
