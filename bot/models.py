"""Database models (SQLAlchemy 2.0, typed). Times are stored in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSON as PG_JSON
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.clock import now as utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# PostgreSQL's `json` keeps the text it is given (jsonb re-renders it): the audit trail's
# details stay in the canonical form their digest hashes (migration 0006)
VerbatimJSON = JSON().with_variant(PG_JSON(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    network: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(255))
    external_user_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PollCursor(Base):
    """Where polling resumes: the newest stored id per account (never past what is stored)."""

    __tablename__ = "poll_cursors"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    since_id: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Mention(Base):
    __tablename__ = "mentions"
    __table_args__ = (UniqueConstraint("network", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    network: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    author_external_id: Mapped[str | None] = mapped_column(String(64))
    author_handle: Mapped[str | None] = mapped_column(String(255))
    author_name: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(512))
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    in_reply_to_external_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="open")  # open|claimed|closed|replied
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(32))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    escalated: Mapped[bool] = mapped_column(default=False, server_default=false())
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # mention | heard (found by keyword listening, no @) | private (a direct message)
    origin: Mapped[str] = mapped_column(String(16), default="mention",
                                        server_default="mention")
    # triage (issue 20): urgent|normal (urgent keywords, safeguarding), and the resident's
    # tone, negative|neutral|positive (VADER's compound score), both correctable by staff
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    priority_reason: Mapped[str | None] = mapped_column(String(255))
    sentiment: Mapped[str | None] = mapped_column(String(8))
    sentiment_score: Mapped[float | None] = mapped_column(Float)

    @property
    def ref(self) -> str:
        return f"M{self.id}"


class Alert(Base):
    """A mention shown in one Slack channel."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("mention_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id"), index=True)
    service: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(255), default="")
    ts: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(Base):
    """A Slack message waiting to be delivered, drained per channel within rate limits."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_channel", "status", "channel", "id"),
                      Index("ix_outbox_channel_sent_at", "channel", "sent_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    op: Mapped[str] = mapped_column(String(16))  # post|update|notice
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    draft_id: Mapped[int | None] = mapped_column(ForeignKey("drafts.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|blocked
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    result_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Draft(Base):
    __tablename__ = "drafts"
    __table_args__ = (Index("ix_drafts_approval", "approval_channel", "approval_ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    mention_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # reply|post
    text: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    author: Mapped[str] = mapped_column(String(32))
    # pending|approved|publishing|published|failed|rejected|superseded|cancelled|expired
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approval_channel: Mapped[str | None] = mapped_column(String(32))
    approval_ts: Mapped[str | None] = mapped_column(String(32))
    approved_by: Mapped[str | None] = mapped_column(String(32))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(32))
    published_external_id: Mapped[str | None] = mapped_column(String(64))
    published_url: Mapped[str | None] = mapped_column(String(512))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the publish claim's fencing token (worker + generation): outcomes are CAS on it
    lease_token: Mapped[str | None] = mapped_column(String(64))
    # an approved draft is not published before this (rate limit, unknown outcome settling)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def ref(self) -> str:
        return f"D{self.id}"


class DraftVersion(Base):
    __tablename__ = "draft_versions"
    __table_args__ = (UniqueConstraint("draft_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    edited_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DraftImage(Base):
    """An image attached to a draft (shared in its approval thread), published with it.

    The bytes themselves are stored, not a Slack file reference: what the approvers saw is
    exactly what is published, even if the file is later edited or deleted in Slack, and
    publishing (or a retry days later) never depends on Slack being reachable. Images are
    capped (services/images.MAX_IMAGE_BYTES), so the table stays small; retention blanks
    them with their draft."""

    __tablename__ = "draft_images"
    __table_args__ = (UniqueConstraint("draft_id", "slack_file_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"))
    slack_file_id: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    alt_text: Mapped[str | None] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(32))
    draft_version: Mapped[int] = mapped_column(Integer)  # the version it was added in
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Approval(Base):
    """Every decision on a draft, including refused ones."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"), index=True)
    draft_version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))  # approve|reject|refused|withdrawn
    via: Mapped[str] = mapped_column(String(16))  # reaction|button
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PublishAttempt(Base):
    __tablename__ = "publish_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(24), default="started")
    external_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)


