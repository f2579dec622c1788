"""Retention: residents' personal data older than the configured period is purged.

Rows stay (so counts and statistics survive); their personal fields are
blanked. Audit records about them keep the digest of their details
(`{"_purged": true, "digest": ...}`), and the keyed `retention.purged` record written
in the same transaction lists their ids, so `audit verify` still passes and accepts no
other purge: the database lets exactly this change through (migration 0008; on
PostgreSQL through `audit_events_purge()`, the app's role having no UPDATE on the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from bot.clock import now
from bot.db import transaction
from bot.models import (
    AuditEvent,
    Draft,
    DraftImage,
    DraftVersion,
    Mention,
    SavedReplyUse,
)
from bot.runtime import Runtime
from bot.services import audit

FINAL_DRAFT_STATES = ("published", "rejected", "superseded", "cancelled", "expired", "failed")
PERSONAL_ACTIONS = ("mention.received", "draft.created", "draft.edited", "draft.refused",
                    "draft.image_added", "draft.image_alt_text_set",
                    "mention.heard")  # heard by keyword listening (migration 0013)


@dataclass(frozen=True)
class RetentionResult:
    cutoff: datetime
    mentions: int
    drafts: int
    audit_records: int
    dry_run: bool

    def summary(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        return (f"{verb} personal data older than {self.cutoff:%Y-%m-%d}: "
                f"{self.mentions} mention(s), {self.drafts} draft(s), "
                f"{self.audit_records} audit record(s)")


def _final_and_old(cutoff: datetime) -> tuple[Any, ...]:
    """A draft whose personal data may go: not purged, final, untouched since the cutoff."""
    return (Draft.purged_at.is_(None), Draft.updated_at < cutoff,
            Draft.state.in_(FINAL_DRAFT_STATES))


def _targets(s: Session, cutoff: datetime) -> tuple[list[int], list[int], list[int]]:
    mentions = list(s.scalars(select(Mention.id).where(
        Mention.purged_at.is_(None), Mention.fetched_at < cutoff)))
    drafts = list(s.scalars(select(Draft.id).where(*_final_and_old(cutoff))))
    records = [ev.id for ev in s.scalars(select(AuditEvent).where(
        AuditEvent.at < cutoff, AuditEvent.action.in_(PERSONAL_ACTIONS)))
        if not (isinstance(ev.details, dict) and audit.PURGED_KEY in ev.details)]
    return mentions, drafts, records


def run(rt: Runtime, *, dry_run: bool = False, days: int | None = None) -> RetentionResult:
    keep = days if days is not None else rt.settings.config.retention.days
    if keep <= 0:
        raise ValueError("retention.days is 0 (keep everything): nothing to purge")
    cutoff = now() - timedelta(days=keep)
    with transaction(rt.sessions) as s:
        mentions, drafts, records = _targets(s, cutoff)
        if dry_run:
            return RetentionResult(cutoff, len(mentions), len(drafts), len(records), True)
        t = now()
        if mentions:
            s.execute(update(Mention).where(Mention.id.in_(mentions)).values(
                text="", author_handle=None, author_name=None, author_external_id=None,
                url=None, purged_at=t))
        if drafts:
            # the same conditions again, in the UPDATE: a draft retried or edited since it
            # was counted (PostgreSQL reads each statement afresh) is no longer final
            drafts = list(s.scalars(update(Draft).where(
                Draft.id.in_(drafts), *_final_and_old(cutoff))
                .values(text="", purged_at=t).returning(Draft.id)))
            s.execute(update(DraftVersion).where(DraftVersion.draft_id.in_(drafts))
                      .values(text=""))
            s.execute(update(DraftImage).where(DraftImage.draft_id.in_(drafts))
                      .values(data=b"", alt_text=None))
            # a saved reply as it was filled in names the resident ({author})
            s.execute(update(SavedReplyUse).where(SavedReplyUse.draft_id.in_(drafts))
                      .values(filled_text=""))
        _purge_audit_details(s, records)
        audit.record(s, actor="system", action=audit.PURGE_ACTION, subject_kind="retention",
                     subject_id=cutoff.date().isoformat(), details={
                         "mentions": len(mentions), "drafts": len(drafts),
                         "audit_records": len(records), "days": keep,
                         "purged": audit.id_ranges(records)})
    return RetentionResult(cutoff, len(mentions), len(drafts), len(records), False)


def _purge_audit_details(s: Session, records: list[int]) -> None:
    """Each record's details become the purge marker keeping their digest."""
    if not records:
        return
    if s.get_bind().dialect.name == "postgresql":
        # the app's role may not UPDATE the audit table: the owner's function does this
        s.execute(text("SELECT audit_events_purge(CAST(:ids AS integer[]))"), {"ids": records})
        return
    digests: dict[int, str] = {}
    for i in range(0, len(records), 500):
        digests.update(s.execute(select(AuditEvent.id, AuditEvent.details_digest)
                                 .where(AuditEvent.id.in_(records[i:i + 500]))).all())
    for record_id in records:
        s.execute(update(AuditEvent).where(AuditEvent.id == record_id)
                  .values(details=audit.purged_details(digests[record_id])))
