"""Groups of drafts shown on one approval card (issue 21): a CSV batch or a campaign.

A group only changes how drafts are shown and decided together: each draft keeps its own
state machine, four-eyes rules, audit records and exactly-once publishing
(`services/decisions.decide`, `services/publishing.Publisher`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.blockkit.plans import GroupView, Row, group_message
from bot.db import reading
from bot.models import Account, Draft, DraftGroup, DraftGroupItem, DraftImage, OutboxMessage
from bot.runtime import Runtime
from bot.services.outbox import SlackCall, enqueue, renderer


def create_group(s: Session, *, kind: str, name: str | None, author: str,
                 channel: str) -> DraftGroup:
    group = DraftGroup(kind=kind, name=name, author=author, approval_channel=channel)
    s.add(group)
    s.flush()
    return group


def add_item(s: Session, group: DraftGroup, draft: Draft, position: int,
             campaign: str | None) -> None:
    s.add(DraftGroupItem(group_id=group.id, draft_id=draft.id, position=position,
                         campaign=campaign))


def post_card(s: Session, group: DraftGroup) -> None:
    s.flush()
    enqueue(s, group.approval_channel or "", "post_group", draft_id=_key_draft(s, group.id),
            payload={"group_id": group.id})


def _key_draft(s: Session, group_id: int) -> int | None:
    return s.scalar(select(DraftGroupItem.draft_id).where(DraftGroupItem.group_id == group_id)
                    .order_by(DraftGroupItem.id).limit(1))


def group_of(s: Session, draft_id: int) -> DraftGroup | None:
    gid = s.scalar(select(DraftGroupItem.group_id).where(DraftGroupItem.draft_id == draft_id)
                   .order_by(DraftGroupItem.id).limit(1))
    return s.get(DraftGroup, gid) if gid is not None else None


def campaign_of(s: Session, draft_id: int) -> str | None:
    return s.scalar(select(DraftGroupItem.campaign).where(DraftGroupItem.draft_id == draft_id,
                                                          DraftGroupItem.campaign.is_not(None))
                    .limit(1))


def refresh_group_of(s: Session, draft: Draft) -> bool:
    """Queue one update of the card showing this draft (coalesced: at most one waiting
    per card, rendered from the database when sent). False if the draft has no group."""
    group = group_of(s, draft.id)
    if group is None:
        return False
    key = _key_draft(s, group.id)
    waiting = s.scalar(select(OutboxMessage.id).where(  # not yet taken by a sender
        OutboxMessage.op == "update_group", OutboxMessage.draft_id == key,
        OutboxMessage.status == "pending", OutboxMessage.lease_until.is_(None)).limit(1))
    if waiting is None:
        enqueue(s, group.approval_channel or "", "update_group", draft_id=key,
                payload={"group_id": group.id})
    return True


def campaign_drafts(rt: Runtime, channel: str, ts: str) -> list[int]:
    """The variants of the campaign whose card is this message (images shared in its
    thread go to each, each checked for its own network); [] for anything else."""
    with reading(rt.sessions) as s:
        return list(s.scalars(
            select(DraftGroupItem.draft_id)
            .join(DraftGroup, DraftGroup.id == DraftGroupItem.group_id)
            .where(DraftGroup.approval_channel == channel, DraftGroup.approval_ts == ts,
                   DraftGroup.kind == "campaign")
            .order_by(DraftGroupItem.position, DraftGroupItem.id)))


def thread_ts(s: Session, draft_id: int) -> str | None:
    """Where a grouped draft's notices go: the thread of its group's card."""
    group = group_of(s, draft_id)
    return group.approval_ts if group is not None else None


def group_view(rt: Runtime, s: Session, group: DraftGroup) -> GroupView:
    from bot.services.drafting import post_link

    rows: list[Row] = []
    q = (select(DraftGroupItem, Draft, Account)
         .join(Draft, Draft.id == DraftGroupItem.draft_id)
         .join(Account, Account.id == Draft.account_id)
         .where(DraftGroupItem.group_id == group.id)
         .order_by(DraftGroupItem.position, DraftGroupItem.id))
    image_counts = dict(s.execute(
        select(DraftImage.draft_id, DraftImage.id).join(
            DraftGroupItem, DraftGroupItem.draft_id == DraftImage.draft_id)
        .where(DraftGroupItem.group_id == group.id)).all())
    for item, draft, account in s.execute(q).all():
        network = rt.network(account.name)
        rows.append(Row(
            draft_id=draft.id, ref=draft.ref, version=draft.version, position=item.position,
            account=account.name, network=account.network, state=draft.state, text=draft.text,
            length=network.weighted_length(draft.text), limit=network.max_length,
            scheduled_for=draft.scheduled_for, campaign=item.campaign,
            link=post_link(rt, s, draft, draft.published_url)
            if draft.state == "published" else None,
            error=draft.last_error if draft.state in ("failed", "expired") else None,
            steps=_steps(rt, s, draft),
            images=1 if draft.id in image_counts else 0))
    return GroupView(group.ref, group.kind, group.name, group.author, rows)


def _steps(rt: Runtime, s: Session, draft: Draft) -> str | None:
    try:
        from bot.services import approval_steps
    except ImportError:
        return None
    return approval_steps.describe(rt, s, draft)


@renderer("post_group")
def _render_post_group(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
    group = s.get(DraftGroup, row.payload.get("group_id"))
    if group is None or group.approval_ts is not None:
        return None
    text, blocks = group_message(group_view(rt, s, group), rt.settings.config.tz)
    group_id = group.id

    def on_sent(s2: Session, data: dict[str, Any]) -> None:
        s2.execute(update(DraftGroup).where(DraftGroup.id == group_id)
                   .values(approval_ts=data.get("ts")))

    return SlackCall("chat_postMessage", {"channel": row.channel, "text": text,
                                          "blocks": blocks, "unfurl_links": False}, on_sent)


@renderer("update_group")
def _render_update_group(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
    group = s.get(DraftGroup, row.payload.get("group_id"))
    if group is None or group.approval_ts is None:
        return None
    text, blocks = group_message(group_view(rt, s, group), rt.settings.config.tz)
    return SlackCall("chat_update", {"channel": group.approval_channel, "ts": group.approval_ts,
                                     "text": text, "blocks": blocks})


@dataclass(frozen=True)
class AllDecided:
    approved: int
    refused: list[str]  # "D12: why"

    @property
    def message(self) -> str:
        text = f"Approved {self.approved} draft(s)."
        if self.refused:
            text += " Not approved: " + "; ".join(self.refused[:10])
            if len(self.refused) > 10:
                text += f"; and {len(self.refused) - 10} more"
            text += "."
        return text


def approve_all(rt: Runtime, group_id: int, user: str) -> AllDecided:
    """Approve every pending draft on the card, one decision (and audit record) each,
    with exactly the rules of approving it alone. Someone refused on the first draft
    (not an approver, or its author) is not tried on the others."""
    from bot.services.decisions import decide

    with reading(rt.sessions) as s:
        todo = list(s.execute(
            select(Draft.id, Draft.version).join(DraftGroupItem, DraftGroupItem.draft_id == Draft.id)
            .where(DraftGroupItem.group_id == group_id, Draft.state == "pending")
            .order_by(DraftGroupItem.position, DraftGroupItem.id)).all())
    approved, refused = 0, []
    for draft_id, version in todo:
        decision = decide(rt, draft_id, user, "approve", via="button", version=version)
        if decision.ok:
            approved += 1
            continue
        refused.append(f"D{draft_id}: {decision.message}")
        if approved == 0:
            break
    return AllDecided(approved, refused)
