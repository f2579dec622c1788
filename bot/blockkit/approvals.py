"""The approval message: one per draft, in the approvals channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from bot.blockkit.alerts import NETWORK_LABEL, slack_date
from bot.blockkit.escape import (
    escape,
    fit,
    outside_text_sections,
    plain,
    safe_link,
    truncate,
)
from bot.blockkit.labels import account_label
from bot.domain.house_style import Finding
from bot.models import Account, Draft, Mention

ACTION_APPROVE = "draft_approve"
ACTION_REJECT = "draft_reject"
ACTION_EDIT = "draft_edit"
ACTION_RETRY = "draft_retry"

STATE_LINE = {
    "pending": ":hourglass_flowing_sand: Waiting for approval",
    "approved": ":white_check_mark: Approved by <@{approved_by}>",
    "publishing": ":rocket: Publishing…",
    "published": ":white_check_mark: Published (approved by <@{approved_by}>)",
    "failed": ":warning: Publishing failed: {error}",
    "rejected": ":x: Rejected by <@{decided_by}>",
    "superseded": ":fast_forward: Superseded: another reply to this mention was approved",
    "cancelled": ":heavy_minus_sign: Cancelled",
    "expired": ":alarm_clock: Not published: approved after its scheduled time. "
               "An approver can publish it now, or the author can edit it with a new time.",
}


@dataclass(frozen=True)
class ApprovalView:
    draft: Draft
    account: Account
    mention: Mention | None
    length: int
    max_length: int
    approve_reaction: str
    reject_reaction: str
    banners: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)  # who approved this version so far
    required: int = 1
    hold: str | None = None  # why an approved draft is waiting
    images: list[tuple[str, str | None]] = field(default_factory=list)  # (filename, alt text)
    link_hosts: tuple[str, ...] = ()  # where the network's links may point (escape.link_hosts)


def approval_message(v: ApprovalView, tz: ZoneInfo) -> tuple[str, list[dict[str, Any]]]:
    d, acc = v.draft, v.account
    net = NETWORK_LABEL.get(acc.network, acc.network)
    what = "Reply" if d.kind == "reply" else "New post"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*{what} as @{escape(acc.handle)} on {net}* · draft *{d.ref}* (v{d.version}) "
            f"by <@{d.author}>")}},
    ]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": fit(b)}}
               for b in v.banners]  # banners: outside text escaped where they are made
    if v.mention is not None:
        m = v.mention
        author = escape(f"@{truncate(m.author_handle, 100)}" if m.author_handle else "someone")
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"In reply to {m.ref}"
             + (f" · {safe_link(m.url, 'view post', v.link_hosts)}" if m.url else "")},
            # a private message's text stays out of the approvals channel (issue 20)
            plain(fit(f"{author}: (private message, not shown here)" if m.origin == "private"
                      else f"{author}: {escape(truncate(m.text, 500))}")),
        ]})
    blocks += outside_text_sections(d.text)
    meta = [f"{v.length}/{v.max_length} characters"]
    if d.scheduled_for is not None:
        meta.append(f"scheduled for {slack_date(d.scheduled_for, tz)}")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(meta)}]})
    if v.images:
        lines = [f":frame_with_picture: {len(v.images)} image{'s' if len(v.images) > 1 else ''}"
                 " attached"]
        for name, alt in v.images:
            if (alt or "").strip():
                lines.append(f"• {escape(truncate(name, 100))}: alt text "
                             f"“{escape(truncate(alt or '', 1000))}”")
            else:
                lines.append(f"• {escape(truncate(name, 100))}: :no_entry: *no alt text*; reply "
                             "in this thread with `alt: &lt;what the image shows&gt;`")
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": fit("\n".join(lines))}]})
    for f in v.findings:
        icon = ":no_entry:" if f.level == "block" else ":warning:"
        what_it_does = "blocks publishing" if f.level == "block" else "warning"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            fit(f"{icon} House style ({what_it_does}): {escape(f.message)}"))}]})
    if v.required > 1 and d.state == "pending":
        who = ", ".join(f"<@{u}>" for u in v.approvals) or "nobody yet"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f":busts_in_silhouette: Needs {v.required} approvals from different approvers "
            f"({len(v.approvals)} so far: {who})")}]})
    line = STATE_LINE.get(d.state, d.state).format(
        approved_by=d.approved_by or "?", decided_by=d.decided_by or "?",
        error=escape(truncate(d.last_error or "unknown error", 500)))
    if d.state == "published" and d.published_url:
        line += f" · {safe_link(d.published_url, 'view post', v.link_hosts)}"
    if d.state == "approved" and d.retry_at is not None and d.last_error:
        # e.g. "waiting for X's rate limit until 14:05" (services/publishing)
        line += f" · :hourglass_flowing_sand: {escape(truncate(d.last_error, 300))}"
    if d.state == "approved" and v.hold:
        line += f" · :double_vertical_bar: waiting: {v.hold}"  # escaped by governance
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": fit(line)}]})
    buttons: list[dict[str, Any]] = []
    value = str(d.id)
    decide_value = f"{d.id}:v{d.version}"  # a decision names the version it was shown
    if d.state == "pending":
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"Comms approvers: react :{v.approve_reaction}: to approve or "
            f":{v.reject_reaction}: to reject (or use the buttons). "
            "You cannot approve a draft you wrote or edited.")}]})
        buttons += [
            {"type": "button", "action_id": ACTION_APPROVE, "value": decide_value,
             "style": "primary",
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": ACTION_REJECT, "value": decide_value,
             "style": "danger",
             "text": {"type": "plain_text", "text": "Reject"}},
        ]
    if d.state in ("pending", "approved", "expired", "failed"):
        buttons.append({"type": "button", "action_id": ACTION_EDIT, "value": value,
                        "text": {"type": "plain_text", "text": "Edit"}})
    if d.state in ("failed", "expired"):
        buttons.append({"type": "button", "action_id": ACTION_RETRY, "value": value,
                        "style": "primary",
                        "text": {"type": "plain_text",
                                 "text": "Retry" if d.state == "failed" else "Publish now"}})
    if buttons:
        blocks.append({"type": "actions", "block_id": f"draft-{d.id}", "elements": buttons})
    fallback = f"{what} draft {d.ref} by <@{d.author}> for {escape(account_label(acc.handle, acc.network))}: {d.state}"
    return fallback, blocks
