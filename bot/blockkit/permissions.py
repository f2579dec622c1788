"""What the permission rules (domain/permissions.py) say to people, in mrkdwn: refusals
that name the group to ask, and `/social whoami`."""

from __future__ import annotations

from bot.blockkit.labels import account_label
from bot.config import Config
from bot.domain.permissions import (
    Members,
    Rule,
    Verdict,
    can_draft,
    is_account_approver,
    is_admin,
    is_comms,
)


def refusal(verdict: Verdict, cfg: Config) -> str:
    """Why `verdict` refused, naming who may ("" when it did not refuse)."""
    acc = verdict.account
    if verdict.ok or acc is None:
        return ""
    label = account_label(acc.handle, acc.network)
    if verdict.rule is Rule.APPROVERS:
        scope = (f" or of <!subteam^{acc.approvers_usergroup}> (for {label})"
                 if acc.approvers_usergroup else "")
        return ("Only members of the comms approvers group "
                f"<!subteam^{cfg.slack.approvers_usergroup}>{scope} can approve or reject "
                f"drafts for {label}; nothing was published.")
    if verdict.rule is Rule.ACCOUNT_DRAFTERS:
        return (f"Drafting for {label} is limited to <!subteam^{acc.drafters_usergroup}>; "
                "ask the comms team.")
    return (f"Replies to this mention are drafted by the {', '.join(verdict.services)} team; "
            "ask them or the comms team.")


def describe(user: str, cfg: Config, members: Members) -> list[str]:
    """What a person may do and why (for `/social whoami`)."""
    lines = []
    comms = is_comms(user, cfg, members)
    if comms:
        lines.append("You are in the comms approvers group: you can draft for and approve "
                     "every account (never a draft you wrote or edited), and pause or resume "
                     "publishing.")
    for acc in cfg.accounts:
        label = account_label(acc.handle, acc.network, acc.name)
        if not comms and is_account_approver(user, acc, members):
            lines.append(f"You can approve drafts for {label}.")
        verdict = can_draft(user, acc, [], cfg, members)
        lines.append(f"{label}: "
                     + ("you can draft." if verdict.ok
                        else "you cannot draft. " + refusal(verdict, cfg))
                     + (f" Needs {acc.required_approvals} approvals."
                        if acc.required_approvals > 1 else ""))
    if is_admin(user, cfg, members):
        lines.append("You are an admin: you see every queue on the App Home.")
    return lines
