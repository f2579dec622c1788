"""Listeners for the inbox features (issue 20): "Start from a saved reply" in the Draft
reply modal; the alert's Triage menu (correct a priority or sentiment)."""

from __future__ import annotations

from typing import Any

from bot import logs
from bot.db import transaction
from bot.runtime import Runtime
from bot.services import alerts, saved_replies, triage

log = logs.get("commsdesk.inbox")


def register(app: Any, rt: Runtime) -> None:
    @app.action(saved_replies.ACTION_PICK)
    def pick_saved_reply(ack: Any, body: dict[str, Any], client: Any) -> None:
        ack()
        view = body.get("view") or {}
        try:
            action = body["actions"][0]
            # Slack sends the select's selected_option (the emulator a plain value)
            saved_id = int((action.get("selected_option") or {}).get("value")
                           or action["value"])
        except (KeyError, IndexError, TypeError, ValueError):
            return
        updated = saved_replies.picked(rt, view, saved_id)
        if updated is None or not view.get("id"):
            return
        try:
            client.views_update(view_id=view["id"], hash=view.get("hash"), view=updated)
        except Exception as exc:  # a newer change to the modal won; the person picks again
            log.info("saved reply not filled in", error=str(exc))

    @app.action(triage.ACTION_TRIAGE)
    def correct_triage(ack: Any, body: dict[str, Any], respond: Any) -> None:
        ack()
        from handlers.actions import tell, tell_presser

        try:
            action = body["actions"][0]
            value = str((action.get("selected_option") or {}).get("value") or action["value"])
        except (KeyError, IndexError, TypeError):
            return
        choice = triage.parse_choice(value)
        user = str((body.get("user") or {}).get("id") or "")
        if choice is None or not user:
            return
        refused = alerts.authorize(rt, choice.alert_id, user, "triage")  # asks Slack now
        if refused is not None:
            tell_presser(rt, body, respond, f":no_entry: {refused.message}")
            return
        with transaction(rt.sessions) as s:
            ok, message = triage.correct(s, choice, user)
        rt.kick_outbox()
        if not ok:
            tell(rt, body, message)
