"""The one approval card of a group of drafts (issue 21): a CSV batch or a campaign.

Each row is one draft, decided on its own (Approve, or Retry after a failed publish);
"Approve all" approves every pending row, each audited on its own."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from bot.blockkit.approvals import ACTION_EDIT
from bot.blockkit.escape import escape, fit, truncate

ACTION_APPROVE_ROW = "group_approve_row"
ACTION_RETRY_ROW = "group_retry_row"
ACTION_APPROVE_ALL = "group_approve_all"
MAX_ROWS = 40  # Slack allows 50 blocks a message

STATE_ICON = {"pending": ":hourglass:", "approved": ":white_check_mark:",
              "publishing": ":arrows_counterclockwise:", "published": ":globe_with_meridians:",
              "failed": ":warning:", "rejected": ":x:", "cancelled": ":no_entry_sign:",
              "expired": ":alarm_clock:", "superseded": ":twisted_rightwards_arrows:"}


@dataclass(frozen=True)
class Row:
    draft_id: int
    ref: str
    version: int
    position: int
    account: str  # our account name
    network: str
    state: str
    text: str
    length: int
    limit: int
    scheduled_for: datetime | None
    campaign: str | None
    link: str | None = None  # mrkdwn, already made safe
    error: str | None = None
    steps: str | None = None  # e.g. "step 1 of 2 (S0LEAD)"
    images: int = 0


@dataclass(frozen=True)
class GroupView:
    ref: str
    kind: str  # batch|campaign
    name: str | None
    author: str
    rows: list[Row] = field(default_factory=list)


def _when(dt: datetime | None, tz: tzinfo) -> str:
    return f"{dt.astimezone(tz):%a %d %b %H:%M}" if dt else "when approved"


def _row_buttons(r: Row, *, edit: bool) -> list[dict[str, Any]]:
    value = f"{r.draft_id}:v{r.version}"
    out: list[dict[str, Any]] = []
    if r.state == "pending":
        out.append({"type": "button", "action_id": ACTION_APPROVE_ROW, "value": value,
                    "text": {"type": "plain_text", "text": "Approve"}})
    if r.state in ("failed", "expired"):
        out.append({"type": "button", "action_id": ACTION_RETRY_ROW, "value": value,
                    "style": "primary", "text": {"type": "plain_text", "text": "Retry"}})
    if edit and r.state in ("pending", "approved", "expired", "failed"):
        out.append({"type": "button", "action_id": ACTION_EDIT, "value": str(r.draft_id),
                    "text": {"type": "plain_text", "text": "Edit"}})
    return out


def group_message(view: GroupView, tz: tzinfo) -> tuple[str, list[dict[str, Any]]]:
    counts: dict[str, int] = {}
    for r in view.rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    what = ("Campaign" if view.kind == "campaign" else "Batch") + f" {view.ref}"
    if view.name:
        what += f" “{truncate(view.name, 120)}”"
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    who = (f"<@{view.author}>" if re.fullmatch(r"[UW][A-Z0-9]{2,20}", view.author)
           else escape(view.author))
    text = f"{escape(what)}: {len(view.rows)} draft(s) by {who} ({summary})"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn",
                                                                 "text": fit(text)}}]
    pending = [r for r in view.rows if r.state == "pending"]
    if pending:
        blocks.append({"type": "actions", "block_id": "group", "elements": [
            {"type": "button", "action_id": ACTION_APPROVE_ALL, "style": "primary",
             "text": {"type": "plain_text", "text": f"Approve all {len(pending)} pending"},
             "value": view.ref[1:]}]})
    # open rows first (they need someone), then the rest, in row order
    order = sorted(view.rows, key=lambda r: (r.state not in ("pending", "failed"), r.position))
    shown = order[:MAX_ROWS]
    for r in shown:
        head = (f"{STATE_ICON.get(r.state, '')} *Row {r.position}* · {r.ref} · "
                f"*{escape(r.account)}* ({escape(r.network)}) · {_when(r.scheduled_for, tz)} · "
                f"{r.state} · {r.length}/{r.limit}")
        if r.campaign:
            head += f" · campaign {escape(truncate(r.campaign, 60))}"
        if r.images:
            head += f" · {r.images} image(s)"
        if r.steps:
            head += f" · {escape(r.steps)}"
        body = "\n>" + escape(truncate(r.text, 400)).replace("\n", "\n>")
        if r.link:
            body += f"\n{r.link}"
        if r.error:
            body += f"\n:warning: {escape(truncate(r.error, 300))}"
        block: dict[str, Any] = {"type": "section", "block_id": f"row:{r.draft_id}",
                                 "text": {"type": "mrkdwn", "text": fit(head + body)}}
        buttons = _row_buttons(r, edit=view.kind == "campaign")
        if view.kind == "campaign":  # a few variants: each its own Approve, Edit, Retry
            blocks.append(block)
            if buttons:
                blocks.append({"type": "actions", "block_id": f"variant:{r.draft_id}",
                               "elements": buttons})
            continue
        if buttons:
            block["accessory"] = buttons[0]
        blocks.append(block)
    if len(order) > len(shown):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"…and {len(order) - len(shown)} more row(s); they appear here as these are "
            "decided.")}]})
    return text, blocks
