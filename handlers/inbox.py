"""Listeners for the inbox features (issue 20): "Start from a saved reply" in the Draft
reply modal; the alert's Triage menu (correct a priority or sentiment)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import logs
from bot.blockkit import triage as triage_blocks
from bot.domain import triage as triage_rules
from bot.services import alert_actions, saved_replies
from handlers.common import selected, tell, tell_presser, user_of
from handlers.context import runtime

log = logs.get("commsdesk.inbox")


def pick_saved_reply(ack: Ack, body: dict[str, Any], client: WebClient,
                     context: BoltContext) -> None:
    ack()
    view = body.get("view") or {}
    try:
        saved_id = int(selected(body) or "")
    except ValueError:
        return
    updated = saved_replies.picked(runtime(context), view, saved_id)
    if updated is None or not view.get("id"):
        return
    try:
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=updated)
    except Exception as exc:  # a newer change to the modal won; the person picks again
        log.info("saved reply not filled in", error=str(exc))


def correct_triage(ack: Ack, body: dict[str, Any], respond: Respond,
                   context: BoltContext) -> None:
    ack()
    rt = runtime(context)
    value = selected(body)
    choice = triage_rules.parse_choice(value) if value is not None else None
    user = user_of(body)
    if choice is None or not user:
        return
    pressed = alert_actions.correct_triage(rt, choice, user)  # asks Slack now
    if pressed.refused is not None:
        tell_presser(rt, body, respond, pressed.refused)
    elif pressed.problem is not None:
        tell(rt, body, pressed.problem)


def register(app: App) -> None:
    app.action(saved_replies.ACTION_PICK)(pick_saved_reply)
    app.action(triage_blocks.ACTION_TRIAGE)(correct_triage)
