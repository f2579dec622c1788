"""keyed audit chain: key id per record, purges that keep the proof, a purge function

Revision ID: 0008_audit_keyed
Revises: 0007_publish_fencing
Create Date: 2026-12-07 00:30:00.000000

`audit_events.key_id`: the id of the audit key whose HMAC a record's hash is (NULL: the
unkeyed SHA-256 records written before; they keep verifying as they are, and the first
keyed record marks where the keyed chain begins: see `domain/audit.py`).

The append-only guard now lets one change through: a record's details replaced by the
purge marker that keeps their digest, `{"_purged": true, "digest": <details_digest>}`,
once, every other column unchanged. On PostgreSQL the app's role has no UPDATE on the
table at all (see `commsdesk db grant`): retention calls `audit_events_purge(ids)`, a
SECURITY DEFINER function owned by the migrating role that makes only that change, and
only to the records of the actions that carry residents' words.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_audit_keyed'
down_revision: str | None = '0007_publish_fencing'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSAL = "audit_events is append-only: UPDATE and DELETE are refused"
_COLUMNS = ("id", "at", "actor", "action", "subject_kind", "subject_id", "details_digest",
            "prev_hash", "hash", "key_id")
# retention.PERSONAL_ACTIONS when this revision was written
_PERSONAL_ACTIONS = ("mention.received", "draft.created", "draft.edited", "draft.refused",
                     "draft.image_added", "draft.image_alt_text_set")


def upgrade() -> None:
    op.add_column('audit_events', sa.Column('key_id', sa.String(length=16), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _COLUMNS)
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "WHEN NOT (json(NEW.details) = json_object('_purged', json('true'), 'digest', "
            "OLD.details_digest) AND json_extract(OLD.details, '$._purged') IS NULL "
            f"AND {same}) BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
        )
        return
    new = ", ".join(f"NEW.{c}" for c in _COLUMNS)
    old = ", ".join(f"OLD.{c}" for c in _COLUMNS)
    op.execute(
        "CREATE OR REPLACE FUNCTION audit_events_refuse() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN "
        "IF TG_OP = 'UPDATE' AND NEW.details::jsonb = jsonb_build_object('_purged', true, "
        "'digest', OLD.details_digest) AND NOT jsonb_exists(OLD.details::jsonb, '_purged') "
        f"AND ({new}) IS NOT DISTINCT FROM ({old}) THEN RETURN NEW; END IF; "
        f"RAISE EXCEPTION '{_REFUSAL}'; END $$"
    )
    actions = ", ".join(f"'{a}'" for a in _PERSONAL_ACTIONS)
    # on the driver: the marker's text has a colon SQLAlchemy would take for a parameter
    op.get_bind().exec_driver_sql(
        "CREATE FUNCTION audit_events_purge(ids integer[]) RETURNS integer LANGUAGE sql "
        "SECURITY DEFINER SET search_path FROM CURRENT AS $$ "
        "WITH done AS (UPDATE audit_events SET details = "
        "('{\"_purged\":true,\"digest\":\"' || details_digest || '\"}')::json "
        f"WHERE id = ANY(ids) AND action IN ({actions}) "
        "AND NOT jsonb_exists(details::jsonb, '_purged') RETURNING 1) "
        "SELECT count(*)::integer FROM done $$"
    )
    op.execute("REVOKE ALL ON FUNCTION audit_events_purge(integer[]) FROM PUBLIC")


def downgrade() -> None:
    cols = [c for c in _COLUMNS if c != "key_id"]
    if op.get_bind().dialect.name == "sqlite":
        same = " AND ".join(f"NEW.{c} = OLD.{c}" for c in cols)
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            f"WHEN NOT (json(NEW.details) = json('{{\"_purged\": true}}') AND {same}) "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
        )
    else:
        op.execute("DROP FUNCTION IF EXISTS audit_events_purge(integer[])")
        new = ", ".join(f"NEW.{c}" for c in cols)
        old = ", ".join(f"OLD.{c}" for c in cols)
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_events_refuse() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'UPDATE' AND NEW.details::jsonb = '{\"_purged\": true}'::jsonb "
            f"AND ({new}) IS NOT DISTINCT FROM ({old}) THEN RETURN NEW; END IF; "
            f"RAISE EXCEPTION '{_REFUSAL}'; END $$"
        )
    with op.batch_alter_table('audit_events') as batch:
        batch.drop_column('key_id')
