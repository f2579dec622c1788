"""Drafts from `/social` and the modal: validation, creation, approval messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.blockkit.approvals import ApprovalView, approval_message
from bot.blockkit.escape import link_hosts
from bot.clock import now
from bot.domain import slash
from bot.models import Account, Approval, Draft, Mention, OutboxMessage
from bot.runtime import Runtime
from bot.services import draft_states as drafts
from bot.services.accounts import account_ids
from bot.services.alerts import refresh_alerts
from bot.services.outbox import SlackCall, enqueue, renderer


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
    from bot.services import governance

    reason = governance.drafting_refusal(rt, s, user, req.account, req.mention_id)
    if reason is not None:
        raise DraftRefused(reason, req)


def record_refusal(rt: Runtime, user: str, refused: DraftRefused, via: str) -> None:
    from bot.db import transaction
    from bot.services import audit

    with transaction(rt.sessions) as s:
        audit.record(s, actor=user, action="draft.refused", subject_kind="account",
                     subject_id=refused.request.account, details={
                         "reason": refused.reason, "via": via,
                         "mention_id": refused.request.mention_id,
                         "text": refused.request.text})


def find_mention(s: Session, ref: slash.MentionRef) -> Mention | None:
    if ref.mention_id is not None:
        return s.get(Mention, ref.mention_id)
    if ref.url is not None:
        return s.scalars(select(Mention).where(Mention.network == ref.network,
                                               Mention.url == ref.url)).first()
    return s.scalars(select(Mention).where(Mention.network == ref.network,
                                           Mention.external_id == ref.external_id)).first()


_LENGTH_RULES = {"x": " (links count 23, emoji and some scripts 2)",
                 "mastodon": " (links count 23)",
                 "bluesky": " (in graphemes: an emoji counts 1)"}


def check_length(rt: Runtime, account: str, text: str, usage: str | None = None) -> int:
    network = rt.network(account)
    length = network.weighted_length(text)
    if length > network.max_length:
        raise slash.SlashError(
            f"That text is {length} characters as {network.network.upper()} counts them"
            f"{_LENGTH_RULES.get(network.network, '')}; the limit is {network.max_length}. "
            f"Shorten it by {length - network.max_length}.", usage)
    return length


def check_command(rt: Runtime, s: Session, cmd: slash.Reply | slash.Post | slash.Schedule,
                  campaign: str | None = None) -> DraftRequest:
    """Validate a parsed command against the config and database. Raises SlashError.
    Links to the council's own domains come back tagged (`domain/tracking.py`), checked
    for length as the network counts them."""
    req = _check_command(rt, s, cmd)
    from dataclasses import replace

    from bot.domain import tracking

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
    draft = drafts.create(s, account_id=accounts[req.account], author=author, text=req.text,
                          kind=req.kind, mention_id=req.mention_id,
                          scheduled_for=req.scheduled_for, approval_channel=approvals, via=via)
    payload = {"notify_channel": reply_to[0], "notify_user": reply_to[1]} if reply_to else {}
    enqueue(s, approvals, "post_approval", draft_id=draft.id, payload=payload)
    if req.mention_id is not None:
        refresh_alerts(s, req.mention_id)
    return draft


def post_link(rt: Runtime, s: Session, draft: Draft, url: str | None) -> str:
    """mrkdwn for the link of a published post: a link only to the network's own hosts."""
    from bot.blockkit.escape import safe_link

    account = s.get_one(Account, draft.account_id)
    acc_cfg = rt.settings.config.account(account.name)
    return safe_link(url, url or "the post",
                     link_hosts(account.network, getattr(acc_cfg, "base_url", None)))


def refresh_draft(s: Session, draft: Draft) -> None:
    """Queue updates of everything that shows this draft."""
    from bot.services import plans

    if plans.refresh_group_of(s, draft):  # shown on a batch's or campaign's one card
        pass
    elif draft.approval_channel:
        enqueue(s, draft.approval_channel, "update_approval", draft_id=draft.id)
    if draft.mention_id is not None:
        refresh_alerts(s, draft.mention_id)


def approval_view(rt: Runtime, s: Session, draft: Draft) -> ApprovalView:
    from bot.services import approval_steps, governance, inbox

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
        images=[(i.filename, i.alt_text) for i in drafts.images(s, draft.id)],
        link_hosts=link_hosts(account.network, getattr(acc_cfg, "base_url", None)))


@renderer("post_approval")
def _render_post_approval(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
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


@renderer("update_approval")
def _render_update_approval(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
    draft = s.get_one(Draft, row.draft_id)
    if draft.approval_ts is None:
        return None
    text, blocks = approval_message(approval_view(rt, s, draft), rt.settings.config.tz)
    return SlackCall("chat_update", {"channel": draft.approval_channel, "ts": draft.approval_ts,
                                     "text": text, "blocks": blocks})


@renderer("ephemeral")
def _render_ephemeral(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
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
