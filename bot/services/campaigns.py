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
from typing import Any

from bot.blockkit import home as hb
from bot.blockkit.escape import escape
from bot.db import transaction
from bot.domain import slash
from bot.runtime import Runtime
from bot.services import audit, groups
from bot.services import draft_states as drafts
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
        draft = drafts.create(s, account_id=accounts[req.account], author=author,
                              text=req.text, kind="post", scheduled_for=req.scheduled_for,
                              approval_channel=channel, via=via)
        groups.add_item(s, group, draft, n, campaign)
        made.append(draft)
    audit.record(s, actor=author, action="campaign.created", subject_kind="campaign",
                 subject_id=group.id, details={"name": campaign, "drafts": [d.id for d in made],
                                               "accounts": [r.account for r in requests]})
    groups.post_card(s, group)
    return group, made


def slash_answer(rt: Runtime, user: str, text: str) -> dict[str, Any]:
    try:
        with transaction(rt.sessions) as s:
            requests, name = check(rt, s, text)
            for req in requests:
                check_permission(rt, s, user, req)
            group, made = create(rt, s, requests, user, name, via="slash")
            summary = ", ".join(f"{d.ref} ({r.account})" for d, r in zip(made, requests,
                                                                           strict=True))
            ref = group.ref
            when = requests[0].scheduled_for
    except slash.SlashError as err:
        return {"text": err.text()}
    except DraftRefused as refused:
        record_refusal(rt, user, refused, via="slash")
        return {"text": f":no_entry: {refused.reason} Nothing was stored."}
    rt.kick_outbox()
    later = ""
    if when is not None:
        later = (f" They will go out at {when.astimezone(rt.settings.config.tz):%Y-%m-%d %H:%M}"
                 " once approved.")
    named = f" “{escape(name)}”" if name else ""
    return {"text": f":memo: Campaign {ref}{named} created: {summary}, "
                    "sent to the comms team for approval on one card in "
                    f"<#{rt.settings.config.slack.approvals_channel}>.{later}"}


def from_modal(rt: Runtime, user: str, cmd: slash.Post | slash.Schedule, accounts: list[str],
               campaign: str | None) -> dict[str, str] | None:
    """The New post modal with more accounts: one campaign. Errors by block id, or None."""
    name = (campaign or "").strip()[:128] or None
    try:
        with transaction(rt.sessions) as s:
            requests = []
            for account in accounts:
                try:
                    requests.append(check_command(rt, s, dataclasses.replace(cmd, account=account),
                                                  campaign=name))
                except slash.SlashError as err:
                    err.message = f"For {account}: {err.message}"
                    raise
            for req in requests:
                check_permission(rt, s, user, req)
            create(rt, s, requests, user, name, via="home")
    except slash.SlashError as err:
        block = hb.DATE_BLOCK if "past" in err.message else hb.TEXT_BLOCK
        return {block: err.message[:150]}
    except DraftRefused as refused:
        record_refusal(rt, user, refused, via="home")
        return {hb.ALSO_BLOCK: refused.reason[:150]}
    rt.kick_outbox()
    return None
