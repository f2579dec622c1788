"""Block Kit button listeners: alert buttons and approval-message buttons."""

from __future__ import annotations

import json
import re
from typing import Any

from bot import logs
from bot.blockkit import alerts as alert_blocks
from bot.blockkit import approvals as approval_blocks
from bot.blockkit.escape import escape, link_hosts, outside_text_sections, safe_link, truncate
from bot.blockkit.labels import account_label
from bot.blockkit.modals import (
    DRAFT_EDIT_CALLBACK,
    DRAFT_REPLY_CALLBACK,
    DRAFT_TEXT_ACTION,
    draft_modal,
    reroute_modal,
    with_count,
)
from bot.db import reading, transaction
from bot.models import Account, Alert, Draft, Mention
from bot.runtime import Runtime
from bot.services import alerts, saved_replies
from bot.services.approvers import UNCONFIRMED, Unconfirmed
from bot.services.decisions import decide

log = logs.get("commsdesk.actions")


def _value_id(body: dict[str, Any]) -> int | None:
    try:
        return int(str(body["actions"][0]["value"]).split(":", 1)[0])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _value_version(body: dict[str, Any]) -> int | None:
    """The draft version an Approve/Reject button was shown with (`<id>:v<version>`)."""
    try:
        _, _, version = str(body["actions"][0]["value"]).partition(":v")
        return int(version) if version else None
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _user(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or "")


