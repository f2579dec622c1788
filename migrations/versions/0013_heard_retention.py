"""retention purges heard posts' audit details too

Revision ID: 0013_heard_retention
Revises: 0012_draft_groups
Create Date: 2026-12-07 01:45:00.000000

`mention.heard` records (keyword listening, issue 20) carry a resident's words as
`mention.received` ones do: on PostgreSQL the purge function the retention run calls
(`audit_events_purge`, SECURITY DEFINER, migration 0008) now lets their details be
replaced by the purge marker as well. SQLite's trigger does not look at the action.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0013_heard_retention'
down_revision: str | None = '0012_draft_groups'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# retention.PERSONAL_ACTIONS when this revision was written
_BEFORE = ("mention.received", "draft.created", "draft.edited", "draft.refused",
           "draft.image_added", "draft.image_alt_text_set")
_AFTER = (*_BEFORE, "mention.heard")


def _purge_function(actions: Sequence[str]) -> None:
    listed = ", ".join(f"'{a}'" for a in actions)
    # on the driver: the marker's text has a colon SQLAlchemy would take for a parameter
    op.get_bind().exec_driver_sql(
        "CREATE OR REPLACE FUNCTION audit_events_purge(ids integer[]) RETURNS integer "
        "LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$ "
        "WITH done AS (UPDATE audit_events SET details = "
        "('{\"_purged\":true,\"digest\":\"' || details_digest || '\"}')::json "
        f"WHERE id = ANY(ids) AND action IN ({listed}) "
        "AND NOT jsonb_exists(details::jsonb, '_purged') RETURNING 1) "
        "SELECT count(*)::integer FROM done $$"
    )
    op.execute("REVOKE ALL ON FUNCTION audit_events_purge(integer[]) FROM PUBLIC")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _purge_function(_AFTER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _purge_function(_BEFORE)
