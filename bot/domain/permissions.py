"""Who may do what: roles drawn from Slack user groups. Pure rules, no I/O.

- comms approvers (slack.approvers_usergroup): approve anything, pause, draft anything
- account approvers (accounts[].approvers_usergroup): approve for that account only
- drafters: anyone, unless accounts[].drafters_usergroup or services[].drafters_usergroup
  narrow it (approvers of the account may always draft)
- admins (slack.admins_usergroup): see everything on the App Home; no approval right
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.blockkit.labels import account_label
from bot.config import AccountConfig, Config, ServiceConfig

Members = Callable[[str | None], frozenset[str]]  # user group id -> its members


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""


def is_comms(user: str, cfg: Config, members: Members) -> bool:
    return user in members(cfg.slack.approvers_usergroup)


def is_admin(user: str, cfg: Config, members: Members) -> bool:
    return bool(cfg.slack.admins_usergroup) and user in members(cfg.slack.admins_usergroup)


def can_approve(user: str, account: AccountConfig, cfg: Config, members: Members) -> Verdict:
    if is_comms(user, cfg, members):
        return Verdict(True)
    if account.approvers_usergroup and user in members(account.approvers_usergroup):
        return Verdict(True)
    scope = (f" or of <!subteam^{account.approvers_usergroup}> (for {account_label(account.handle, account.network)})"
             if account.approvers_usergroup else "")
    return Verdict(False, "Only members of the comms approvers group "
                   f"<!subteam^{cfg.slack.approvers_usergroup}>{scope} can approve or reject "
                   f"drafts for {account_label(account.handle, account.network)}; nothing was published.")


def can_draft(user: str, account: AccountConfig, services: list[ServiceConfig], cfg: Config,
              members: Members) -> Verdict:
    if can_approve(user, account, cfg, members).ok:
        return Verdict(True)
    if account.drafters_usergroup and user not in members(account.drafters_usergroup):
        return Verdict(False, f"Drafting for {account_label(account.handle, account.network)} is limited to "
                       f"<!subteam^{account.drafters_usergroup}>; ask the comms team.")
    limited = [s for s in services if s.drafters_usergroup]
    if services and len(limited) == len(services) and not any(
            user in members(s.drafters_usergroup) for s in limited):
        names = ", ".join(s.name for s in limited)
        return Verdict(False, f"Replies to this mention are drafted by the {names} team; "
                       "ask them or the comms team.")
    return Verdict(True)


def describe(user: str, cfg: Config, members: Members) -> list[str]:
    """What a person may do and why (for `/social whoami`)."""
    lines = []
    if is_comms(user, cfg, members):
        lines.append("You are in the comms approvers group: you can draft for and approve "
                     "every account (never a draft you wrote or edited), and pause or resume "
                     "publishing.")
    for acc in cfg.accounts:
        if not is_comms(user, cfg, members) and acc.approvers_usergroup and \
                user in members(acc.approvers_usergroup):
            lines.append(f"You can approve drafts for {account_label(acc.handle, acc.network, acc.name)}.")
        verdict = can_draft(user, acc, [], cfg, members)
        lines.append(f"{account_label(acc.handle, acc.network, acc.name)}: "
                     + ("you can draft." if verdict.ok else "you cannot draft. " + verdict.reason)
                     + (f" Needs {acc.required_approvals} approvals."
                        if acc.required_approvals > 1 else ""))
    if is_admin(user, cfg, members):
        lines.append("You are an admin: you see every queue on the App Home.")
    return lines
