"""The publishing claim on a draft: a fenced lease, and the outcomes recorded under it.

    approved ──claim──▶ publishing (lease_token T, lease_until) ──▶ published | failed
        ▲                    │  renew: lease_until moved on, only while the token is T
        └──release(retry_at)─┘  a rate limit with a far reset, or an outcome not yet known

A claim carries a fresh token (the worker and a new generation). Renewing the lease and
recording any outcome are compare-and-sets on (state, token): a worker whose lease ran
out and was taken over (`reclaim`) records nothing on the draft, only on its own attempt
row (`note_lost_lease`: the post's id when its answer did come, which the new holder then
takes as the outcome). Every transition is one conditional UPDATE in the caller's
transaction, audited there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.clock import now
from bot.domain import draft_machine as machine
from bot.models import Draft, PublishAttempt
from bot.services import audit
from integrations.common import tid

LEASE = timedelta(minutes=5)
# the state a claim holds the draft in; publish, fail and release leave it (draft_machine)
HELD = machine.target("claim")


@dataclass(frozen=True)
class Claim:
    draft_id: int
    token: str
    attempt_id: int
    look_first: bool  # an earlier attempt may have posted: look before posting


def new_token(owner: str) -> str:
    return f"{owner[:40]}:{uuid.uuid4().hex[:16]}"


def publish_key(draft: Draft) -> str:
    """The draft's own post identifier, the same on every attempt of one version (and new
    for a new version): a TID (Bluesky's record key format) made of the draft's creation
    time plus its version, and its id as the clock id."""
    micros = int(draft.created_at.timestamp() * 1_000_000) + draft.version
    return tid(micros, draft.id % 1024)


def due(t: datetime):  # type: ignore[no-untyped-def]
    """Approved drafts whose time has come (schedule and any retry time)."""
    return (Draft.state.in_(machine.sources("claim")),
            or_(Draft.scheduled_for.is_(None), Draft.scheduled_for <= t),
            or_(Draft.retry_at.is_(None), Draft.retry_at <= t))


def _earlier_attempts(s: Session, draft_id: int) -> bool:
    return s.scalar(select(PublishAttempt.id).where(PublishAttempt.draft_id == draft_id)
                    .limit(1)) is not None


def claim(s: Session, draft_id: int, owner: str) -> Claim | None:
    """approved -> publishing under a new token, the intent recorded before any call."""
    t = now()
    token = new_token(owner)
    looked_before = _earlier_attempts(s, draft_id)
    res = s.execute(update(Draft).where(Draft.id == draft_id, *due(t)).values(
        state=machine.target("claim"), lease_token=token, lease_until=t + LEASE, retry_at=None,
        updated_at=t))
    if res.rowcount != 1:
        return None
    attempt = _start_attempt(s, draft_id, owner, token)
    return Claim(draft_id, token, attempt, looked_before)


def reclaim(s: Session, draft_id: int, owner: str) -> Claim | None:
    """A `publishing` draft whose lease ran out (its worker crashed, hung or lost the
    database): taken over under a new token. Whatever the old worker was doing is of
    unknown outcome, so the new holder looks before it posts."""
    t = now()
    draft = s.get(Draft, draft_id)
    if draft is None or draft.state != HELD or draft.lease_until is None \
            or draft.lease_until >= t:
        return None
    token = new_token(owner)
    res = s.execute(update(Draft).where(
        Draft.id == draft_id, Draft.state == HELD, Draft.lease_until < t,
        Draft.lease_token.is_(None) if draft.lease_token is None
        else Draft.lease_token == draft.lease_token)
        .values(lease_token=token, lease_until=t + LEASE, updated_at=t))
    if res.rowcount != 1:
        return None
    s.execute(update(PublishAttempt).where(PublishAttempt.draft_id == draft_id,
                                           PublishAttempt.outcome == "started")
              .values(outcome="unknown", finished_at=t,
                      error="lease ran out while publishing: outcome unknown"))
    audit.record(s, actor="system", action="draft.publish_reconciling", subject_kind="draft",
                 subject_id=draft_id, details={"owner": owner, "previous_token":
                                               draft.lease_token, "token": token})
    attempt = _start_attempt(s, draft_id, owner, token)
    return Claim(draft_id, token, attempt, True)


def _start_attempt(s: Session, draft_id: int, owner: str, token: str) -> int:
    draft = s.get_one(Draft, draft_id)
    s.execute(update(Draft).where(Draft.id == draft_id).values(attempts=Draft.attempts + 1))
    attempt = PublishAttempt(draft_id=draft_id, outcome="started")
    s.add(attempt)
    s.flush()
    audit.record(s, actor="system", action="draft.publishing", subject_kind="draft",
                 subject_id=draft_id, details={"attempt": attempt.id, "owner": owner,
                                               "token": token, "version": draft.version})
    return attempt.id


def renew(s: Session, draft_id: int, token: str) -> bool:
    """Move the lease on; False when the claim is no longer this token's."""
    t = now()
    res = s.execute(update(Draft).where(Draft.id == draft_id, Draft.state == HELD,
                                        Draft.lease_token == token)
                    .values(lease_until=t + LEASE))
    return res.rowcount == 1


def _fenced(draft_id: int, token: str) -> tuple:  # type: ignore[type-arg]
    return (Draft.id == draft_id, Draft.state == HELD, Draft.lease_token == token)


def mark_published(s: Session, c: Claim, external_id: str, url: str, *,
                   reconciled: bool = False) -> bool:
    t = now()
    res = s.execute(update(Draft).where(*_fenced(c.draft_id, c.token)).values(
        state=machine.target("publish"), published_external_id=external_id, published_url=url,
        published_at=t, lease_until=None, lease_token=None, retry_at=None, last_error=None,
        updated_at=t))
    if res.rowcount != 1:
        return False
    s.execute(update(PublishAttempt).where(PublishAttempt.id == c.attempt_id).values(
        outcome="reconciled" if reconciled else "published", external_id=external_id,
        finished_at=t))
    audit.record(s, actor="system", action="draft.published", subject_kind="draft",
                 subject_id=c.draft_id, details={"external_id": external_id, "url": url,
                                                 "reconciled": reconciled})
    return True


def mark_failed(s: Session, c: Claim, error: str, *, transient: bool) -> bool:
    t = now()
    res = s.execute(update(Draft).where(*_fenced(c.draft_id, c.token)).values(
        state=machine.target("fail"), last_error=error, lease_until=None, lease_token=None,
        retry_at=None, updated_at=t))
    if res.rowcount != 1:
        return False
    s.execute(update(PublishAttempt).where(PublishAttempt.id == c.attempt_id).values(
        outcome="transient_error" if transient else "permanent_error", error=error,
        finished_at=t))
    audit.record(s, actor="system", action="draft.publish_failed", subject_kind="draft",
                 subject_id=c.draft_id, details={"error": error, "transient": transient})
    return True


def release(s: Session, c: Claim, retry_at: datetime, reason: str, *, outcome: str) -> bool:
    """publishing -> approved, not before `retry_at`: no thread waits inside the lease.
    `outcome` says what this attempt left behind: "rate_limited" (refused, nothing
    posted) or "unknown" (the next attempt looks first, as every later attempt does)."""
    t = now()
    res = s.execute(update(Draft).where(*_fenced(c.draft_id, c.token)).values(
        state=machine.target("release"), lease_until=None, lease_token=None, retry_at=retry_at,
        last_error=reason, updated_at=t))
    if res.rowcount != 1:
        return False
    s.execute(update(PublishAttempt).where(PublishAttempt.id == c.attempt_id).values(
        outcome=outcome, error=reason, finished_at=t))
    audit.record(s, actor="system", action="draft.publish_deferred", subject_kind="draft",
                 subject_id=c.draft_id, details={"retry_at": retry_at.isoformat(),
                                                 "reason": reason, "outcome": outcome})
    return True


def note_lost_lease(s: Session, c: Claim, external_id: str | None) -> None:
    """The worker lost its claim (taken over) while its call was in flight: its own
    attempt row keeps what it learnt (the post's id when the answer came), for the
    holder of the claim to take as the outcome; the draft is not touched."""
    s.execute(update(PublishAttempt).where(PublishAttempt.id == c.attempt_id).values(
        outcome="lease_lost", external_id=external_id, finished_at=now()))


def post_known(s: Session, draft_id: int) -> str | None:
    """A post id a fenced-off worker of this draft got back (see `note_lost_lease`)."""
    return s.scalar(select(PublishAttempt.external_id).where(
        PublishAttempt.draft_id == draft_id, PublishAttempt.outcome == "lease_lost",
        PublishAttempt.external_id.is_not(None)).order_by(PublishAttempt.id.desc()).limit(1))
