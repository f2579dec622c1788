"""Events API listeners: emoji reactions on approval messages, images in their threads."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot import logs
from bot.db import transaction
from bot.models import SlackEvent
from bot.runtime import Runtime
from bot.services.decisions import decide, find_by_message

log = logs.get("commsdesk.events")


def first_delivery(rt: Runtime, event_id: str | None) -> bool:
    """False when Slack is retrying an event we already handled."""
    if not event_id:
        return True
    try:
        with transaction(rt.sessions) as s:
            s.add(SlackEvent(event_id=event_id))
        return True
    except IntegrityError:
        return False


def register(app: Any, rt: Runtime) -> None:
    cfg = rt.settings.config.slack

    @app.event("reaction_added")
    def on_reaction_added(event: dict[str, Any], body: dict[str, Any], client: Any) -> None:
        reaction = event.get("reaction")
        kind = {cfg.approve_reaction: "approve", cfg.reject_reaction: "reject"}.get(
            reaction or "")
        item = event.get("item") or {}
        user = event.get("user")
        if kind is None or item.get("type") != "message" or not user:
            return
        # only the approvals channel counts: a reaction elsewhere cannot approve
        if item.get("channel") != cfg.approvals_channel:
            return
        draft_id = find_by_message(rt, item["channel"], str(item.get("ts")))
        for _ in range(10):  # the message's ts is stored a moment after Slack has it
            if draft_id is not None:
                break
            time.sleep(0.3)
            draft_id = find_by_message(rt, item["channel"], str(item.get("ts")))
        if draft_id is None or not first_delivery(rt, body.get("event_id")):
            return
        decision = decide(rt, draft_id, user, kind, via="reaction")  # type: ignore[arg-type]
        if not decision.ok:
            try:
                client.chat_postEphemeral(channel=cfg.approvals_channel, user=user,
                                          text=decision.message)
            except Exception as exc:
                log.warning("could not tell the user", error=str(exc))

    @app.event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        """Images (and `alt: ...`) shared in the thread of a draft's approval message."""
        from bot.services import images

        if images.thread_of(rt, event) is None or not first_delivery(rt, body.get("event_id")):
            return
        images.on_thread_message(rt, event)

    @app.event("reaction_removed")
    def on_reaction_removed() -> None:
        # removing an emoji does not undo a decision: decisions are final and audited
        return None

    @app.event("app_home_opened")
    def on_app_home_opened(event: dict[str, Any]) -> None:
        """Each person's dashboard (services/home.py), published when they open the tab."""
        from bot.services.home import publish_home

        if event.get("tab", "home") == "home" and event.get("user"):
            publish_home(rt, str(event["user"]), opened=True)
