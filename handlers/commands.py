"""`/social`: parse, call the service, answer within Slack's 3 s (ephemeral)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.domain import slash
from bot.runtime import Runtime
from bot.services import drafting, governance, plan_commands, saved_replies, stats
from handlers.context import runtime


def social(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    rt = runtime(context)
    user = command.get("user_id") or ""
    text = command.get("text") or ""
    try:
        planned = plan_commands.answer(rt, user, text)  # calendar; several accounts
        if planned is not None:
            ack(response_type="ephemeral", **planned)
            rt.kick_outbox()
            return
        answer = _answer(rt, user, slash.parse(text))
    except slash.SlashError as err:
        answer = err.text()
    # the author's one confirmation (no second ephemeral)
    ack(response_type="ephemeral", text=answer)


def _answer(rt: Runtime, user: str, parsed: slash.Command) -> str:
    if isinstance(parsed, slash.Help):
        return slash.HELP_TEXT
    if isinstance(parsed, slash.Stats):
        return stats.answer(rt, parsed.args)
    if isinstance(parsed, slash.WhoAmI | slash.Pause | slash.Resume):
        return governance.run_command(rt, user, parsed)
    if isinstance(parsed, slash.Saved):
        return saved_replies.command(rt, user, parsed)
    return _drafted(rt, drafting.submit(rt, user, parsed, via="slash"))


def _drafted(rt: Runtime, done: drafting.Submitted) -> str:
    if done.error is not None:
        return done.error.text()
    if done.refusal is not None:
        return f":no_entry: {done.refusal} Nothing was stored."
    when = ""
    if done.scheduled_for is not None:
        local = done.scheduled_for.astimezone(rt.settings.config.tz)
        when = f" It will go out at {local:%Y-%m-%d %H:%M} once approved."
    return (f":memo: Draft {done.ref} created and sent to the comms team for approval in "
            f"<#{rt.settings.config.slack.approvals_channel}>.{when}")


def register(app: App) -> None:
    app.command("/social")(social)
