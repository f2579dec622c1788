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
from bot.services import approval_steps
from bot.services.decisions import decide
from bot.services.draft_surfaces import post_link
from bot.services.outbox import SlackCall


def group_view(rt: Runtime, s: Session, group: DraftGroup) -> GroupView:
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
            steps=approval_steps.describe(rt, s, draft),
            images=1 if draft.id in image_counts else 0))
    return GroupView(group.ref, group.kind, group.name, group.author, rows)


def render_post_group(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
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


def render_update_group(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
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
