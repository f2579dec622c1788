"""Listeners for the inbox features (issue 20): "Start from a saved reply" in the Draft
reply modal."""

from __future__ import annotations

from typing import Any

from commsdesk import logs
from commsdesk.runtime import Runtime
from commsdesk.services import saved_replies

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
