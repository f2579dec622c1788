"""The durable Slack outbox: every message the bot posts or updates goes through here.

Rows are drained per channel at about one message a second (Slack's
chat.postMessage limit), honouring Retry-After. A channel the bot cannot post
to is reported to the default channel and retried later; nothing is dropped.
Each row is claimed with a compare-and-set lease, so replicas never send one
twice. Messages are rendered at send time from the database, so an alert
always shows its latest state.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import and_, case, func, or_, select, text, update
from sqlalchemy.orm import Session

from bot import logs
from bot.clock import now
from bot.db import reading, transaction
from bot.faults import crash_point
from bot.models import Draft, DraftGroup, DraftGroupItem, OutboxMessage
from bot.runtime import Runtime
from bot.services import audit

log = logs.get("commsdesk.outbox")

# seconds between new messages in one channel (chat.postMessage's ~1/s); the
# override exists for emulator-backed trials, never for a real workspace
CHANNEL_INTERVAL = float(os.environ.get("COMMSDESK_SLACK_POST_INTERVAL", "1.0"))
UPDATE_INTERVAL = 0.25  # chat.update / postEphemeral are not under the per-channel post limit
LEASE = timedelta(seconds=60)
BLOCKED_RETRY = timedelta(seconds=60)
BACKLOG_NOTICE_AT = 20  # pending alerts in a channel that make it worth a notice
BACKLOG_NOTICE_EVERY = 600  # seconds: at most one notice per channel in this time
BACKLOG_NOTICE = "backlog_notice"  # the op of a sent notice's row (never pending)
CHANNEL_GONE = {"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived"}
TRANSIENT = {"internal_error", "fatal_error", "service_unavailable", "request_timeout",
             "ratelimited", "team_added_to_org"}
METADATA_TYPE = "commsdesk_outbox"  # tags each posted message with its outbox row
CLOCK_SKEW_MARGIN = 900  # seconds: our clock and Slack's may disagree this much
UPDATE_OPS = {"update_alert", "update_approval", "ephemeral"}
_PG_CHANNEL_LOCKS = 0x6F757462  # "outb": advisory-lock space of the per-channel pace
COALESCING_OPS = {"update_alert", "update_approval", "update_group"}  # one send: latest state


class NotKnownYet(Exception):
    """Raised by a renderer that cannot tell whether an earlier try already delivered
    (Slack did not answer its look): the row is tried again later, never sent blind."""


@dataclass
class SlackCall:
    method: str  # chat_postMessage | chat_update | chat_postEphemeral
    kwargs: dict[str, Any]
    # called in the same transaction that marks the row sent, with Slack's answer
    on_sent: Callable[[Session, dict[str, Any]], None] | None = None
    covers: list[int] = field(default_factory=list)  # queued updates this one makes redundant


# op -> renderer(session, row, rt) -> SlackCall | None (None: nothing to send any more).
# The table is built once at start-up (bot/bootstrap.py) and handed in as `rt.renderers`.
Renderer = Callable[[Session, OutboxMessage, Runtime], SlackCall | None]


def enqueue(session: Session, channel: str, op: str, *, alert_id: int | None = None,
            draft_id: int | None = None, payload: dict[str, Any] | None = None) -> None:
    session.add(OutboxMessage(channel=channel, op=op, alert_id=alert_id, draft_id=draft_id,
                              payload=payload or {}))


def render_notice(s: Session, row: OutboxMessage, _rt: Runtime) -> SlackCall:
    kwargs: dict[str, Any] = {"channel": row.channel, "text": row.payload["text"]}
    if row.payload.get("thread_ts"):
        kwargs["thread_ts"] = row.payload["thread_ts"]
    if row.payload.get("in_draft_thread") and row.draft_id is not None:
        ts = s.get_one(Draft, row.draft_id).approval_ts
        if not ts:  # a draft on a batch's or campaign's card: that card's thread
            ts = s.scalar(select(DraftGroup.approval_ts)
                          .join(DraftGroupItem, DraftGroupItem.group_id == DraftGroup.id)
                          .where(DraftGroupItem.draft_id == row.draft_id)
                          .order_by(DraftGroupItem.id).limit(1))
        if ts:
            kwargs["thread_ts"] = ts
    if row.payload.get("blocks"):
        kwargs["blocks"] = row.payload["blocks"]
    return SlackCall("chat_postMessage", kwargs)


class Outbox:
    def __init__(self, rt: Runtime, owner: str | None = None):
        self.rt = rt
        self.owner = owner or uuid.uuid4().hex[:12]
        self.next_ok: dict[str, float] = {}
        self.noticed: dict[str, float] = {}

    # ------------------------------------------------------------ selection

    def _due(self) -> list[int]:
        """The next row id per channel that may be sent now (updates first)."""
        t = now()
        due = (OutboxMessage.status == "pending", OutboxMessage.not_before <= t,
               or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < t))
        with reading(self.rt.sessions) as s:
            firsts: dict[str, int] = dict(s.execute(
                select(OutboxMessage.channel, func.min(OutboxMessage.id))
                .where(*due).group_by(OutboxMessage.channel)).all())
            # people pressing buttons should not wait behind a backlog of new alerts
            firsts.update(s.execute(
                select(OutboxMessage.channel, func.min(OutboxMessage.id))
                .where(*due, OutboxMessage.op.in_(UPDATE_OPS))
                .group_by(OutboxMessage.channel)).all())
        mono = time.monotonic()
        return [row_id for channel, row_id in sorted(firsts.items(), key=lambda kv: kv[1])
                if self.next_ok.get(channel, 0.0) <= mono]

    def _claim(self, row_id: int) -> bool:
        t = now()
        with transaction(self.rt.sessions) as s:
            if s.get_bind().dialect.name == "postgresql" and not self._channel_free(s, row_id, t):
                return False
            res = s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.status == "pending",
                       or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < t))
                .values(lease_until=t + LEASE, attempts=OutboxMessage.attempts + 1)
            )
            return res.rowcount == 1

    def _channel_free(self, s: Session, row_id: int, t: datetime) -> bool:
        """Replicas share each channel's pace (PostgreSQL; SQLite runs one process, whose
        `next_ok` is the whole story): under a per-channel lock, a message may be claimed
        only when no other replica is sending in the channel and its last send is an
        interval old. Otherwise this process waits for the channel's next slot."""
        row = s.execute(select(OutboxMessage.channel, OutboxMessage.op)
                        .where(OutboxMessage.id == row_id)).first()
        if row is None:
            return False
        channel, op = row
        s.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:channel))"),
                  {"space": _PG_CHANNEL_LOCKS, "channel": channel})
        interval = UPDATE_INTERVAL if op in UPDATE_OPS else CHANNEL_INTERVAL
        recent = OutboxMessage.sent_at > t - timedelta(seconds=interval)
        in_flight = and_(OutboxMessage.status == "pending", OutboxMessage.id != row_id,
                         OutboxMessage.lease_until > t)
        # One statement, so one snapshot: as two, a send finishing between them (no longer
        # in flight, not yet sent in the first one's view) was seen by neither.
        last, busy = s.execute(
            select(func.max(case((recent, OutboxMessage.sent_at))),
                   func.count(case((in_flight, 1))))
            .where(OutboxMessage.channel == channel, or_(recent, in_flight))).one()
        if last is None and not busy:
            return True
        wait = interval - (t - last).total_seconds() if last is not None else interval
        self.next_ok[channel] = time.monotonic() + max(0.05, wait)
        return False

    # ------------------------------------------------------------ sending

    def step(self) -> int:
        """Send at most one message per ready channel. Returns how many were handled."""
        self._unblock_due()
        handled = 0
        for row_id in self._due():
            if not self._claim(row_id):
                continue
            with structlog.contextvars.bound_contextvars(outbox_id=row_id):
                self._send(row_id)
            handled += 1
        return handled

    def _send(self, row_id: int) -> None:
        with reading(self.rt.sessions) as s:
            row = s.get_one(OutboxMessage, row_id)
            channel, op = row.channel, row.op
            attempts, created_at = row.attempts, row.created_at
            covers: list[int] = []
            if op in COALESCING_OPS:
                # Queued updates of the same thing, looked up *before* rendering: each was
                # committed with its change, so the render below shows that change too. One
                # queued while we render is not covered and goes out after (PostgreSQL reads
                # each statement afresh; covering it would drop the newest state).
                covers = list(s.scalars(select(OutboxMessage.id).where(
                    OutboxMessage.op == op, OutboxMessage.status == "pending",
                    OutboxMessage.id != row_id,
                    OutboxMessage.alert_id == row.alert_id if row.alert_id is not None
                    else OutboxMessage.draft_id == row.draft_id)))
            try:
                call = self.rt.renderers[op](s, row, self.rt)
            except NotKnownYet as exc:
                call, unknown = None, str(exc)
            else:
                unknown = None
            if call is not None:
                call.covers = covers
        if unknown is not None:
            self._retry_later(row_id, unknown)
            return
        if op == "post_alert" and self._maybe_backlog_notice(channel):
            self._release(row_id)  # the notice took this second's slot in the channel
            return
        if call is None:
            self._finish(row_id, None, None)
            return
        if call.method == "chat_postMessage":
            call.kwargs["metadata"] = {"event_type": METADATA_TYPE,
                                       "event_payload": {"outbox_id": row_id}}
            if attempts > 1:
                # an earlier try may have posted before its answer (or our process) was
                # lost: look in the channel before posting again
                try:
                    found = self._already_posted(channel, row_id, created_at,
                                                 call.kwargs.get("thread_ts"))
                except (SlackApiError, SlackClientError, OSError, ValueError) as exc:
                    # not knowing is not "not posted": try again later, never post blind
                    self._retry_later(row_id, f"could not check the channel: {exc}")
                    return
                if found is not None:
                    self._finish(row_id, call, {"ts": found, "channel": channel})
                    return
        interval = CHANNEL_INTERVAL if call.method == "chat_postMessage" else UPDATE_INTERVAL
        self.next_ok[channel] = time.monotonic() + interval
        try:
            resp = getattr(self.rt.outbox_slack, call.method)(**call.kwargs)
        except SlackApiError as exc:
            self._failed(row_id, channel, exc)
            return
        except (SlackClientError, OSError, ValueError) as exc:
            # ValueError: an answer that is not JSON; the message may exist, and the
            # next try checks the channel before posting
            self._retry_later(row_id, f"{type(exc).__name__}: {exc}")
            return
        crash_point("outbox:after_send")
        self._finish(row_id, call, dict(resp.data) if isinstance(resp.data, dict) else {})

    def _already_posted(self, channel: str, row_id: int, since: datetime,
                        thread_ts: str | None = None) -> str | None:
        """The ts of a message this row already posted, found by its metadata tag
        (in the thread for a thread reply: channel history does not list those)."""
        cursor = None
        oldest = f"{since.timestamp() - CLOCK_SKEW_MARGIN:.6f}"
        for _ in range(10):
            if thread_ts:
                resp = self.rt.outbox_slack.conversations_replies(
                    channel=channel, ts=thread_ts, oldest=oldest, limit=200,
                    include_all_metadata=True, cursor=cursor)
            else:
                resp = self.rt.outbox_slack.conversations_history(
                    channel=channel, oldest=oldest, limit=200, include_all_metadata=True,
                    cursor=cursor)
            for msg in resp.get("messages") or []:
                meta = msg.get("metadata") or {}
                if meta.get("event_type") == METADATA_TYPE and \
                        (meta.get("event_payload") or {}).get("outbox_id") == row_id:
                    return str(msg["ts"])
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None

    def _finish(self, row_id: int, call: SlackCall | None, data: dict[str, Any] | None) -> None:
        with transaction(self.rt.sessions) as s:
            row = s.get_one(OutboxMessage, row_id)
            row.status = "sent"
            row.sent_at = now()
            row.lease_until = None
            if data:
                row.result_ts = data.get("ts") or data.get("message_ts")
            if call is not None and call.on_sent is not None and data is not None:
                call.on_sent(s, data)
            if call is not None and call.covers:
                s.execute(update(OutboxMessage)
                          .where(OutboxMessage.id.in_(call.covers),
                                 OutboxMessage.status == "pending")
                          .values(status="sent", sent_at=now(), last_error="coalesced"))

    def _retry_later(self, row_id: int, error: str, delay: float | None = None) -> None:
        with transaction(self.rt.sessions) as s:
            row = s.get_one(OutboxMessage, row_id)
            wait = delay if delay is not None else min(300.0, 2.0 ** row.attempts)
            row.not_before = now() + timedelta(seconds=wait * (0.8 + 0.4 * random.random()))
            row.lease_until = None
            row.last_error = logs.redact(error)  # may quote an exception: never a token
        log.warning("slack delivery will be retried", outbox_id=row_id, error=error)

    def _failed(self, row_id: int, channel: str, exc: SlackApiError) -> None:
        status = exc.response.status_code
        error = str(exc.response.get("error") or status)
        if status == 429:
            retry_after = float(exc.response.headers.get("Retry-After", "1") or 1)
            self.next_ok[channel] = time.monotonic() + retry_after
            self._release(row_id, not_sent=True)
            log.info("slack rate limit honoured", channel=channel, retry_after=retry_after)
            return
        if status >= 500:
            self._retry_later(row_id, f"Slack answered {status}")
            return
        if error in CHANNEL_GONE:
            self._block_channel(row_id, channel, error)
            return
        if error in TRANSIENT:
            self._retry_later(row_id, f"Slack answered {error}")
            return
        with transaction(self.rt.sessions) as s:
            row = s.get_one(OutboxMessage, row_id)
            row.status = "failed"
            row.lease_until = None
            row.last_error = error
            audit.record(s, actor="system", action="slack.delivery_failed",
                         subject_kind="outbox", subject_id=row_id,
                         details={"channel": channel, "op": row.op, "error": error})
        log.error("slack refused a message", outbox_id=row_id, channel=channel, error=error)

    def _block_channel(self, row_id: int, channel: str, error: str) -> None:
        default = self.rt.settings.config.slack.default_channel
        with transaction(self.rt.sessions) as s:
            waiting = s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.channel == channel, OutboxMessage.status == "pending")
                .values(status="blocked", lease_until=None, last_error=error,
                        not_before=now() + BLOCKED_RETRY)
            ).rowcount
            first_time = self.noticed.get(f"blocked:{channel}", float("-inf")) < time.monotonic() - 3600
            if first_time:
                audit.record(s, actor="system", action="slack.channel_unavailable",
                             subject_kind="channel", subject_id=channel,
                             details={"error": error, "waiting": waiting})
                if channel != default:
                    hint = ("invite me with `/invite @commsdesk`" if error == "not_in_channel"
                            else "check the channel id in commsdesk.toml")
                    enqueue(s, default, "notice", payload={"text": (
                        f":warning: I can't post in <#{channel}> (`{error}`): {hint}. "
                        f"{waiting} message(s) are waiting and will be delivered once it's fixed; "
                        "nothing is lost.")})
        if first_time:
            self.noticed[f"blocked:{channel}"] = time.monotonic()
        log.warning("slack channel unavailable", channel=channel, error=error, waiting=waiting)

    def _unblock_due(self) -> None:
        with transaction(self.rt.sessions) as s:
            s.execute(update(OutboxMessage)
                      .where(OutboxMessage.status == "blocked", OutboxMessage.not_before <= now())
                      .values(status="pending"))

    def _release(self, row_id: int, *, not_sent: bool = True) -> None:
        """Give the row back; `not_sent`: this try certainly posted nothing."""
        with transaction(self.rt.sessions) as s:
            values: dict[str, Any] = {"lease_until": None}
            if not_sent:
                values["attempts"] = OutboxMessage.attempts - 1
            s.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values))

    def _maybe_backlog_notice(self, channel: str) -> bool:
        """Tell a channel, once per ten minutes, that a backlog of alerts is on its way.
        The notice is recorded as a sent outbox row: replicas see it (so they neither
        repeat it nor post in the slot it took), as they see every other send."""
        key = f"backlog:{channel}"
        if self.noticed.get(key, float("-inf")) > time.monotonic() - BACKLOG_NOTICE_EVERY:
            return False
        with reading(self.rt.sessions) as s:
            backlog = s.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.channel == channel, OutboxMessage.status == "pending",
                OutboxMessage.op == "post_alert")) or 0
            if backlog < BACKLOG_NOTICE_AT:
                return False
            # our claim holds the channel: no replica is deciding this at the same time
            told = s.scalar(select(OutboxMessage.id).where(
                OutboxMessage.channel == channel, OutboxMessage.op == BACKLOG_NOTICE,
                OutboxMessage.sent_at > now() - timedelta(seconds=BACKLOG_NOTICE_EVERY))
                .limit(1))
        self.noticed[key] = time.monotonic()
        if told is not None:
            return False
        minutes = max(1, round(backlog * CHANNEL_INTERVAL / 60))
        notice = (f":inbox_tray: {backlog} new mentions are queued for this channel. They will "
                  f"arrive at about one a second over the next {minutes} minute(s); none are "
                  "lost.")
        try:
            resp = self.rt.outbox_slack.chat_postMessage(channel=channel, text=notice)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("backlog notice not sent", channel=channel, error=str(exc))
            return False
        self.next_ok[channel] = time.monotonic() + CHANNEL_INTERVAL
        with transaction(self.rt.sessions) as s:
            s.add(OutboxMessage(channel=channel, op=BACKLOG_NOTICE, payload={"text": notice},
                                status="sent", attempts=1, sent_at=now(),
                                result_ts=resp.get("ts")))
        return True

    # ------------------------------------------------------------ loops

    def pending(self) -> int:
        with reading(self.rt.sessions) as s:
            return s.scalar(select(func.count()).select_from(OutboxMessage)
                            .where(OutboxMessage.status == "pending")) or 0

    def drain(self, timeout: float = 600.0) -> int:
        """Deliver until nothing deliverable is left (for `poll --once` and tests)."""
        deadline = time.monotonic() + timeout
        sent = 0
        while time.monotonic() < deadline:
            n = self.step()
            sent += n
            if n == 0:
                if self._next_due_in() is None:
                    break
                time.sleep(0.05)
        return sent

    def _next_due_in(self) -> float | None:
        with reading(self.rt.sessions) as s:
            soonest = s.scalar(select(func.min(OutboxMessage.not_before))
                               .where(OutboxMessage.status == "pending"))
        if soonest is None:
            return None
        return max(0.0, (soonest - now()).total_seconds())

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                n = self.step()
            except Exception:  # keep delivering whatever one bad row does
                log.exception("outbox step failed")
                n = 0
            if n == 0:
                # sleep until the first paced channel's next slot (at most 0.25 s), so
                # the ~1 s spacing per channel does not drift by a whole idle tick
                slots = [t for t in self.next_ok.values() if t > time.monotonic()]
                wait = min([0.25, *(t - time.monotonic() for t in slots)])
                self.rt.outbox_wakeup.wait(timeout=max(0.005, wait))
                self.rt.outbox_wakeup.clear()
