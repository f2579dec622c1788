"""Approve, reject or retry a draft (from a reaction or a button), then act on it."""

from __future__ import annotations

import time
from typing import Literal

from sqlalchemy import select

from bot.db import reading, transaction
from bot.models import Draft
from bot.runtime import Runtime
from bot.services import draft_states, governance
from bot.services.approvers import UNCONFIRMED, Unconfirmed
from bot.services.draft_surfaces import refresh_draft
from bot.services.slack_events import first_delivery

Kind = Literal["approve", "reject", "retry"]


def decide(rt: Runtime, draft_id: int, user: str, kind: Kind, via: str,
           version: int | None = None) -> draft_states.Decision:
    """`version`: the draft version the person was shown (buttons carry it); a decision
    on a version that has since changed is refused. A reaction decides the version
    current when it is handled (the approval records which)."""
    with reading(rt.sessions) as s:
        draft = s.get(Draft, draft_id)
        if draft is None:
            return draft_states.Decision(False, "That draft no longer exists.")
        policy: draft_states.ApprovalPolicy | None
        try:
            policy = governance.policy(rt, s, draft, user)  # asks Slack live
        except LookupError as exc:
            return draft_states.Decision(False, f"{draft.ref} cannot be decided: {exc}.")
        except Unconfirmed:
            policy = None
    if policy is None:
        # never granted from a remembered list: refused, audited, nothing published
        with transaction(rt.sessions) as s:
            draft = s.get_one(Draft, draft_id)
            decision = draft_states.refuse(s, draft, user, kind, via,
                                     f"{UNCONFIRMED} Nothing was published.")
        return decision
    with transaction(rt.sessions) as s:
        if kind == "approve":
            decision = draft_states.approve(s, draft_id, user, policy=policy, via=via,
                                      version=version)
        elif kind == "reject":
            decision = draft_states.reject(s, draft_id, user, policy=policy, via=via,
                                     version=version)
        else:
            decision = draft_states.retry(s, draft_id, user, policy=policy)
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


def decide_reaction(rt: Runtime, channel: str, ts: str, user: str, kind: Kind,
                    event_id: str | None) -> draft_states.Decision | None:
    """An approve/reject emoji on the approval message at (channel, ts): the draft's
    decision, or None when the message shows no draft or Slack is retrying the event."""
    draft_id = find_by_message(rt, channel, ts)
    for _ in range(10):  # the message's ts is stored a moment after Slack has it
        if draft_id is not None:
            break
        time.sleep(0.3)
        draft_id = find_by_message(rt, channel, ts)
    if draft_id is None or not first_delivery(rt, event_id):
        return None
    return decide(rt, draft_id, user, kind, via="reaction")
