"""Modal submissions: reroute, draft a reply, edit a draft, the App Home's New post."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.blockkit.home import NEW_POST_CALLBACK
from bot.blockkit.modals import (
    DRAFT_EDIT_CALLBACK,
    DRAFT_REPLY_CALLBACK,
    DRAFT_TEXT_ACTION,
    DRAFT_TEXT_BLOCK,
    REROUTE_ACTION,
    REROUTE_BLOCK,
    REROUTE_CALLBACK,
)
from bot.domain import slash
from bot.services import alert_actions, drafting, home
from handlers.context import runtime

OUT_OF_DATE = "This form is out of date."


def _draft_text(view: dict[str, Any]) -> str:
    try:
        block = view["state"]["values"][DRAFT_TEXT_BLOCK]
        # `draft_text_input~<id>` once a saved reply was picked (a new id: a new initial value)
        action = next(a for a in block if a.split("~")[0] == DRAFT_TEXT_ACTION)
        raw = block[action].get("value") or ""
    except (KeyError, TypeError, StopIteration, AttributeError):
        return ""
    return slash.clean_text(raw)


def _text_error(ack: Ack, message: str) -> None:
    ack(response_action="errors", errors={DRAFT_TEXT_BLOCK: message[:150]})


def reroute(ack: Ack, body: dict[str, Any], view: dict[str, Any],
            context: BoltContext) -> None:
    try:
        alert_id = int(view["private_metadata"])
        service = view["state"]["values"][REROUTE_BLOCK][REROUTE_ACTION][
            "selected_option"]["value"]
    except (KeyError, TypeError, ValueError):
        ack(response_action="errors", errors={REROUTE_BLOCK: "Pick a service."})
        return
    problem = alert_actions.reroute(runtime(context), alert_id, body["user"]["id"], service)
    if problem is not None:
        ack(response_action="errors", errors={REROUTE_BLOCK: problem})
        return
    ack()


def draft_reply(ack: Ack, body: dict[str, Any], view: dict[str, Any],
                context: BoltContext) -> None:
    user = body["user"]["id"]
    text = _draft_text(view)
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
        mention_id = int(meta["mention_id"])
    except (KeyError, TypeError, ValueError):
        _text_error(ack, OUT_OF_DATE)
        return
    if not text:
        _text_error(ack, "Write the reply first.")
        return
    channel = meta.get("channel")
    done = drafting.submit(runtime(context), user,
                           slash.Reply(slash.MentionRef(mention_id), text), via="modal",
                           reply_to=(channel, user) if channel else None, modal_meta=meta)
    if done.error is not None:
        _text_error(ack, done.error.message)
    elif done.refusal is not None:
        _text_error(ack, done.refusal)
    else:
        ack()


def draft_edit(ack: Ack, body: dict[str, Any], view: dict[str, Any],
               context: BoltContext) -> None:
    text = _draft_text(view)
    try:
        draft_id = int(json.loads(view.get("private_metadata") or "{}")["draft_id"])
    except (KeyError, TypeError, ValueError):
        _text_error(ack, OUT_OF_DATE)
        return
    if not text:
        _text_error(ack, "The draft cannot be empty.")
        return
    problem = drafting.edit(runtime(context), body["user"]["id"], draft_id, text)
    if problem is not None:
        _text_error(ack, problem)
        return
    ack()


def home_new_post(ack: Ack, body: dict[str, Any], view: dict[str, Any],
                  context: BoltContext) -> None:
    """The App Home's New post / Schedule a post modal."""
    rt = runtime(context)
    user = body["user"]["id"]
    errors = home.submit_new_post(rt, user, view)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    ack()
    home.publish_home(rt, user)


def register(app: App) -> None:
    app.view(REROUTE_CALLBACK)(reroute)
    app.view(DRAFT_REPLY_CALLBACK)(draft_reply)
    app.view(DRAFT_EDIT_CALLBACK)(draft_edit)
    app.view(NEW_POST_CALLBACK)(home_new_post)
