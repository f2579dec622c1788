"""Modal submissions: reroute, draft a reply, edit a draft."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from bot.blockkit.modals import (
    DRAFT_EDIT_CALLBACK,
    DRAFT_REPLY_CALLBACK,
    DRAFT_TEXT_ACTION,
    DRAFT_TEXT_BLOCK,
    REROUTE_ACTION,
    REROUTE_BLOCK,
    REROUTE_CALLBACK,
)
from bot.db import transaction
from bot.domain import slash
from bot.models import Account, Draft
from bot.runtime import Runtime
from bot.services import alerts, saved_replies
from bot.services import draft_states as drafts
from bot.services.approvers import UNCONFIRMED, Unconfirmed
from bot.services.drafting import (
    DraftRefused,
    check_command,
    check_length,
    check_permission,
    create_draft,
    record_refusal,
    refresh_draft,
)


def _draft_text(view: dict[str, Any]) -> str:
    try:
        block = view["state"]["values"][DRAFT_TEXT_BLOCK]
        # `draft_text_input~<id>` once a saved reply was picked (a new id: a new initial value)
        action = next(a for a in block if a.split("~")[0] == DRAFT_TEXT_ACTION)
        raw = block[action].get("value") or ""
    except (KeyError, TypeError, StopIteration, AttributeError):
        return ""
    return slash.clean_text(raw)


def register(app: Any, rt: Runtime) -> None:
    @app.view(REROUTE_CALLBACK)
    def reroute(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            alert_id = int(view["private_metadata"])
            service = view["state"]["values"][REROUTE_BLOCK][REROUTE_ACTION][
                "selected_option"]["value"]
        except (KeyError, TypeError, ValueError):
            ack(response_action="errors", errors={REROUTE_BLOCK: "Pick a service."})
            return
        user = body["user"]["id"]
        refused = alerts.authorize(rt, alert_id, user, "reroute")  # asks Slack now
        if refused is not None:
            ack(response_action="errors", errors={REROUTE_BLOCK: refused.message[:150]})
            return
        with transaction(rt.sessions) as s:
            outcome = alerts.reroute(s, alert_id, user, service, rt)
        if not outcome.ok:
            ack(response_action="errors", errors={REROUTE_BLOCK: outcome.message})
            return
        ack()
        rt.kick_outbox()

    @app.view(DRAFT_REPLY_CALLBACK)
    def draft_reply(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        text = _draft_text(view)
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            mention_id = int(meta["mention_id"])
        except (KeyError, TypeError, ValueError):
            ack(response_action="errors", errors={DRAFT_TEXT_BLOCK: "This form is out of date."})
            return
        if not text:
            ack(response_action="errors", errors={DRAFT_TEXT_BLOCK: "Write the reply first."})
            return
        try:
            with transaction(rt.sessions) as s:
                req = check_command(rt, s, slash.Reply(slash.MentionRef(mention_id), text))
                check_permission(rt, s, user, req)
                channel = meta.get("channel")
                draft = create_draft(rt, s, req, user, via="modal",
                                     reply_to=(channel, user) if channel else None)
                saved_replies.record_use(s, draft, saved_replies.use_from_modal(s, meta), user,
                                         via="modal")
        except slash.SlashError as err:
            ack(response_action="errors", errors={DRAFT_TEXT_BLOCK: err.message[:150]})
            return
        except DraftRefused as refused:
            record_refusal(rt, user, refused, via="modal")
            ack(response_action="errors", errors={DRAFT_TEXT_BLOCK: refused.reason[:150]})
            return
        ack()
        rt.kick_outbox()

    @app.view(DRAFT_EDIT_CALLBACK)
    def draft_edit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        text = _draft_text(view)
        try:
            draft_id = int(json.loads(view.get("private_metadata") or "{}")["draft_id"])
        except (KeyError, TypeError, ValueError):
            ack(response_action="errors", errors={DRAFT_TEXT_BLOCK: "This form is out of date."})
            return
        if not text:
            ack(response_action="errors", errors={DRAFT_TEXT_BLOCK: "The draft cannot be empty."})
            return
        with rt.sessions() as s:
            author = s.scalar(select(Draft.author).where(Draft.id == draft_id))
        try:  # the author may always edit; anyone else only as an approver, asked now
            is_approver = user != author and rt.approvers.is_approver_live(user)
        except Unconfirmed:
            ack(response_action="errors", errors={DRAFT_TEXT_BLOCK: UNCONFIRMED})
            return
        try:
            with transaction(rt.sessions) as s:
                draft = s.get(Draft, draft_id)
                if draft is None or (user != draft.author and not is_approver):
                    ack(response_action="errors", errors={
                        DRAFT_TEXT_BLOCK: "Only the author or a comms approver can edit this."})
                    return
                account = s.get_one(Account, draft.account_id)
                from bot.domain import tracking  # council links tagged (issue 21)
                from bot.services.plans import campaign_of

                text = tracking.tag(text, account.network, campaign_of(s, draft_id),
                                    rt.settings.config.links.tracked_domains)
                check_length(rt, account.name, text)
                decision = drafts.edit(s, draft_id, user, text)
                if decision.ok:
                    refresh_draft(s, s.get_one(Draft, draft_id))
        except slash.SlashError as err:
            ack(response_action="errors", errors={DRAFT_TEXT_BLOCK: err.message[:150]})
            return
        if not decision.ok:
            ack(response_action="errors", errors={DRAFT_TEXT_BLOCK: decision.message[:150]})
            return
        ack()
        rt.kick_outbox()

    from bot.blockkit.home import NEW_POST_CALLBACK
    from bot.services import home

    @app.view(NEW_POST_CALLBACK)
    def home_new_post(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The App Home's New post / Schedule a post modal."""
        user = body["user"]["id"]
        errors = home.submit_new_post(rt, user, view)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()
        home.publish_home(rt, user)
