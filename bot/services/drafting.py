"""Drafts from `/social` and the modal: validation, creation, approval messages."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot import logs
from bot.blockkit.approvals import ApprovalView, approval_message
from bot.blockkit.escape import account_link_hosts
from bot.clock import now
from bot.db import reading, transaction
from bot.domain import slash, tracking
from bot.models import Account, Approval, Draft, Mention, OutboxMessage
from bot.runtime import Runtime
from bot.services import approval_steps, audit, draft_states, governance, inbox, saved_replies
from bot.services.accounts import account_ids
from bot.services.alerts import refresh_alerts
from bot.services.approvers import UNCONFIRMED, Unconfirmed
from bot.services.draft_surfaces import refresh_draft
from bot.services.groups import campaign_of
from bot.services.mentions import find_mention
from bot.services.outbox import SlackCall, enqueue
from integrations import registry

log = logs.get("commsdesk.drafting")


@dataclass(frozen=True)
class DraftRequest:
    """A checked request for a draft, ready to store."""

    account: str
    text: str
    kind: str  # reply|post
    mention_id: int | None = None
    scheduled_for: datetime | None = None


class DraftRefused(Exception):
    """The person may not draft this (out of their scope); audited, nothing stored."""

    def __init__(self, reason: str, request: DraftRequest):
        super().__init__(reason)
        self.reason = reason
        self.request = request


def check_permission(rt: Runtime, s: Session, user: str, req: DraftRequest) -> None:
    reason = governance.drafting_refusal(rt, s, user, req.account, req.mention_id)
    if reason is not None:
        raise DraftRefused(reason, req)


def record_refusal(rt: Runtime, user: str, refused: DraftRefused, via: str) -> None:
    with transaction(rt.sessions) as s:
        audit.record(s, actor=user, action="draft.refused", subject_kind="account",
                     subject_id=refused.request.account, details={
                         "reason": refused.reason, "via": via,
                         "mention_id": refused.request.mention_id,
                         "text": refused.request.text})


def _length_rule(network: str) -> str:
    """How the network counts (its spec's `length_rule`), e.g. " (links count 23)"."""
    spec = registry.spec(network)
    return spec.length_rule if spec else ""


def check_length(rt: Runtime, account: str, text: str, usage: str | None = None) -> int:
    network = rt.network(account)
    length = network.weighted_length(text)
    if length > network.max_length:
        raise slash.SlashError(
            f"That text is {length} characters as {network.network.upper()} counts them"
            f"{_length_rule(network.network)}; the limit is {network.max_length}. "
            f"Shorten it by {length - network.max_length}.", usage)
    return length


def check_command(rt: Runtime, s: Session, cmd: slash.Reply | slash.Post | slash.Schedule,
                  campaign: str | None = None) -> DraftRequest:
    """Validate a parsed command against the config and database. Raises SlashError.
    Links to the council's own domains come back tagged (`domain/tracking.py`), checked
    for length as the network counts them."""
    req = _check_command(rt, s, cmd)
    domains = rt.settings.config.links.tracked_domains
    tagged = tracking.tag(req.text, rt.network(req.account).network, campaign, domains)
    if tagged == req.text:
        return req
    check_length(rt, req.account, tagged)
    return replace(req, text=tagged)


def _check_command(rt: Runtime, s: Session, cmd: slash.Reply | slash.Post | slash.Schedule
                   ) -> DraftRequest:
    config = rt.settings.config
    if isinstance(cmd, slash.Reply):
        mention = find_mention(s, cmd.ref)
        if mention is None:
            shown = f"M{cmd.ref.mention_id}" if cmd.ref.mention_id else "That post"
            raise slash.SlashError(
                f"{shown} is not a mention commsdesk has received. Use the ref shown on the "
                "alert, or the link of a post that mentioned one of our accounts.",
                slash.USAGE["reply"])
        if mention.state == "closed":
            raise slash.SlashError(f"{mention.ref} was marked “no reply needed”; reopen it on "
                                   "its alert first.")
        account = s.get_one(Account, mention.account_id)
        check_length(rt, account.name, cmd.text, slash.USAGE["reply"])
        return DraftRequest(account.name, cmd.text, "reply", mention.id)
    if config.account(cmd.account) is None:
        known = ", ".join(a.name for a in config.accounts) or "none configured"
        raise slash.SlashError(f"There is no account called `{cmd.account}`. "
                               f"Accounts: {known}.",
                               slash.USAGE["schedule" if isinstance(cmd, slash.Schedule)
                                           else "post"])
    if isinstance(cmd, slash.Schedule):
        when = cmd.when.replace(tzinfo=config.tz)
        if when <= now():
            raise slash.SlashError(
                f"{cmd.when:%Y-%m-%d %H:%M} ({config.timezone}) is in the past; "
                "pick a time in the future.", slash.USAGE["schedule"])
        check_length(rt, cmd.account, cmd.text, slash.USAGE["schedule"])
        return DraftRequest(cmd.account, cmd.text, "post", None, when.astimezone(now().tzinfo))
    check_length(rt, cmd.account, cmd.text, slash.USAGE["post"])
    return DraftRequest(cmd.account, cmd.text, "post")


def create_draft(rt: Runtime, s: Session, req: DraftRequest, author: str, *, via: str,
                 reply_to: tuple[str, str] | None = None) -> Draft:
    """Store the draft and queue its approval message (and, later, a link for the author)."""
    accounts = account_ids(rt, s)
    approvals = rt.settings.config.slack.approvals_channel
    draft = draft_states.create(s, account_id=accounts[req.account], author=author, text=req.text,
                          kind=req.kind, mention_id=req.mention_id,
                          scheduled_for=req.scheduled_for, approval_channel=approvals, via=via)
    payload = {"notify_channel": reply_to[0], "notify_user": reply_to[1]} if reply_to else {}
    enqueue(s, approvals, "post_approval", draft_id=draft.id, payload=payload)
    if req.mention_id is not None:
        refresh_alerts(s, req.mention_id)
    return draft


@dataclass(frozen=True)
class Submitted:
    """What became of a draft someone submitted: stored (its ref), a mistake in what they
    wrote (`error`, nothing stored) or a refusal (out of their scope: audited, nothing
    stored)."""

    ref: str | None = None
    scheduled_for: datetime | None = None
    error: slash.SlashError | None = None
    refusal: str | None = None


def submit(rt: Runtime, user: str, cmd: slash.Reply | slash.Post | slash.Schedule, *,
           via: str, reply_to: tuple[str, str] | None = None,
           modal_meta: dict[str, Any] | None = None) -> Submitted:
    """Check, permit, create (or refuse) one draft: the one sequence behind `/social`,
    the Draft reply modal and the App Home's New post. `reply_to`: where to tell the
    author the approval message's link; `modal_meta`: the Draft reply modal's metadata
    (the saved reply it started from)."""
    try:
        with transaction(rt.sessions) as s:
            use = None
            if isinstance(cmd, slash.Reply):  # `saved:<name>`: its text, filled in
                cmd, use = saved_replies.expand(s, cmd)
            if modal_meta is not None:
                use = saved_replies.use_from_modal(s, modal_meta)
            req = check_command(rt, s, cmd)
            check_permission(rt, s, user, req)
            draft = create_draft(rt, s, req, user, via=via, reply_to=reply_to)
            saved_replies.record_use(s, draft, use, user, via=via)
            ref = draft.ref
    except slash.SlashError as err:
        return Submitted(error=err)
    except DraftRefused as refused:
        record_refusal(rt, user, refused, via=via)
        return Submitted(refusal=refused.reason)
    rt.kick_outbox()
    log.info("draft created", draft=ref, via=via)
    return Submitted(ref=ref, scheduled_for=req.scheduled_for)


EDIT_NOT_ALLOWED = "Only the author or a comms approver can edit this."


def edit(rt: Runtime, user: str, draft_id: int, text: str) -> str | None:
    """A new version of the draft with this text (council links tagged, length checked):
    None when saved, else why not. The author may always edit; anyone else only as an
    approver, asked of Slack now."""
    with reading(rt.sessions) as s:
        author = s.scalar(select(Draft.author).where(Draft.id == draft_id))
    try:
        is_approver = user != author and rt.approvers.is_approver_live(user)
    except Unconfirmed:
        return UNCONFIRMED
    try:
        with transaction(rt.sessions) as s:
            draft = s.get(Draft, draft_id)
            if draft is None or (user != draft.author and not is_approver):
                return EDIT_NOT_ALLOWED
            account = s.get_one(Account, draft.account_id)
            text = tracking.tag(text, account.network, campaign_of(s, draft_id),
                                rt.settings.config.links.tracked_domains)  # issue 21
            check_length(rt, account.name, text)
            decision = draft_states.edit(s, draft_id, user, text)
            if decision.ok:
                refresh_draft(s, s.get_one(Draft, draft_id))
    except slash.SlashError as err:
        return err.message
    if not decision.ok:
        return decision.message
    rt.kick_outbox()
    return None


def approval_view(rt: Runtime, s: Session, draft: Draft) -> ApprovalView:
    account = s.get_one(Account, draft.account_id)
    mention = s.get(Mention, draft.mention_id) if draft.mention_id else None
    network = rt.network(account.name)
    slack_cfg = rt.settings.config.slack
    acc_cfg = rt.settings.config.account(account.name)
    approvals = list(s.scalars(select(Approval.user_id).where(
        Approval.draft_id == draft.id, Approval.draft_version == draft.version,
        Approval.decision == "approve").order_by(Approval.id)))
    required = acc_cfg.required_approvals if acc_cfg else 1
    if acc_cfg and any(p.rule == "second_approval" for p in governance.periods(rt, acc_cfg)):
        required = max(required, 2)
    open_states = ("pending", "approved", "failed", "expired")
    return ApprovalView(
        draft, account, mention, network.weighted_length(draft.text), network.max_length,
        slack_cfg.approve_reaction, slack_cfg.reject_reaction,
        banners=[*(governance.banners(rt, s, draft) if draft.state in open_states else []),
                 *inbox.card_lines(rt, s, draft),
                 *approval_steps.card_lines(rt, s, draft)],
        findings=governance.findings(rt, s, draft) if draft.state in open_states else [],
        approvals=approvals, required=required,
        hold=governance.hold_reason(rt, s, draft) if draft.state == "approved" else None,
        images=[(i.filename, i.alt_text) for i in draft_states.images(s, draft.id)],
        link_hosts=account_link_hosts(account.network, acc_cfg))


def render_post_approval(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
    draft = s.get_one(Draft, row.draft_id)
    if draft.approval_ts is not None:
        return None
    text, blocks = approval_message(approval_view(rt, s, draft), rt.settings.config.tz)
    draft_id, payload = draft.id, dict(row.payload)

    def on_sent(s2: Session, data: dict[str, Any]) -> None:
        s2.execute(update(Draft).where(Draft.id == draft_id).values(approval_ts=data.get("ts")))
        if payload.get("notify_channel"):
            enqueue(s2, payload["notify_channel"], "ephemeral", draft_id=draft_id, payload={
                "user": payload["notify_user"], "approval_ts": data.get("ts"),
                "approval_channel": row.channel})

    return SlackCall("chat_postMessage", {"channel": row.channel, "text": text, "blocks": blocks,
                                          "unfurl_links": False}, on_sent)


def render_update_approval(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
    draft = s.get_one(Draft, row.draft_id)
    if draft.approval_ts is None:
        return None
    text, blocks = approval_message(approval_view(rt, s, draft), rt.settings.config.tz)
    return SlackCall("chat_update", {"channel": draft.approval_channel, "ts": draft.approval_ts,
                                     "text": text, "blocks": blocks})


def render_ephemeral(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
    p = row.payload
    text = p.get("text")
    if text is None and row.draft_id is not None:
        draft = s.get_one(Draft, row.draft_id)
        link = rt.slack.chat_getPermalink(channel=p["approval_channel"],
                                          message_ts=p["approval_ts"]).get("permalink")
        text = (f"Your draft {draft.ref} is waiting for approval by the comms team: "
                f"<{link}|see it in the approvals channel>.")
    args = {"channel": row.channel, "user": p["user"], "text": text}
    if p.get("thread_ts"):
        args["thread_ts"] = p["thread_ts"]
    return SlackCall("chat_postEphemeral", args)
