"""audit details kept verbatim on PostgreSQL

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:45:00.000000

`audit_events.details` becomes `json` instead of `jsonb` on PostgreSQL: `json` keeps the
text it was given, which is the canonical form the record's digest hashes, so
`audit verify` hashes the stored bytes instead of decoding and re-encoding every record
(SQLite's JSON column keeps its text already). Records written before keep jsonb's
rendering of their details; they verify through the slower path. The append-only guard
compares the purge marker as jsonb (`json` has no equality).
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSAL = "audit_events is append-only: UPDATE and DELETE are refused"
_COLUMNS = ("id", "at", "actor", "action", "subject_kind", "subject_id", "details_digest",
            "prev_hash", "hash")


def _guard(details: str) -> None:
    new = ", ".join(f"NEW.{c}" for c in _COLUMNS)
    old = ", ".join(f"OLD.{c}" for c in _COLUMNS)
    op.execute(
        "CREATE OR REPLACE FUNCTION audit_events_refuse() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN "
        f"IF TG_OP = 'UPDATE' AND {details} = '{{\"_purged\": true}}'::jsonb "
        f"AND ({new}) IS NOT DISTINCT FROM ({old}) THEN RETURN NEW; END IF; "
        f"RAISE EXCEPTION '{_REFUSAL}'; END $$"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _guard("NEW.details::jsonb")
    op.execute("ALTER TABLE audit_events ALTER COLUMN details TYPE json USING details::json")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE audit_events ALTER COLUMN details TYPE jsonb USING details::jsonb")
    _guard("NEW.details")
