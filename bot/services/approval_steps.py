"""Multi-step approval (issue 21): an account's `approval_steps = ["S0LEAD", "S0COMMS"]`
(at most three user groups, in order). A draft for it is approved by one member of each
group in turn, each a different person from every earlier step's approver and from every
author and editor (`domain/draft_states.approve` refuses those); an edit makes a new version,
and approvals count per version, so it starts again at step one. The comms team may skip
a step that is not the last (`/social skip <draft> <reason>`), audited."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.blockkit.escape import escape, truncate
from bot.db import transaction
from bot.models import Account, Approval, Draft
from bot.runtime import Runtime
from bot.services import audit, draft_states
from bot.services.approvers import UNCONFIRMED, Unconfirmed
from bot.services.draft_surfaces import refresh_draft

SKIP_USAGE = "/social skip <draft, e.g. D12> <reason>"


def steps_of(rt: Runtime, s: Session, draft: Draft) -> list[str]:
    account = s.get(Account, draft.account_id)
    acc = rt.settings.config.account(account.name) if account else None
    return list(acc.approval_steps) if acc else []


def _records(s: Session, draft: Draft) -> list[Approval]:
    return list(s.scalars(select(Approval).where(
        Approval.draft_id == draft.id, Approval.draft_version == draft.version,
        Approval.decision.in_(("approve", "skipped"))).order_by(Approval.id)))


def apply(rt: Runtime, s: Session, draft: Draft, user: str, policy: draft_states.ApprovalPolicy,
          members: Callable[[str], Any]) -> draft_states.ApprovalPolicy:
    """The policy for an account with approval steps: who may approve now is the current
    step's group (asked of Slack live), and the draft is approved after the last step."""
    steps = steps_of(rt, s, draft)
    if not steps:
        return policy
    done = _records(s, draft)
    skipped = sum(1 for a in done if a.decision == "skipped")
    step = min(len(done), len(steps) - 1)
    group = steps[step]
    ok = user in members(group)
    refusal = "" if ok else (
        f"{draft.ref} is at approval step {step + 1} of {len(steps)}: only a member of "
        f"<!subteam^{group}> can decide it at this step.")
    return dataclasses.replace(policy, may_approve=ok, refusal=refusal,
                               required=max(1, len(steps) - skipped), step=step)


def describe(rt: Runtime, s: Session, draft: Draft) -> str | None:
    """One line for a card: `step 2 of 3 (S0COMMS)`."""
    steps = steps_of(rt, s, draft)
    if not steps or draft.state != "pending":
        return None
    step = min(len(_records(s, draft)), len(steps) - 1)
    return f"step {step + 1} of {len(steps)} ({steps[step]})"


def card_lines(rt: Runtime, s: Session, draft: Draft) -> list[str]:
    """The steps on the draft's approval card: who passed each, which is next."""
    steps = steps_of(rt, s, draft)
    if not steps:
        return []
    done = _records(s, draft)
    parts = []
    for i, group in enumerate(steps):
        label = f"{i + 1}. <!subteam^{group}>"
        if i < len(done):
            a = done[i]
            label += (f" :white_check_mark: <@{a.user_id}>" if a.decision == "approve"
                      else f" skipped by <@{a.user_id}>")
        elif i == len(done) and draft.state == "pending":
            label += " ← now"
        parts.append(label)
    return [":ladder: Approval steps: " + " · ".join(parts)
            + " (an edit starts again at step 1)"]


def skip_command(rt: Runtime, user: str, args: str) -> str:
    ref, _, reason = args.strip().partition(" ")
    m = re.fullmatch(r"[Dd](\d{1,12})", ref)
    if not m or not reason.strip():
        return f"Name the draft and say why. Usage: `{SKIP_USAGE}`"
    draft_id, reason = int(m.group(1)), reason.strip()[:500]
    try:
        comms = rt.approvers.is_approver_live(user)
    except Unconfirmed:
        return f":no_entry: {UNCONFIRMED} No step was skipped."
    with transaction(rt.sessions) as s:
        draft = s.get(Draft, draft_id, with_for_update=True)
        if draft is None:
            return f"There is no draft D{draft_id}."
        if not comms:
            audit.record(s, actor=user, action="draft.step_skip_refused", subject_kind="draft",
                         subject_id=draft_id, details={"reason": "not comms"})
            return ":no_entry: Only the comms approvers group can skip an approval step."
        steps = steps_of(rt, s, draft)
        done = _records(s, draft)
        if not steps:
            return f"{draft.ref}'s account has no approval steps."
        if draft.state != "pending":
            return f"{draft.ref} is {draft.state}; there is no step to skip."
        step = len(done)
        if step >= len(steps) - 1:
            return (f"{draft.ref} is at its last step ({steps[-1]}): that one is approved, "
                    "not skipped.")
        s.add(Approval(draft_id=draft_id, draft_version=draft.version, user_id=user,
                       decision="skipped", via="slash", reason=reason))
        audit.record(s, actor=user, action="draft.step_skipped", subject_kind="draft",
                     subject_id=draft_id, details={"step": step + 1, "group": steps[step],
                                                   "version": draft.version,
                                                   "reason": reason})
        refresh_draft(s, draft)
        text = (f"Step {step + 1} ({steps[step]}) of {draft.ref} skipped: "
                f"{escape(truncate(reason, 200))}. It is now at step {step + 2}.")
    rt.kick_outbox()
    return text
