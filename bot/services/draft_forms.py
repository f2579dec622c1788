"""The draft modals' content: the Draft reply form (from an alert), the Edit form (from
an approval message) and the live character count as someone types."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.blockkit.escape import (
    account_link_hosts,
    escape,
    outside_text_sections,
    safe_link,
    truncate,
)
from bot.blockkit.labels import account_label
from bot.blockkit.modals import (
    DRAFT_EDIT_CALLBACK,
    DRAFT_REPLY_CALLBACK,
    draft_modal,
    with_count,
)
from bot.db import reading
from bot.models import Account, Alert, Draft, Mention
from bot.runtime import Runtime
from bot.services import saved_replies
from bot.services.approvers import UNCONFIRMED, Unconfirmed


@dataclass(frozen=True)
class Form:
    """The modal to open, or why it is not opened (to tell the person)."""

    view: dict[str, Any] | None = None
    refusal: str | None = None


def _quote(rt: Runtime, mention: Mention, account: Account) -> list[dict[str, Any]]:
    who = escape(f"@{truncate(mention.author_handle, 100)}" if mention.author_handle
                 else "someone")
    hosts = account_link_hosts(account.network, rt.settings.config.account(account.name))
    return [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{mention.ref} from {who}"
                                          + (f" · {safe_link(mention.url, 'view post', hosts)}"
                                             if mention.url else "")}]},
        *outside_text_sections(truncate(mention.text, 2000), max_blocks=3),
    ]


def reply_form(rt: Runtime, alert_id: int) -> dict[str, Any] | None:
    """The Draft reply modal for the mention behind this alert (None: no such alert),
    with "Start from a saved reply" (services/saved_replies)."""
    with reading(rt.sessions) as s:
        alert = s.get(Alert, alert_id)
        if alert is None:
            return None
        mention = s.get_one(Mention, alert.mention_id)
        account = s.get_one(Account, mention.account_id)
        quoted = _quote(rt, mention, account)
        meta = json.dumps({"mention_id": mention.id, "channel": alert.channel})
        label = f"Replying as *{escape(account_label(account.handle, account.network))}*"
        name = account.name
    network = rt.network(name)
    view = draft_modal(
        callback_id=DRAFT_REPLY_CALLBACK, title="Draft a reply", submit="Send for approval",
        metadata=meta, account_label=label, quoted=quoted, initial_text="", length=0,
        limit=network.max_length)
    with reading(rt.sessions) as s:
        return saved_replies.offer_in_modal(s, view, alert_id)


def edit_form(rt: Runtime, user: str, draft_id: int) -> Form:
    """The Edit modal, for the draft's author or a comms approver (asked of Slack now)."""
    with reading(rt.sessions) as s:
        draft = s.get(Draft, draft_id)
        if draft is None:
            return Form()
        account = s.get_one(Account, draft.account_id)
        mention = s.get(Mention, draft.mention_id) if draft.mention_id else None
        quoted = _quote(rt, mention, account) if mention else []
        text, author, name = draft.text, draft.author, account.name
        shown_as = account_label(account.handle, account.network)
        ref = draft.ref
    if user != author:
        try:
            approver = rt.approvers.is_approver_live(user)
        except Unconfirmed:
            return Form(refusal=f"{UNCONFIRMED} {ref} was not opened for editing.")
        if not approver:
            return Form(refusal=f"Only the author of {ref} or a comms approver can edit it.")
    network = rt.network(name)
    return Form(view=draft_modal(
        callback_id=DRAFT_EDIT_CALLBACK, title=f"Edit draft {ref}", submit="Save",
        metadata=json.dumps({"draft_id": draft_id}),
        account_label=f"Posting as *{escape(shown_as)}*", quoted=quoted,
        initial_text=text, length=network.weighted_length(text),
        limit=network.max_length))


def counted(rt: Runtime, view: dict[str, Any], meta: dict[str, Any],
            text: str) -> dict[str, Any] | None:
    """The modal with its character count for `text`, as the draft's network counts it
    (None: the draft or mention it is for is gone)."""
    with reading(rt.sessions) as s:
        if "draft_id" in meta:
            draft = s.get(Draft, int(meta["draft_id"]))
            account_id = draft.account_id if draft else None
        else:
            mention = s.get(Mention, int(meta.get("mention_id", 0)))
            account_id = mention.account_id if mention else None
        account = s.get(Account, account_id) if account_id else None
        name = account.name if account else None
    if name is None:
        return None
    network = rt.network(name)
    return with_count(view, network.weighted_length(text), network.max_length)
