"""The mention alert: one Block Kit message in a service channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.blockkit import triage
from bot.blockkit.escape import (
    escape,
    fit,
    outside_text_sections,
    plain,
    safe_link,
    truncate,
)
from bot.models import Account, Alert, Mention
from integrations import registry

NETWORK_LABEL = {spec.name: spec.label for spec in registry.specs()}

SAFEGUARDING = "safeguarding"
# what the header calls a mention by its origin (issue 20: heard by keyword listening)
ORIGIN_HEADER = {"heard": "post heard by listening (not a mention), searched as",
                 "private": "private message to"}
ACTION_DRAFT = "alert_draft_reply"
ACTION_CLAIM = "alert_claim"
ACTION_CLOSE = "alert_no_reply"
ACTION_REROUTE = "alert_reroute"
ACTION_REOPEN = "alert_reopen"


@dataclass(frozen=True)
class AlertView:
    alert: Alert
    mention: Mention
    account: Account
    pending_drafts: int = 0
    moved_to: str | None = None
    replied_url: str | None = None
    replied_by: str | None = None
    approved_by: str | None = None
    hide_escalated_text: bool = True
    also_in: tuple[str, ...] = ()  # other services that have this mention
    link_hosts: tuple[str, ...] = ()  # where the network's links may point (escape.link_hosts)
    show_private: bool = False  # a private channel: a private message's text may be shown

    @property
    def hides_private(self) -> bool:
        """A private message in a channel that is not private: its text is not shown."""
        return self.mention.origin == "private" and not self.show_private \
            and not self.is_escalation

    @property
    def is_escalation(self) -> bool:
        return self.alert.service == SAFEGUARDING


def slack_date(at: datetime, tz: ZoneInfo) -> str:
    """A date Slack shows in each reader's own time zone (fallback: council time)."""
    local = at.astimezone(tz).strftime("%d %b %Y %H:%M")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{local}>"


def _status(v: AlertView) -> str:
    m = v.mention
    if v.moved_to:
        return f":arrow_right: Moved to <#{v.moved_to}>"
    if m.state == "replied":
        who = f" by <@{v.replied_by}>" if v.replied_by else ""
        ok = f", approved by <@{v.approved_by}>" if v.approved_by else ""
        link = f" {safe_link(v.replied_url, 'View reply', v.link_hosts)}" if v.replied_url else ""
        return f":white_check_mark: Replied{who}{ok}.{link}"
    if m.state == "closed":
        return f":no_entry_sign: No reply needed (<@{m.closed_by}>)"
    parts = []
    if m.state == "claimed" and m.claimed_by:
        parts.append(f":raising_hand: <@{m.claimed_by}> is on it")
    if v.pending_drafts:
        parts.append(f":memo: Draft pending approval ({v.pending_drafts})")
    return " · ".join(parts) or ":large_blue_circle: Open: nobody has claimed this yet"


def alert_message(v: AlertView, tz: ZoneInfo) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for the alert, reflecting the mention's current state."""
    m, acc = v.mention, v.account
    net = NETWORK_LABEL.get(acc.network, acc.network)
    who = escape(truncate(m.author_name or m.author_handle or "someone", 100))
    handle = f"@{truncate(m.author_handle, 100)}" if m.author_handle else ""
    header = (
        f"{net} {ORIGIN_HEADER.get(m.origin, 'mention of')} @{escape(acc.handle)}"
        + (f" · {escape(v.alert.service)}" if v.alert.service else "")
        + (f" · {escape(v.alert.reason)}" if v.moved_to is None else "")
    )
    if m.purged_at is not None:
        text_blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": (
            "_The resident's words were removed under the council's retention policy._")}]}]
    elif v.hides_private:
        text_blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": (
            ":lock: *Private message*: its text is not shown in this channel. Read it in the "
            "Draft reply form (only you see it) or a private channel set for the service.")}]}]
    elif m.escalated and not v.is_escalation and v.hide_escalated_text:
        text_blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": (
            ":lock: The text is hidden here because it matched a safeguarding term; "
            "it has been escalated to the safeguarding channel.")}]}]
    else:
        text_blocks = outside_text_sections(m.text)
    blocks: list[dict[str, Any]] = []
    if v.is_escalation:
        services = ", ".join(escape(x) for x in v.also_in) or "no service (default channel)"
        blocks.append({"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                   "text": ":rotating_light: URGENT: safeguarding"}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            fit(f"Matched {escape(v.alert.reason)} · also routed to: {services}"))}]})
    blocks += [
        {"type": "context", "elements": [plain(truncate(header, 2900))]},
        # triage at a glance: priority and sentiment (domain/triage.py)
        {"type": "context", "elements": [{"type": "mrkdwn", "text": fit(triage.badge_line(m))}]},
        {"type": "context", "elements": [plain(f"{who} {escape(handle)}".strip())]},
        *text_blocks,
    ]
    meta = [f"Ref *{escape(m.ref)}*"]
    if m.posted_at:
        meta.append(slack_date(m.posted_at, tz))
    if m.url:
        meta.append(safe_link(m.url, f"View on {net}", v.link_hosts))
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": fit(" · ".join(meta))},
    ]})
    status = _status(v)
    if m.escalated and not v.is_escalation:
        status += " · :rotating_light: Escalated (safeguarding)"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": fit(status)}]})
    if v.moved_to is None and m.state not in ("replied", "closed"):
        value = str(v.alert.id)
        buttons = [
            {"type": "button", "action_id": ACTION_DRAFT, "value": value, "style": "primary",
             "text": {"type": "plain_text", "text": "Draft reply"}},
        ]
        if m.state != "claimed":
            buttons.append({"type": "button", "action_id": ACTION_CLAIM, "value": value,
                            "text": {"type": "plain_text", "text": "I'm on it"}})
        buttons += [
            {"type": "button", "action_id": ACTION_CLOSE, "value": value,
             "text": {"type": "plain_text", "text": "No reply needed"}},
            {"type": "button", "action_id": ACTION_REROUTE, "value": value,
             "text": {"type": "plain_text", "text": "Reroute"}},
            triage.menu(m, v.alert.id),  # correct the priority or sentiment
        ]
        blocks.append({"type": "actions", "block_id": f"alert-{v.alert.id}", "elements": buttons})
    elif m.state == "closed" and v.moved_to is None:
        blocks.append({"type": "actions", "block_id": f"alert-{v.alert.id}", "elements": [
            {"type": "button", "action_id": ACTION_REOPEN, "value": str(v.alert.id),
             "text": {"type": "plain_text", "text": "Reopen"}},
        ]})
    shown = "" if (m.escalated and not v.is_escalation and v.hide_escalated_text) \
        or m.purged_at or v.hides_private else f": {escape(truncate(m.text, 200))}"
    prefix = "URGENT safeguarding: " if v.is_escalation else ""
    kind = {"heard": "post heard", "private": "private message"}.get(m.origin, "mention")
    fallback = f"{prefix}{net} {kind} from {who} {escape(handle)}{shown}"
    return fallback, blocks
