"""`/social`: parse, validate, answer within Slack's 3 s (ephemeral), then act."""

from __future__ import annotations

from typing import Any

from commsdesk.domain import slash
from commsdesk.runtime import Runtime


def register(app: Any, rt: Runtime) -> None:
    @app.command("/social")
    def social(ack: Any, command: dict[str, Any]) -> None:
        try:
            parsed = slash.parse(command.get("text") or "")
        except slash.SlashError as err:
            ack(response_type="ephemeral", text=err.text())
            return
        if isinstance(parsed, slash.Help):
            ack(response_type="ephemeral", text=slash.HELP_TEXT)
            return
        ack(response_type="ephemeral", text="Drafting is not available yet.")
