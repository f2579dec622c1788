"""Groups of drafts stored together (issue 21): a CSV batch or a campaign, each shown on
one approval card. Storage and "which card shows this draft" only; the card itself and
"Approve all" are `services/plans.py`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import reading
from bot.models import Draft, DraftGroup, DraftGroupItem
from bot.runtime import Runtime
from bot.services.outbox import enqueue


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
    enqueue(s, group.approval_channel or "", "post_group", draft_id=key_draft(s, group.id),
            payload={"group_id": group.id})


def key_draft(s: Session, group_id: int) -> int | None:
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
    """Queue an update of the card showing this draft (rendered from the database when
    sent; the outbox coalesces those queued meanwhile into one send). False if the draft
    has no group."""
    group = group_of(s, draft.id)
    if group is None:
        return False
    enqueue(s, group.approval_channel or "", "update_group", draft_id=key_draft(s, group.id),
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
