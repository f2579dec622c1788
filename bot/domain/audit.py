"""Tamper-evident audit trail: an append-only, SHA-256 hash-chained table.

Each record's hash covers its id, time, actor, action, subject, the digest of
its details and the previous record's hash. The details themselves (which may
hold a resident's words) are covered only through their digest, so a GDPR
retention purge can blank personal text and keep the digest, and the chain
still verifies.

`record()` must be called inside the transaction of the action it records.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, insert, select, text
from sqlalchemy.orm import Session

from commsdesk.clock import now
from commsdesk.models import AuditEvent

GENESIS = "0" * 64
PURGED_KEY = "_purged"
_PG_AUDIT_LOCK = 0x636F6D6D  # "comm": serialises appends to the chain across replicas


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    subject_kind: str,
    subject_id: str,
    details_digest: str,
    prev_hash: str,
) -> str:
    body = canonical(
        {
            "id": id,
            "at": _time(at),
            "actor": actor,
            "action": action,
            "subject": [subject_kind, subject_id],
            "details": details_digest,
            "prev": prev_hash,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_kind: str,
    subject_id: str | int,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one record to the chain, in the caller's transaction."""
    record_many(session, [Entry(actor, action, subject_kind, subject_id, details)])


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    bad_id: int | None = None
    reason: str | None = None

    def message(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.checked} record(s) verified"
        return f"audit trail broken at record {self.bad_id}: {self.reason}"


_VERIFY_COLUMNS = (AuditEvent.id, AuditEvent.at, AuditEvent.actor, AuditEvent.action,
                   AuditEvent.subject_kind, AuditEvent.subject_id, AuditEvent.details,
                   AuditEvent.details_digest, AuditEvent.prev_hash, AuditEvent.hash)


def verify(session: Session, batch: int = 10_000,
           progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Walk the chain in id order; report the first record that does not fit.

    Reads plain rows in keyset-paged batches (no ORM objects), so a million
    records verify in bounded memory; `progress(n)` is told as batches finish.
    """
    expected_id, prev = 1, GENESIS
    checked = 0
    while True:
        rows = session.execute(select(*_VERIFY_COLUMNS).where(AuditEvent.id >= expected_id)
                               .order_by(AuditEvent.id).limit(batch)).all()
        if not rows:
            break
        for (rid, at, actor, action, kind, subject, details, details_digest, prev_hash,
             stored_hash) in rows:
            if rid != expected_id:
                return VerifyResult(
                    False, checked, expected_id if rid > expected_id else rid,
                    f"expected record {expected_id} next but found {rid} "
                    "(a record was removed or inserted)",
                )
            if prev_hash != prev:
                return VerifyResult(
                    False, checked, rid,
                    "its link to the previous record does not match "
                    "(a record before it was removed, inserted or changed)",
                )
            purged = isinstance(details, dict) and details.get(PURGED_KEY) is True
            if not purged and digest(details) != details_digest:
                return VerifyResult(False, checked, rid, "its details were changed")
            h = record_hash(id=rid, at=at, actor=actor, action=action, subject_kind=kind,
                            subject_id=subject, details_digest=details_digest,
                            prev_hash=prev_hash)
            if h != stored_hash:
                return VerifyResult(False, checked, rid, "its contents do not match its hash")
            prev = stored_hash
            expected_id += 1
            checked += 1
        if progress is not None:
            progress(len(rows))
    return VerifyResult(True, checked)


# ---------------------------------------------------------------- export

EXPORT_FIELDS = (
    "id", "at", "actor", "action", "subject_kind", "subject_id", "details", "prev_hash", "hash",
)


def export_query(
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
) -> Select[tuple[AuditEvent]]:
    q = select(AuditEvent).order_by(AuditEvent.id)
    if since is not None:
        q = q.where(AuditEvent.at >= since)
    if until is not None:
        q = q.where(AuditEvent.at < until)
    if actor is not None:
        q = q.where(AuditEvent.actor == actor)
    return q


def count(session: Session, q: Select[tuple[AuditEvent]]) -> int:
    return session.scalar(select(func.count()).select_from(q.subquery())) or 0


def as_row(ev: AuditEvent, tz: Any = UTC) -> dict[str, Any]:
    return {
        "id": ev.id,
        "at": ev.at.astimezone(tz).isoformat(),
        "actor": ev.actor,
        "action": ev.action,
        "subject_kind": ev.subject_kind,
        "subject_id": ev.subject_id,
        "details": ev.details,
        "prev_hash": ev.prev_hash,
        "hash": ev.hash,
    }


def iter_export(
    session: Session, q: Select[tuple[AuditEvent]], fmt: str, tz: Any = UTC
) -> Iterator[str]:
    """Yield the export as text chunks (one per record, CSV header first)."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        yield buf.getvalue()
    for ev in session.execute(q.execution_options(yield_per=1000)).scalars():
        row = as_row(ev, tz)
        if fmt == "jsonl":
            yield canonical(row) + "\n"
        else:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS)
            writer.writerow({**row, "details": canonical(row["details"])})
            yield buf.getvalue()


@dataclass(frozen=True)
class Entry:
    actor: str
    action: str
    subject_kind: str
    subject_id: str | int
    details: dict[str, Any] | None = None


def record_many(session: Session, entries: list[Entry]) -> None:
    """Append several records in one go (same chain rules as `record`)."""
    if not entries:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    next_id, prev = (last.id + 1, last.hash) if last else (1, GENESIS)
    at = now()
    rows: list[dict[str, Any]] = []
    for e in entries:
        details = json.loads(canonical(e.details or {}))
        d = digest(details)
        h = record_hash(id=next_id, at=at, actor=e.actor, action=e.action,
                        subject_kind=e.subject_kind, subject_id=str(e.subject_id),
                        details_digest=d, prev_hash=prev)
        rows.append({"id": next_id, "at": at, "actor": e.actor, "action": e.action,
                     "subject_kind": e.subject_kind, "subject_id": str(e.subject_id),
                     "details": details, "details_digest": d, "prev_hash": prev, "hash": h})
        prev, next_id = h, next_id + 1
    session.execute(insert(AuditEvent), rows)
