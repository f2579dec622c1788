"""Campaigns (issue 21): one message to several accounts, a variant per account.

`/social post nottscc,nottscc-masto,nottscc-bsky <text>` (or `schedule`, with a time)
makes one draft per account, each checked as its network counts it (length, limits),
on one approval card that lists each variant: each can be edited alone, "Approve all"
approves each (every decision as alone: four-eyes, audit), and each is published once
by the same Publisher as any draft; a failure shows on its own line with its own Retry
and holds none of the others back. `campaign:<name>` first in the text tags the posts
for reporting."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.blockkit import home as hb
from bot.blockkit.escape import escape
from bot.db import transaction
from bot.domain import slash
from bot.runtime import Runtime
from bot.services import audit, draft_states, groups
from bot.services.accounts import account_ids
from bot.services.drafting import (
    DraftRefused,
    DraftRequest,
    check_command,
    check_permission,
    record_refusal,
)

MAX_ACCOUNTS = 10
_CAMPAIGN = re.compile(r"^campaign:(?P<name>[^\s]{1,128})\s+", re.IGNORECASE)


class CampaignError(ValueError):
    pass


def split_accounts(token: str) -> list[str]:
    names = [a.strip().lower() for a in token.split(",") if a.strip()]
    if len(set(names)) != len(names):
        raise CampaignError("An account is named twice; name each once.")
    if len(names) > MAX_ACCOUNTS:
        raise CampaignError(f"At most {MAX_ACCOUNTS} accounts in one campaign.")
    return names


def check(rt: Runtime, s: Any, text: str) -> tuple[list[DraftRequest], str | None]:
    """Parse and check `post|schedule a,b,c [campaign:<name>] <text>`: one request per
    account, each checked for its own network. Raises SlashError naming the account."""
    verb, token, rest = [*text.split(None, 2), "", ""][:3]
    try:
        names = split_accounts(token)
    except CampaignError as err:
        raise slash.SlashError(str(err), slash.USAGE[verb.lower()]) from None
    cmd = slash.parse(f"{verb} {names[0]} {rest}")
    assert isinstance(cmd, slash.Post | slash.Schedule)
    name = None
    m = _CAMPAIGN.match(cmd.text + " ")
    if m:
        name = m.group("name").replace("-", " ").replace("_", " ")
        cmd = dataclasses.replace(cmd, text=cmd.text[m.end():].strip() if
                                  len(cmd.text) >= m.end() else "")
        if not cmd.text:
            raise slash.SlashError("Write the post after the campaign name.",
                                   slash.USAGE[verb.lower()])
    requests = []
    for account in names:
        try:
            requests.append(check_command(rt, s, dataclasses.replace(cmd, account=account),
                                          campaign=name))
        except slash.SlashError as err:
            if len(names) > 1 and not err.message.startswith("There is no account"):
                err.message = f"For {account}: {err.message}"
            raise
    return requests, name


def create(rt: Runtime, s: Any, requests: list[DraftRequest], author: str,
           campaign: str | None, via: str) -> tuple[Any, list[Any]]:
    accounts = account_ids(rt, s)
    channel = rt.settings.config.slack.approvals_channel
    group = groups.create_group(s, kind="campaign", name=campaign, author=author,
                               channel=channel)
    made = []
    for n, req in enumerate(requests, 1):
        draft = draft_states.create(s, account_id=accounts[req.account], author=author,
                              text=req.text, kind="post", scheduled_for=req.scheduled_for,
                              approval_channel=channel, via=via)
        groups.add_item(s, group, draft, n, campaign)
        made.append(draft)
    audit.record(s, actor=author, action="campaign.created", subject_kind="campaign",
                 subject_id=group.id, details={"name": campaign, "drafts": [d.id for d in made],
                                               "accounts": [r.account for r in requests]})
    groups.post_card(s, group)
    return group, made


@dataclass(frozen=True)
class Submitted:
    """What became of a campaign someone submitted: stored (its card's ref, a summary
    of its drafts), a mistake in what they wrote (`error`) or a refusal (audited); in
    the last two, nothing stored."""

    ref: str | None = None
    name: str | None = None
    summary: str = ""
    scheduled_for: datetime | None = None
    error: slash.SlashError | None = None
    refusal: str | None = None


Checker = Callable[[Session], tuple[list[DraftRequest], str | None]]


def submit(rt: Runtime, user: str, checked: Checker, *, via: str) -> Submitted:
    """Check (`checked`: the requests and the campaign's name), permit each account,
    create the drafts and their card (or refuse): the one sequence behind `/social post
    a,b,c` and the New post modal with more accounts."""
    try:
        with transaction(rt.sessions) as s:
            requests, name = checked(s)
            for req in requests:
                check_permission(rt, s, user, req)
            group, made = create(rt, s, requests, user, name, via=via)
            summary = ", ".join(f"{d.ref} ({r.account})" for d, r in zip(made, requests,
                                                                           strict=True))
            ref = group.ref
    except slash.SlashError as err:
        return Submitted(error=err)
    except DraftRefused as refused:
        record_refusal(rt, user, refused, via=via)
        return Submitted(refusal=refused.reason)
    rt.kick_outbox()
    return Submitted(ref, name, summary, requests[0].scheduled_for)


def slash_answer(rt: Runtime, user: str, text: str) -> dict[str, Any]:
    done = submit(rt, user, lambda s: check(rt, s, text), via="slash")
    if done.error is not None:
        return {"text": done.error.text()}
    if done.refusal is not None:
        return {"text": f":no_entry: {done.refusal} Nothing was stored."}
    later = ""
    if done.scheduled_for is not None:
        local = done.scheduled_for.astimezone(rt.settings.config.tz)
        later = f" They will go out at {local:%Y-%m-%d %H:%M} once approved."
    named = f" “{escape(done.name)}”" if done.name else ""
    return {"text": f":memo: Campaign {done.ref}{named} created: {done.summary}, "
                    "sent to the comms team for approval on one card in "
                    f"<#{rt.settings.config.slack.approvals_channel}>.{later}"}


def check_each(rt: Runtime, s: Session, cmd: slash.Post | slash.Schedule, accounts: list[str],
               campaign: str | None) -> list[DraftRequest]:
    """The same post checked for each account (errors name the account)."""
    requests = []
    for account in accounts:
        try:
            requests.append(check_command(rt, s, dataclasses.replace(cmd, account=account),
                                          campaign=campaign))
        except slash.SlashError as err:
            err.message = f"For {account}: {err.message}"
            raise
    return requests


def from_modal(rt: Runtime, user: str, cmd: slash.Post | slash.Schedule, accounts: list[str],
               campaign: str | None) -> dict[str, str] | None:
    """The New post modal with more accounts: one campaign. Errors by block id, or None."""
    name = (campaign or "").strip()[:128] or None
    done = submit(rt, user, lambda s: (check_each(rt, s, cmd, accounts, name), name),
                  via="home")
    if done.error is not None:
        block = hb.DATE_BLOCK if "past" in done.error.message else hb.TEXT_BLOCK
        return {block: done.error.message[:150]}
    if done.refusal is not None:
        return {hb.ALSO_BLOCK: done.refusal[:150]}
    return None