def tell(rt: Runtime, body: dict[str, Any], text: str) -> None:
    """An ephemeral note to the person who pressed the button."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id")
    user = _user(body)
    if channel and user:
        try:
            rt.slack.chat_postEphemeral(channel=channel, user=user, text=text)
        except Exception as exc:  # telling is best effort; the action itself is done
            log.warning("ephemeral not sent", error=str(exc))


def _quote(rt: Runtime, mention: Mention, account: Account) -> list[dict[str, Any]]:
    who = escape(f"@{truncate(mention.author_handle, 100)}" if mention.author_handle
                 else "someone")
    hosts = link_hosts(account.network,
                       getattr(rt.settings.config.account(account.name), "base_url", None))
    return [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{mention.ref} from {who}"
                                          + (f" · {safe_link(mention.url, 'view post', hosts)}"
                                             if mention.url else "")}]},
        *outside_text_sections(truncate(mention.text, 2000), max_blocks=3),
    ]


def tell_presser(rt: Runtime, body: dict[str, Any], respond: Any, text: str) -> None:
    """An ephemeral note to whoever pressed the button, even someone who is not a member
    of the channel (chat.postEphemeral would refuse them): through the response_url."""
    try:
        respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:
        log.warning("refusal not sent by response_url", error=str(exc))
        tell(rt, body, text)


def decision_button(app: Any, rt: Runtime, action_id: str, kind: str) -> None:
    """A button that approves, rejects or retries the draft (and version) it carries,
    decided by `services/decisions.decide` as a reaction would be."""

    @app.action(action_id)
    def handler(ack: Any, body: dict[str, Any]) -> None:
        ack()
        draft_id, user = _value_id(body), _user(body)
        if draft_id is None or not user:
            return
        decision = decide(rt, draft_id, user, kind, via="button",  # type: ignore[arg-type]
                          version=_value_version(body))
        if not decision.ok:
            tell(rt, body, decision.message)


def register(app: Any, rt: Runtime) -> None:
    def alert_button(action_id: str, name: str, fn: Any) -> None:
        @app.action(action_id)
        def handler(ack: Any, body: dict[str, Any], respond: Any) -> None:
            ack()
            alert_id, user = _value_id(body), _user(body)
            if alert_id is None or not user:
                return
            refused = alerts.authorize(rt, alert_id, user, name)  # asks Slack now
            if refused is not None:
                tell_presser(rt, body, respond, f":no_entry: {refused.message}")
                return
            with transaction(rt.sessions) as s:
                outcome = fn(s, alert_id, user)
            rt.kick_outbox()
            if not outcome.ok:
                tell(rt, body, outcome.message)

    alert_button(alert_blocks.ACTION_CLAIM, "claim", alerts.claim)
    alert_button(alert_blocks.ACTION_CLOSE, "close", alerts.close)
    alert_button(alert_blocks.ACTION_REOPEN, "reopen", alerts.reopen)

    @app.action(alert_blocks.ACTION_REROUTE)
    def reroute(ack: Any, body: dict[str, Any], client: Any, respond: Any) -> None:
        ack()
        alert_id, user = _value_id(body), _user(body)
        if alert_id is None or not user:
            return
        # checked here to spare a pointless form, and again when it is submitted
        refused = alerts.authorize(rt, alert_id, user, "reroute")
        if refused is not None:
            tell_presser(rt, body, respond, f":no_entry: {refused.message}")
            return
        client.views_open(trigger_id=body["trigger_id"],
                          view=reroute_modal(alert_id, rt.settings.config))

    @app.action(alert_blocks.ACTION_DRAFT)
    def draft_reply(ack: Any, body: dict[str, Any], client: Any) -> None:
        ack()
        alert_id = _value_id(body)
        if alert_id is None:
            return
        with reading(rt.sessions) as s:
            alert = s.get(Alert, alert_id)
            if alert is None:
                return
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
        with reading(rt.sessions) as s:  # "Start from a saved reply" (services/saved_replies)
            view = saved_replies.offer_in_modal(s, view, alert_id)
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(approval_blocks.ACTION_EDIT)
    def edit(ack: Any, body: dict[str, Any], client: Any) -> None:
        ack()
        draft_id, user = _value_id(body), _user(body)
        if draft_id is None:
            return
        with reading(rt.sessions) as s:
            draft = s.get(Draft, draft_id)
            if draft is None:
                return
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
                tell(rt, body, f"{UNCONFIRMED} {ref} was not opened for editing.")
                return
            if not approver:
                tell(rt, body, f"Only the author of {ref} or a comms approver can edit it.")
                return
        network = rt.network(name)
        client.views_open(trigger_id=body["trigger_id"], view=draft_modal(
            callback_id=DRAFT_EDIT_CALLBACK, title=f"Edit draft {ref}", submit="Save",
            metadata=json.dumps({"draft_id": draft_id}),
            account_label=f"Posting as *{escape(shown_as)}*", quoted=quoted,
            initial_text=text, length=network.weighted_length(text),
            limit=network.max_length))

    decision_button(app, rt, approval_blocks.ACTION_APPROVE, "approve")
    decision_button(app, rt, approval_blocks.ACTION_REJECT, "reject")
    decision_button(app, rt, approval_blocks.ACTION_RETRY, "retry")

    @app.action(re.compile(f"^{DRAFT_TEXT_ACTION}(~.*)?$"))  # ~<id>: a saved reply's text
    def live_count(ack: Any, body: dict[str, Any], client: Any) -> None:
        """Keep the modal's character count current as the person types."""
        ack()
        view = body.get("view") or {}
        try:
            text = body["actions"][0].get("value") or ""
            meta = json.loads(view.get("private_metadata") or "{}")
        except (KeyError, IndexError, ValueError):
            return
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
            return
        network = rt.network(name)
        try:
            client.views_update(view_id=view["id"], hash=view.get("hash"),
                                view=with_count(view, network.weighted_length(text),
                                                network.max_length))
        except Exception as exc:  # a stale hash just means a newer keystroke won
            log.debug("count not updated", error=str(exc))

    # App Home buttons (services/home.py)
    from bot.blockkit import home as home_blocks
    from bot.services import home

    @app.action(home_blocks.ACTION_NEW_POST)
    def home_new_post(ack: Any, body: dict[str, Any], client: Any) -> None:
        ack()
        home.open_post_modal(rt, client, body, schedule=False)

    @app.action(home_blocks.ACTION_SCHEDULE)
    def home_schedule(ack: Any, body: dict[str, Any], client: Any) -> None:
        ack()
        home.open_post_modal(rt, client, body, schedule=True)

    @app.action(home_blocks.ACTION_REFRESH)
    def home_refresh(ack: Any, body: dict[str, Any]) -> None:
        ack()
        if _user(body):
            home.publish_home(rt, _user(body))

    @app.action(home_blocks.ACTION_JUMP)
    def home_jump(ack: Any) -> None:
        ack()  # a link button: Slack opens the message itself