class Pause(Base):
    """Lockdown: while a pause is open (resumed_at is NULL) nothing is published for
    its account (account_id NULL: every account)."""

    __tablename__ = "pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    reason: Mapped[str] = mapped_column(Text)
    paused_by: Mapped[str] = mapped_column(String(32))
    paused_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resumed_by: Mapped[str | None] = mapped_column(String(32))
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SlackEvent(Base):
    """Slack event ids already handled: Slack's retries are recognised, not redone."""

    __tablename__ = "slack_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """Append-only, hash-chained record of every action (the database refuses UPDATE/DELETE)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(VerbatimJSON)
    details_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # the id of the audit key whose HMAC `hash` is (audit_keys.key_id); NULL: a record of
    # the unkeyed SHA-256 chain written before migration 0008
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True, default=None)


# ---------------------------------------------------------------- insight (issue 7)


class FollowerSnapshot(Base):
    """An account's follower count, once a day (council time), for reach figures."""

    __tablename__ = "follower_snapshots"
    __table_args__ = (UniqueConstraint("account_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    day: Mapped[date] = mapped_column(Date)
    followers: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlaReminder(Base):
    """A reminder that an alert's mention passed 75% or 100% of its SLA: one row each,
    so every reminder is sent once, whatever restarts or replicas do."""

    __tablename__ = "sla_reminders"
    __table_args__ = (UniqueConstraint("alert_id", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id"), index=True)
    service: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)  # 75|100 (% of the SLA)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent: Mapped[bool] = mapped_column(default=True)  # False: superseded by the 100% one
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class InsightRun(Base):
    """Scheduled insight work done once per period (daily digest, weekly report)."""

    __tablename__ = "insight_runs"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)  # digest|weekly_report
    key: Mapped[str] = mapped_column(String(32), primary_key=True)  # 2026-11-25 | 2026-W47
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HomeView(Base):
    """Whose App Home to keep current, and what it last showed (a digest)."""

    __tablename__ = "home_views"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    digest: Mapped[str | None] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------- inbox (issue 20)


class SavedReply(Base):
    """A reply the comms team keeps for everyone (scope "") or for one service (its name).
    Placeholders `{author}`, `{ref}` and `{service}` are filled in when it is used."""

    __tablename__ = "saved_replies"
    __table_args__ = (UniqueConstraint("scope", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), default="")  # "" = every service
    name: Mapped[str] = mapped_column(String(48))
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(32))
    updated_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SavedReplyUse(Base):
    """A draft started from a saved reply: which one, and the text as it was filled in
    (the approval card shows what the draft changed from it; `/social stats` counts uses)."""

    __tablename__ = "saved_reply_uses"

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"), unique=True)
    saved_reply_id: Mapped[int | None] = mapped_column(Integer)  # kept when it is removed
    scope: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(48))
    filled_text: Mapped[str] = mapped_column(Text)
    used_by: Mapped[str] = mapped_column(String(32))
    via: Mapped[str] = mapped_column(String(16))  # slash|modal
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ListenCursor(Base):
    """Where one listening search resumes (per account and query), its own interval and
    rate budget, and a lease so two replicas never run it at once."""

    __tablename__ = "listen_cursors"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # account + query digest
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    since_id: Mapped[str | None] = mapped_column(String(128))
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_used: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TriageCorrection(Base):
    """A person's correction of a mention's priority or sentiment (audited, counted)."""

    __tablename__ = "triage_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id"), index=True)
    field: Mapped[str] = mapped_column(String(16))  # priority|sentiment
    old_value: Mapped[str | None] = mapped_column(String(16))
    new_value: Mapped[str] = mapped_column(String(16))
    corrected_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class DraftGroup(Base):
    """Drafts shown together on one approval card (issue 21): a CSV `batch` or a
    `campaign` (one message, a variant per account). Each draft is still decided,
    audited and published on its own."""

    __tablename__ = "draft_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # batch|campaign
    name: Mapped[str | None] = mapped_column(String(255))  # campaign name / file name
    author: Mapped[str] = mapped_column(String(32))
    approval_channel: Mapped[str | None] = mapped_column(String(32))
    approval_ts: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def ref(self) -> str:
        return f"{'B' if self.kind == 'batch' else 'C'}{self.id}"


class DraftGroupItem(Base):
    """A draft on a group's card: its row (CSV line) and the campaign that tags it."""

    __tablename__ = "draft_group_items"
    __table_args__ = (UniqueConstraint("group_id", "draft_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("draft_groups.id"), index=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    campaign: Mapped[str | None] = mapped_column(String(128), index=True)
