"""Mention alerts: rendering for the outbox and what the alert's buttons do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.blockkit.alerts import AlertView, alert_message
from bot.blockkit.escape import account_link_hosts
from bot.clock import now
from bot.db import reading, transaction
from bot.models import Account, Alert, Draft, Mention, OutboxMessage
from bot.runtime import Runtime
from bot.services import audit
from bot.services.approvers import Unconfirmed
from bot.services.outbox import SlackCall, enqueue
from bot.services.private import private_channels

PENDING_DRAFT_STATES = ("pending", "approved", "publishing")


def alert_view(s: Session, alert: Alert, rt: Runtime) -> AlertView:
    mention = s.get_one(Mention, alert.mention_id)
    account = s.get_one(Account, mention.account_id)
    pending = s.scalar(select(func.count()).select_from(Draft).where(
        Draft.mention_id == mention.id, Draft.state.in_(PENDING_DRAFT_STATES))) or 0
    replied = s.scalars(select(Draft).where(Draft.mention_id == mention.id,
                                            Draft.state == "published")
                        .order_by(Draft.id).limit(1)).first()
    moved_to = None
    if not alert.active and alert.reason.startswith("moved to "):
        moved_to = alert.reason.removeprefix("moved to ").split(" ", 1)[0]
    others = tuple(x for x in s.scalars(select(Alert.service).where(
        Alert.mention_id == mention.id, Alert.active.is_(True), Alert.id != alert.id)) if x)
    acc_cfg = rt.settings.config.account(account.name)
    return AlertView(
        alert=alert, mention=mention, account=account, pending_drafts=pending,
        moved_to=moved_to, also_in=others,
        link_hosts=account_link_hosts(account.network, acc_cfg),
        hide_escalated_text=rt.settings.config.safeguarding.hide_text_in_service_channel,
        show_private=alert.channel in private_channels(rt.settings.config),  # issue 20
        replied_url=replied.published_url if replied else None,
        replied_by=replied.author if replied else None,
        approved_by=replied.approved_by if replied else None,
    )


def render_post_alert(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
    alert = s.get_one(Alert, row.alert_id)
    if alert.ts is not None:  # already posted (a retry after the answer was lost)
        return None
    text, blocks = alert_message(alert_view(s, alert, rt), rt.settings.config.tz)
    alert_id = alert.id

    def on_sent(s2: Session, data: dict[str, Any]) -> None:
        s2.execute(update(Alert).where(Alert.id == alert_id).values(ts=data.get("ts")))

    return SlackCall("chat_postMessage", {"channel": alert.channel, "text": text,
                                          "blocks": blocks, "unfurl_links": False,
                                          "unfurl_media": False}, on_sent)


def render_update_alert(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
    alert = s.get_one(Alert, row.alert_id)
    if alert.ts is None:  # its post is still queued and will show the latest state
        return None
    text, blocks = alert_message(alert_view(s, alert, rt), rt.settings.config.tz)
    return SlackCall("chat_update", {"channel": alert.channel, "ts": alert.ts, "text": text,
                                     "blocks": blocks})


def refresh_alerts(s: Session, mention_id: int, *, include_inactive: bool = False) -> None:
    """Queue an update of every alert showing this mention."""
    q = select(Alert).where(Alert.mention_id == mention_id)
    if not include_inactive:
        q = q.where(Alert.active.is_(True))
    for alert in s.scalars(q):
        enqueue(s, alert.channel, "update_alert", alert_id=alert.id)


# ---------------------------------------------------------------- button actions


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


ACTION_WORDS = {"close": "mark as needing no reply"}  # others read as they are


def authorize(rt: Runtime, alert_id: int, user: str, action: str) -> Outcome | None:
    """May this person act on this alert? Members of the alert's channel and the comms team
    may, asked of Slack now (`conversations.members`, `usergroups.users.list`). None when
    they may; otherwise the refusal, audited (`alert.refused`), to tell them."""
    with reading(rt.sessions) as s:
        found = _load(s, alert_id)
        if found is None:
            return Outcome(False, "That alert no longer exists.")
        alert, mention = found
        channel, mention_id, ref = alert.channel, mention.id, mention.ref
    unconfirmed = False
    try:
        if user in rt.approvers.channel_members_live(channel):
            return None
    except Unconfirmed:
        unconfirmed = True
    try:
        if rt.approvers.is_approver_live(user):
            return None
    except Unconfirmed:
        unconfirmed = True
    verb = ACTION_WORDS.get(action, action)
    if unconfirmed:
        reason = "unconfirmed"
        message = (f"Couldn't confirm you are in <#{channel}> or the comms team, try again "
                   "(Slack did not answer). Nothing was changed.")
    else:
        reason = "not in the alert's channel or the comms team"
        message = (f"Only members of <#{channel}> or the comms team can {verb} {ref}; "
                   "nothing was changed.")
    with transaction(rt.sessions) as s:
        audit.record(s, actor=user, action="alert.refused", subject_kind="mention",
                     subject_id=mention_id, details={"alert": alert_id, "attempted": action,
                                                     "channel": channel, "reason": reason})
    return Outcome(False, message)


def _load(s: Session, alert_id: int) -> tuple[Alert, Mention] | None:
    alert = s.get(Alert, alert_id)
    if alert is None:
        return None
    return alert, s.get_one(Mention, alert.mention_id)


def _move(s: Session, alert_id: int, user: str, *, from_states: tuple[str, ...],
          values: dict[str, Any], action: str, done: str, refused: str,
          details: dict[str, Any] | None = None) -> Outcome:
    """One state change of the mention behind an alert: compare-and-set, audit, refresh."""
    found = _load(s, alert_id)
    if found is None:
        return Outcome(False, "That alert no longer exists.")
    alert, mention = found
    res = s.execute(update(Mention).where(Mention.id == mention.id,
                                          Mention.state.in_(from_states)).values(**values))
    if res.rowcount != 1:
        s.refresh(mention)
        who = (f" by <@{mention.claimed_by}>"
               if mention.state == "claimed" and mention.claimed_by else "")
        return Outcome(False, refused.format(ref=mention.ref, state=mention.state, who=who))
    audit.record(s, actor=user, action=action, subject_kind="mention", subject_id=mention.id,
                 details={"channel": alert.channel, **(details or {})})
    refresh_alerts(s, mention.id)
    return Outcome(True, done.format(ref=mention.ref))


def claim(s: Session, alert_id: int, user: str) -> Outcome:
    return _move(s, alert_id, user, from_states=("open",),
                 values={"state": "claimed", "claimed_by": user, "claimed_at": now()},
                 action="mention.claimed", done="You're on {ref}.",
                 refused="{ref} is already {state}{who}.")


def close(s: Session, alert_id: int, user: str) -> Outcome:
    return _move(s, alert_id, user, from_states=("open", "claimed"),
                 values={"state": "closed", "closed_by": user, "closed_at": now()},
                 action="mention.closed", done="{ref} marked as needing no reply.",
                 refused="{ref} is already {state}.", details={"reason": "no reply needed"})


def reopen(s: Session, alert_id: int, user: str) -> Outcome:
    return _move(s, alert_id, user, from_states=("closed",),
                 values={"state": "open", "closed_by": None, "closed_at": None,
                         "claimed_by": None},
                 action="mention.reopened", done="{ref} reopened.", refused="{ref} is not closed.")


def reroute(s: Session, alert_id: int, user: str, service: str, rt: Runtime) -> Outcome:
    svc = next((x for x in rt.settings.config.services if x.name == service), None)
    if svc is None:
        return Outcome(False, f"There is no service called {service!r}.")
    found = _load(s, alert_id)
    if found is None:
        return Outcome(False, "That alert no longer exists.")
    alert, mention = found
    if not alert.active:
        return Outcome(False, "That alert has already been moved.")
    if svc.channel == alert.channel:
        return Outcome(False, f"{mention.ref} is already in {service}'s channel.")
    existing = s.scalars(select(Alert).where(Alert.mention_id == mention.id,
                                             Alert.channel == svc.channel)).first()
    res = s.execute(update(Alert).where(Alert.id == alert.id, Alert.active.is_(True))
                    .values(active=False, reason=f"moved to {svc.channel} by {user}"))
    if res.rowcount != 1:
        return Outcome(False, "That alert has already been moved.")
    if existing is None:
        new = Alert(mention_id=mention.id, service=svc.name, channel=svc.channel,
                    reason=f"rerouted by a colleague from {alert.service or 'comms'}")
        s.add(new)
        s.flush()
        enqueue(s, new.channel, "post_alert", alert_id=new.id)
    elif not existing.active:
        existing.active = True
        enqueue(s, existing.channel, "update_alert", alert_id=existing.id)
    enqueue(s, alert.channel, "update_alert", alert_id=alert.id)
    audit.record(s, actor=user, action="mention.rerouted", subject_kind="mention",
                 subject_id=mention.id,
                 details={"from_channel": alert.channel, "to_service": svc.name,
                          "to_channel": svc.channel})
    return Outcome(True, f"{mention.ref} moved to {svc.name}.")
