"""outbox channel pace

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 12:40:00.000000

Replicas pace each Slack channel together (issue 9): before claiming a message for a
channel, a replica looks for the channel's latest send, by (channel, sent_at).
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_outbox_channel_sent_at', 'outbox', ['channel', 'sent_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_channel_sent_at', table_name='outbox')
