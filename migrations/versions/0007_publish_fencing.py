"""publish fencing: lease token and retry time on drafts

Revision ID: 0007_publish_fencing
Revises: 0006
Create Date: 2026-12-07 00:00:00.000000

A publish claim carries a token (`drafts.lease_token`, the worker and a fresh
generation): renewing the lease and recording the outcome are compare-and-sets on it,
so a worker whose lease was taken over records nothing. `drafts.retry_at` holds an
approved draft back until then (a network's rate limit with a far reset, or an outcome
that is still unknown), instead of a thread sleeping inside its lease.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_publish_fencing'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('drafts') as batch:
        batch.add_column(sa.Column('lease_token', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('drafts') as batch:
        batch.drop_column('retry_at')
        batch.drop_column('lease_token')
