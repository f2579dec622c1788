"""Everything commsdesk holds about one resident, for subject access and FOI requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from bot.models import AuditEvent, Draft, Mention
from bot.services.audit import as_row, canonical


def _row(kind: str, obj: Any, fields: tuple[str, ...]) -> str:
    data = {"record": kind}
    for f in fields:
        value = getattr(obj, f)
        data[f] = value.isoformat() if hasattr(value, "isoformat") else value
    return canonical(data) + "\n"


def subject_export(s: Session, handle: str, audit_query: Select[tuple[AuditEvent]]
                   ) -> Iterator[str]:
    handle = handle.lstrip("@").lower()
    mentions = list(s.scalars(select(Mention).where(
        func.lower(Mention.author_handle) == handle).order_by(Mention.id)))
    ids = [m.id for m in mentions]
    for m in mentions:
        yield _row("mention", m, ("id", "network", "external_id", "author_handle", "author_name",
                                  "text", "url", "posted_at", "state", "fetched_at"))
    drafts = list(s.scalars(select(Draft).where(Draft.mention_id.in_(ids)).order_by(Draft.id)))
    for d in drafts:
        yield _row("draft", d, ("id", "mention_id", "kind", "text", "state", "author",
                                "approved_by", "published_url", "created_at"))
    about = [str(i) for i in ids]
    about_drafts = [str(d.id) for d in drafts]
    q = audit_query.where(or_(
        (AuditEvent.subject_kind == "mention") & AuditEvent.subject_id.in_(about),
        (AuditEvent.subject_kind == "draft") & AuditEvent.subject_id.in_(about_drafts),
    ))
    for ev in s.scalars(q):
        yield canonical({"record": "audit", **as_row(ev)}) + "\n"
