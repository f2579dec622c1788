"""Approve, reject or retry a draft (from a reaction or a button), then act on it."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select

from commsdesk.db import reading, transaction
from commsdesk.domain import drafts
from commsdesk.models import Draft
from commsdesk.runtime import Runtime
from commsdesk.services import governance
from commsdesk.services.drafting import refresh_draft

Kind = Literal["approve", "reject", "retry"]


def decide(rt: Runtime, draft_id: int, user: str, kind: Kind, via: str) -> drafts.Decision:
    with reading(rt.sessions) as s:
        draft = s.get(Draft, draft_id)
        if draft is None:
            return drafts.Decision(False, "That draft no longer exists.")
        try:
            policy = governance.policy(rt, s, draft, user)
        except LookupError as exc:
            return drafts.Decision(False, f"{draft.ref} cannot be decided: {exc}.")
    with transaction(rt.sessions) as s:
        if kind == "approve":
            decision = drafts.approve(s, draft_id, user, policy=policy, via=via)
        elif kind == "reject":
            decision = drafts.reject(s, draft_id, user, policy=policy, via=via)
        else:
            decision = drafts.retry(s, draft_id, user, policy=policy)
        draft = s.get(Draft, draft_id)
        if draft is not None and (decision.ok or draft.state == "expired"):
            refresh_draft(s, draft)
            if draft.mention_id is not None:
                for other in s.scalars(select(Draft).where(Draft.mention_id == draft.mention_id,
                                                           Draft.id != draft.id,
                                                           Draft.state == "superseded")):
                    refresh_draft(s, other)
    if decision.publish_now and decision.draft_id is not None:
        rt.publisher.submit(decision.draft_id)
    rt.kick_outbox()
    return decision


def find_by_message(rt: Runtime, channel: str, ts: str) -> int | None:
    with reading(rt.sessions) as s:
        return s.scalar(select(Draft.id).where(Draft.approval_channel == channel,
                                               Draft.approval_ts == ts))
