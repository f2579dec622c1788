"""Events API listeners: emoji reactions on approval messages, images in their threads,
the App Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot import logs
from bot.services import home, images
from bot.services.decisions import decide_reaction
from bot.services.slack_events import first_delivery
from handlers.context import runtime

log = logs.get("commsdesk.events")


def on_reaction_added(event: dict[str, Any], body: dict[str, Any], client: WebClient,
                      context: BoltContext) -> None:
    rt = runtime(context)
    cfg = rt.settings.config.slack
    kind = {cfg.approve_reaction: "approve", cfg.reject_reaction: "reject"}.get(
        event.get("reaction") or "")
    item = event.get("item") or {}
    user = event.get("user")
    if kind is None or item.get("type") != "message" or not user:
        return
    # only the approvals channel counts: a reaction elsewhere cannot approve
    if item.get("channel") != cfg.approvals_channel:
        return
    decision = decide_reaction(rt, item["channel"], str(item.get("ts")), user,
                               kind, body.get("event_id"))  # type: ignore[arg-type]
    if decision is not None and not decision.ok:
        try:
            client.chat_postEphemeral(channel=cfg.approvals_channel, user=user,
                                      text=decision.message)
        except Exception as exc:
            log.warning("could not tell the user", error=str(exc))


def on_message(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
    """Images (and `alt: ...`) shared in the thread of a draft's approval message."""
    rt = runtime(context)
    if images.thread_of(rt, event) is None or not first_delivery(rt, body.get("event_id")):
        return
    images.on_thread_message(rt, event)


def on_reaction_removed() -> None:
    # removing an emoji does not undo a decision: decisions are final and audited
    return None


def on_app_home_opened(event: dict[str, Any], context: BoltContext) -> None:
    """Each person's dashboard (services/home.py), published when they open the tab."""
    if event.get("tab", "home") == "home" and event.get("user"):
        home.publish_home(runtime(context), str(event["user"]), opened=True)


def register(app: App) -> None:
    app.event("reaction_added")(on_reaction_added)
    app.event("message")(on_message)
    app.event("reaction_removed")(on_reaction_removed)
    app.event("app_home_opened")(on_app_home_opened)
