"""Block Kit button listeners: alert buttons, approval-message buttons, App Home buttons."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import logs
from bot.blockkit import alerts as alert_blocks
from bot.blockkit import approvals as approval_blocks
from bot.blockkit import home as home_blocks
from bot.blockkit.modals import DRAFT_TEXT_ACTION, reroute_modal
from bot.services import alert_actions, alerts, draft_forms, home
from bot.services.decisions import Kind, decide
from handlers.common import tell, tell_presser, user_of, value_id, value_version
from handlers.context import runtime

log = logs.get("commsdesk.actions")


# ---------------------------------------------------------------- alert buttons


def _alert_button(name: str, body: dict[str, Any], respond: Respond,
                  context: BoltContext) -> None:
    rt = runtime(context)
    alert_id, user = value_id(body), user_of(body)
    if alert_id is None or not user:
        return
    pressed = alert_actions.press(rt, alert_id, user, name)  # asks Slack now
    if pressed.refused is not None:
        tell_presser(rt, body, respond, pressed.refused)
    elif pressed.problem is not None:
        tell(rt, body, pressed.problem)


def claim(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
    ack()
    _alert_button("claim", body, respond, context)


def close(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
    ack()
    _alert_button("close", body, respond, context)


def reopen(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
    ack()
    _alert_button("reopen", body, respond, context)


def reroute(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond,
            context: BoltContext) -> None:
    ack()
    rt = runtime(context)
    alert_id, user = value_id(body), user_of(body)
    if alert_id is None or not user:
        return
    # checked here to spare a pointless form, and again when it is submitted
    refused = alerts.authorize(rt, alert_id, user, "reroute")
    if refused is not None:
        tell_presser(rt, body, respond, f":no_entry: {refused.message}")
        return
    client.views_open(trigger_id=body["trigger_id"],
                      view=reroute_modal(alert_id, rt.settings.config))


def draft_reply(ack: Ack, body: dict[str, Any], client: WebClient,
                context: BoltContext) -> None:
    ack()
    alert_id = value_id(body)
    if alert_id is None:
        return
    view = draft_forms.reply_form(runtime(context), alert_id)
    if view is not None:
        client.views_open(trigger_id=body["trigger_id"], view=view)


# ---------------------------------------------------------------- approval buttons


def edit(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    rt = runtime(context)
    draft_id = value_id(body)
    if draft_id is None:
        return
    form = draft_forms.edit_form(rt, user_of(body), draft_id)
    if form.refusal is not None:
        tell(rt, body, form.refusal)
    elif form.view is not None:
        client.views_open(trigger_id=body["trigger_id"], view=form.view)


def _decision_button(kind: Kind, body: dict[str, Any], context: BoltContext) -> None:
    """Approve, reject or retry the draft (and version) the button carries, decided by
    `services/decisions.decide` as a reaction would be."""
    rt = runtime(context)
    draft_id, user = value_id(body), user_of(body)
    if draft_id is None or not user:
        return
    decision = decide(rt, draft_id, user, kind, via="button", version=value_version(body))
    if not decision.ok:
        tell(rt, body, decision.message)


def approve(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    ack()
    _decision_button("approve", body, context)


def reject(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    ack()
    _decision_button("reject", body, context)


def retry(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    ack()
    _decision_button("retry", body, context)


def live_count(ack: Ack, body: dict[str, Any], client: WebClient,
               context: BoltContext) -> None:
    """Keep the modal's character count current as the person types."""
    ack()
    view = body.get("view") or {}
    try:
        text = body["actions"][0].get("value") or ""
        meta = json.loads(view.get("private_metadata") or "{}")
    except (KeyError, IndexError, ValueError):
        return
    updated = draft_forms.counted(runtime(context), view, meta, text)
    if updated is None:
        return
    try:
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=updated)
    except Exception as exc:  # a stale hash just means a newer keystroke won
        log.debug("count not updated", error=str(exc))


# ---------------------------------------------------------------- App Home buttons


def home_new_post(ack: Ack, body: dict[str, Any], client: WebClient,
                  context: BoltContext) -> None:
    ack()
    home.open_post_modal(runtime(context), client, body, schedule=False)


def home_schedule(ack: Ack, body: dict[str, Any], client: WebClient,
                  context: BoltContext) -> None:
    ack()
    home.open_post_modal(runtime(context), client, body, schedule=True)


def home_refresh(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    ack()
    if user_of(body):
        home.publish_home(runtime(context), user_of(body))


def home_jump(ack: Ack) -> None:
    ack()  # a link button: Slack opens the message itself


def register(app: App) -> None:
    for action_id, listener in [
        (alert_blocks.ACTION_CLAIM, claim), (alert_blocks.ACTION_CLOSE, close),
        (alert_blocks.ACTION_REOPEN, reopen), (alert_blocks.ACTION_REROUTE, reroute),
        (alert_blocks.ACTION_DRAFT, draft_reply), (approval_blocks.ACTION_EDIT, edit),
        (approval_blocks.ACTION_APPROVE, approve), (approval_blocks.ACTION_REJECT, reject),
        (approval_blocks.ACTION_RETRY, retry),
        (home_blocks.ACTION_NEW_POST, home_new_post),
        (home_blocks.ACTION_SCHEDULE, home_schedule),
        (home_blocks.ACTION_REFRESH, home_refresh), (home_blocks.ACTION_JUMP, home_jump),
    ]:
        app.action(action_id)(listener)
    app.action(re.compile(f"^{DRAFT_TEXT_ACTION}(~.*)?$"))(live_count)  # ~<id>: saved reply
