"""`/social`: parse and validate, store the draft, answer within Slack's 3 s (ephemeral)."""

from __future__ import annotations

from typing import Any

from bot import logs
from bot.blockkit.escape import escape
from bot.db import transaction
from bot.domain import permissions, slash
from bot.runtime import Runtime
from bot.services import governance, saved_replies
from bot.services.approvers import UNCONFIRMED, Unconfirmed
from bot.services.drafting import (
    DraftRefused,
    check_command,
    check_permission,
    create_draft,
    record_refusal,
)

log = logs.get("commsdesk.commands")


def register(app: Any, rt: Runtime) -> None:
    @app.command("/social")
    def social(ack: Any, command: dict[str, Any]) -> None:
        user = command.get("user_id") or ""
        try:
            from bot.services import plan_commands  # calendar; several accounts

            planned = plan_commands.answer(rt, user, command.get("text") or "")
            if planned is not None:
                ack(response_type="ephemeral", **planned)
                rt.kick_outbox()
                return
            parsed = slash.parse(command.get("text") or "")
            if isinstance(parsed, slash.Help):
                ack(response_type="ephemeral", text=slash.HELP_TEXT)
                return
            if isinstance(parsed, slash.Stats):
                from bot.services import stats

                ack(response_type="ephemeral", text=stats.answer(rt, parsed.args))
                return
            if isinstance(parsed, slash.WhoAmI | slash.Pause | slash.Resume):
                ack(response_type="ephemeral", text=governance_command(rt, user, parsed))
                return
            if isinstance(parsed, slash.Saved):
                ack(response_type="ephemeral", text=saved_replies.command(rt, user, parsed))
                return
            with transaction(rt.sessions) as s:
                use = None
                if isinstance(parsed, slash.Reply):  # `saved:<name>`: its text, filled in
                    parsed, use = saved_replies.expand(s, parsed)
                req = check_command(rt, s, parsed)
                check_permission(rt, s, user, req)
                # the ack below is the author's one confirmation (no second ephemeral)
                draft = create_draft(rt, s, req, user, via="slash")
                saved_replies.record_use(s, draft, use, user, via="slash")
                ref = draft.ref
        except slash.SlashError as err:
            ack(response_type="ephemeral", text=err.text())
            return
        except DraftRefused as refused:
            record_refusal(rt, user, refused, via="slash")
            ack(response_type="ephemeral", text=f":no_entry: {refused.reason} Nothing was stored.")
            return
        when = ""
        if req.scheduled_for is not None:
            local = req.scheduled_for.astimezone(rt.settings.config.tz)
            when = f" It will go out at {local:%Y-%m-%d %H:%M} once approved."
        ack(response_type="ephemeral",
            text=f":memo: Draft {ref} created and sent to the comms team for approval in "
                 f"<#{rt.settings.config.slack.approvals_channel}>.{when}")
        rt.kick_outbox()
        log.info("draft created", draft=ref, via="slash")


def governance_command(rt: Runtime, user: str,
                       cmd: slash.WhoAmI | slash.Pause | slash.Resume) -> str:
    cfg = rt.settings.config
    if isinstance(cmd, slash.WhoAmI):  # display: a minute-old answer is fine
        return "\n".join(permissions.describe(user, cfg, rt.approvers.members_cached))
    try:  # changing something: asked of Slack now
        comms = rt.approvers.is_approver_live(user)
    except Unconfirmed:
        comms = None
    if not comms:
        with transaction(rt.sessions) as s:
            from bot.services import audit

            audit.record(s, actor=user, action="publishing.pause_refused",
                         subject_kind="account", subject_id=cmd.target,
                         details={"command": type(cmd).__name__.lower(),
                                  "reason": "unconfirmed" if comms is None else "not comms"})
        if comms is None:
            return f":no_entry: {UNCONFIRMED} Nothing was changed."
        return ":no_entry: Only the comms approvers group can pause or resume publishing."
    if cmd.target != "all" and cfg.account(cmd.target) is None:
        known = ", ".join(a.name for a in cfg.accounts)
        return (f"There is no account called `{escape(cmd.target)}`. Accounts: {escape(known)}, "
                "or `all`.")
    with transaction(rt.sessions) as s:
        if isinstance(cmd, slash.Pause):
            text = governance.pause(rt, s, user, cmd.target, cmd.reason)
        else:
            text = governance.resume(rt, s, user, cmd.target)
    rt.kick_outbox()
    if isinstance(cmd, slash.Resume):
        rt.publisher.submit_sweep()
    return text
