"""The council's control measures applied to drafts: who may draft and approve,
pauses (lockdown), pre-election periods, house style."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.blockkit.escape import escape, truncate
from bot.blockkit.labels import account_label
from bot.blockkit.permissions import describe, refusal
from bot.clock import now
from bot.config import AccountConfig, ServiceConfig
from bot.db import transaction
from bot.domain import permissions, purdah, slash
from bot.domain.house_style import DraftFacts, Finding, blocking, run_checks
from bot.models import Account, Alert, Draft, Pause
from bot.runtime import Runtime
from bot.services import approval_steps, audit, draft_states
from bot.services.accounts import account_ids
from bot.services.approvers import UNCONFIRMED, Unconfirmed
from bot.services.draft_states import ApprovalPolicy
from bot.services.draft_surfaces import refresh_draft
from integrations.base import Capability


def account_cfg(rt: Runtime, s: Session, account_id: int) -> AccountConfig:
    name = s.get_one(Account, account_id).name
    cfg = rt.settings.config.account(name)
    if cfg is None:  # an account removed from the config: nobody may act for it
        raise LookupError(f"account {name} is no longer configured")
    return cfg


def findings(rt: Runtime, s: Session, draft: Draft) -> list[Finding]:
    acc = s.get_one(Account, draft.account_id)
    network = rt.network(acc.name)
    facts = DraftFacts(text=draft.text, length=network.weighted_length(draft.text),
                       max_length=network.max_length, is_reply=draft.mention_id is not None,
                       images=[(i.filename, i.alt_text) for i in draft_states.images(s, draft.id)])
    return run_checks(facts, rt.settings.config.house_style)


def image_blockers(rt: Runtime, s: Session, draft: Draft, found: list[Finding]) -> list[str]:
    """Images are published only with alt text, and only where the network takes media:
    these hold whatever the house-style levels say."""
    images = draft_states.images(s, draft.id)
    if not images:
        return []
    acc = s.get_one(Account, draft.account_id)
    network = rt.network(acc.name)
    out = []
    if Capability.MEDIA not in network.capabilities:
        out.append(f"commsdesk cannot publish images to "
                   f"{escape(account_label(acc.handle, acc.network))}; remove the image or "
                   "draft it for another account.")
    if not any(f.check == "alt_text" and f.level == "block" for f in found):
        out += [f"image {escape(truncate(i.filename, 100))} has no alt text: reply in this "
                "draft's thread with `alt: &lt;what the image shows&gt;`."
                for i in images if not (i.alt_text or "").strip()]
    return out


def active_pause(s: Session, account_id: int) -> Pause | None:
    return s.scalars(select(Pause).where(
        Pause.resumed_at.is_(None),
        or_(Pause.account_id.is_(None), Pause.account_id == account_id),
    ).order_by(Pause.id).limit(1)).first()


def periods(rt: Runtime, account: AccountConfig) -> list:  # type: ignore[type-arg]
    cfg = rt.settings.config
    return purdah.active_periods(cfg, account.name, now().astimezone(cfg.tz).date())


def policy(rt: Runtime, s: Session, draft: Draft, user: str) -> ApprovalPolicy:
    """Asks Slack live who is in which group (`approvers.Unconfirmed` when it cannot say)."""
    cfg = rt.settings.config
    acc = account_cfg(rt, s, draft.account_id)
    members = rt.approvers.live()
    verdict = permissions.can_approve(user, acc, cfg, members)
    blockers: list[str] = []
    required = acc.required_approvals
    special: frozenset[str] | None = None
    label = ""
    for period in periods(rt, acc):
        if period.rule == "block":
            blockers.append(f"{period.name} runs until {period.end:%d %B %Y}: publishing for "
                            f"{account_label(acc.handle, acc.network)} is blocked. {period.explanation}")
        else:
            required = max(required, 2)
            special = members(period.approvers_usergroup)
            label = f"<!subteam^{period.approvers_usergroup}> ({period.name})"
    found = findings(rt, s, draft)
    blockers += [f"House style: {escape(f.message)}" for f in blocking(found)]
    blockers += image_blockers(rt, s, draft, found)
    made = ApprovalPolicy(verdict.ok, refusal(verdict, cfg), required, special, label, tuple(blockers))
    return approval_steps.apply(rt, s, draft, user, made, members)  # ordered steps (issue 21)


def hold_reason(rt: Runtime, s: Session, draft: Draft) -> str | None:
    """Why an approved draft may not be published right now (None: it may)."""
    pause = active_pause(s, draft.account_id)
    if pause is not None:
        return f"publishing is paused by <@{pause.paused_by}>: {_reason(pause.reason)}"
    acc = account_cfg(rt, s, draft.account_id)
    for period in periods(rt, acc):
        if period.rule == "block":
            return f"{period.name} (until {period.end:%d %B %Y})"
    found = findings(rt, s, draft)
    if blocking(found):
        return "a house-style check blocks it"
    image_problems = image_blockers(rt, s, draft, found)
    if image_problems:
        return image_problems[0]
    return None


def drafting_refusal(rt: Runtime, s: Session, user: str, account: str,
                     mention_id: int | None) -> str | None:
    cfg = rt.settings.config
    acc = cfg.account(account)
    if acc is None:
        return f"There is no account called `{escape(truncate(account, 100))}`."
    services: list[ServiceConfig] = []
    if mention_id is not None:
        names = set(s.scalars(select(Alert.service).where(Alert.mention_id == mention_id,
                                                          Alert.active.is_(True))))
        services = [svc for svc in cfg.services if svc.name in names]
    verdict = permissions.can_draft(user, acc, services, cfg, rt.approvers.members_of)
    return None if verdict.ok else refusal(verdict, cfg)


def banners(rt: Runtime, s: Session, draft: Draft) -> list[str]:
    out = []
    pause = active_pause(s, draft.account_id)
    if pause is not None:
        out.append(f":octagonal_sign: *Publishing paused* by <@{pause.paused_by}>: "
                   f"{_reason(pause.reason)}. Approved drafts wait until it is resumed.")
    try:
        acc = account_cfg(rt, s, draft.account_id)
    except LookupError:
        return out
    for period in periods(rt, acc):
        rule = ("publishing is blocked" if period.rule == "block" else
                f"a second approval from <!subteam^{period.approvers_usergroup}> is required")
        out.append(f":ballot_box_with_ballot: *{period.name}* until {period.end:%d %B %Y}: "
                   f"{rule}. {period.explanation}")
    return out


# ---------------------------------------------------------------- lockdown


def run_command(rt: Runtime, user: str, cmd: slash.WhoAmI | slash.Pause | slash.Resume) -> str:
    """`/social whoami|pause|resume`: the answer to show the person (mrkdwn)."""
    cfg = rt.settings.config
    if isinstance(cmd, slash.WhoAmI):  # display: a minute-old answer is fine
        return "\n".join(describe(user, cfg, rt.approvers.members_cached))
    try:  # changing something: asked of Slack now
        comms = rt.approvers.is_approver_live(user)
    except Unconfirmed:
        comms = None
    if not comms:
        with transaction(rt.sessions) as s:
            audit.record(s, actor=user, action="publishing.pause_refused",
                         subject_kind="account", subject_id=cmd.target,
                         details={"command": type(cmd).__name__.lower(),
                                  "reason": "unconfirmed" if comms is None else "not comms"})
        if comms is None:
            return f":no_entry: {UNCONFIRMED} Nothing was changed."
        return ":no_entry: Only the comms approvers group can pause or resume publishing."
    if cmd.target != "all" and cfg.account(cmd.target) is None:
        known = ", ".join(a.name for a in cfg.accounts)
        return (f"There is no account called `{escape(cmd.target)}`. Accounts: {escape(known)}, "
                "or `all`.")
    with transaction(rt.sessions) as s:
        if isinstance(cmd, slash.Pause):
            text = pause(rt, s, user, cmd.target, cmd.reason)
        else:
            text = resume(rt, s, user, cmd.target)
    rt.kick_outbox()
    if isinstance(cmd, slash.Resume):
        rt.publisher.submit_sweep()
    return text


def _reason(reason: str) -> str:
    """A pause reason as shown in Slack: a person's words, so escaped (never a ping or a
    link) and short enough for any message it appears in."""
    return escape(truncate(reason, 500))


def pause(rt: Runtime, s: Session, user: str, target: str, reason: str) -> str:
    account_id = _target_id(rt, s, target)
    same = (Pause.account_id.is_(None) if account_id is None
            else Pause.account_id == account_id)
    if s.scalars(select(Pause).where(Pause.resumed_at.is_(None), same)).first() is not None:
        return f"{escape(target)} is already paused."
    s.add(Pause(account_id=account_id, reason=reason, paused_by=user))
    audit.record(s, actor=user, action="publishing.paused", subject_kind="account",
                 subject_id=target, details={"reason": reason})
    _refresh_open(s, account_id)
    return (f":octagonal_sign: Publishing paused for {escape(target)}: {_reason(reason)}. "
            "Alerts still arrive; approved drafts wait. "
            f"`/social resume {escape(target)}` releases them.")


def resume(rt: Runtime, s: Session, user: str, target: str) -> str:
    account_id = _target_id(rt, s, target)
    q = update(Pause).where(Pause.resumed_at.is_(None))
    q = q.where(Pause.account_id.is_(None)) if account_id is None else \
        q.where(Pause.account_id == account_id)
    n = s.execute(q.values(resumed_at=now(), resumed_by=user)).rowcount
    if not n:
        return f"{escape(target)} was not paused."
    audit.record(s, actor=user, action="publishing.resumed", subject_kind="account",
                 subject_id=target, details={})
    _refresh_open(s, account_id)
    return (f":arrow_forward: Publishing resumed for {escape(target)}; waiting approved drafts "
            "go out now.")


def _target_id(rt: Runtime, s: Session, target: str) -> int | None:
    if target == "all":
        return None
    return account_ids(rt, s)[target]


def _refresh_open(s: Session, account_id: int | None) -> None:
    q = select(Draft).where(Draft.state.in_(("pending", "approved", "failed", "expired")))
    if account_id is not None:
        q = q.where(Draft.account_id == account_id)
    for d in s.scalars(q):
        refresh_draft(s, d)
