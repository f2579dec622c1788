"""Who may do what: roles drawn from Slack user groups. Pure rules, no I/O and no Slack
text (what a refusal says is `blockkit/permissions.py`'s).

- comms approvers (slack.approvers_usergroup): approve anything, pause, draft anything
- account approvers (accounts[].approvers_usergroup): approve for that account only
- drafters: anyone, unless accounts[].drafters_usergroup or services[].drafters_usergroup
  narrow it (approvers of the account may always draft)
- admins (slack.admins_usergroup): see everything on the App Home; no approval right
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import AccountConfig, Config, ServiceConfig

Members = Callable[[str | None], frozenset[str]]  # user group id -> its members


class Rule(enum.StrEnum):
    """Which rule refused."""

    APPROVERS = "approvers"  # approving: not in the comms or the account's approvers group
    ACCOUNT_DRAFTERS = "account_drafters"  # drafting: the account's drafters group only
    SERVICE_DRAFTERS = "service_drafters"  # drafting: the mention's services' teams only


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rule: Rule | None = None  # the rule that refused
    account: AccountConfig | None = None
    services: tuple[str, ...] = ()  # SERVICE_DRAFTERS: the teams that may


def is_comms(user: str, cfg: Config, members: Members) -> bool:
    return user in members(cfg.slack.approvers_usergroup)


def is_admin(user: str, cfg: Config, members: Members) -> bool:
    return bool(cfg.slack.admins_usergroup) and user in members(cfg.slack.admins_usergroup)


def is_account_approver(user: str, account: AccountConfig, members: Members) -> bool:
    return bool(account.approvers_usergroup) and user in members(account.approvers_usergroup)


def can_approve(user: str, account: AccountConfig, cfg: Config, members: Members) -> Verdict:
    if is_comms(user, cfg, members) or is_account_approver(user, account, members):
        return Verdict(True)
    return Verdict(False, Rule.APPROVERS, account)


def can_draft(user: str, account: AccountConfig, services: list[ServiceConfig], cfg: Config,
              members: Members) -> Verdict:
    if can_approve(user, account, cfg, members).ok:
        return Verdict(True)
    if account.drafters_usergroup and user not in members(account.drafters_usergroup):
        return Verdict(False, Rule.ACCOUNT_DRAFTERS, account)
    limited = [s for s in services if s.drafters_usergroup]
    if services and len(limited) == len(services) and not any(
            user in members(s.drafters_usergroup) for s in limited):
        return Verdict(False, Rule.SERVICE_DRAFTERS, account, tuple(s.name for s in limited))
    return Verdict(True)
