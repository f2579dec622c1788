"""`/social`: parse and validate, store the draft, answer within Slack's 3 s (ephemeral)."""

from __future__ import annotations

from typing import Any

from commsdesk import logs
from commsdesk.db import transaction
from commsdesk.domain import slash
from commsdesk.runtime import Runtime
from commsdesk.services.drafting import check_command, create_draft

log = logs.get("commsdesk.commands")


def register(app: Any, rt: Runtime) -> None:
    @app.command("/social")
    def social(ack: Any, command: dict[str, Any]) -> None:
        user = command.get("user_id") or ""
        channel = command.get("channel_id") or ""
        try:
            parsed = slash.parse(command.get("text") or "")
            if isinstance(parsed, slash.Help):
                ack(response_type="ephemeral", text=slash.HELP_TEXT)
                return
            with transaction(rt.sessions) as s:
                req = check_command(rt, s, parsed)
                draft = create_draft(rt, s, req, user, via="slash",
                                     reply_to=(channel, user) if channel else None)
                ref = draft.ref
        except slash.SlashError as err:
            ack(response_type="ephemeral", text=err.text())
            return
        when = ""
        if req.scheduled_for is not None:
            local = req.scheduled_for.astimezone(rt.settings.config.tz)
            when = f" It will go out at {local:%Y-%m-%d %H:%M} once approved."
        ack(response_type="ephemeral",
            text=f":memo: Draft {ref} created and sent to the comms team for approval.{when}")
        rt.kick_outbox()
        log.info("draft created", draft=ref, via="slash")
