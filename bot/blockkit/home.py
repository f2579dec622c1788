"""App Home: each person's dashboard, and the new-post modal its buttons open.

Within Slack's limits: at most 100 blocks per view and 3,000 characters per text; the
lists are capped and say how many more there are. Ages use Slack's `{ago}` date token,
so the view does not have to be republished as time passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.blockkit.alerts import slack_date
from bot.blockkit.escape import escape, fit, truncate
from bot.blockkit.labels import account_label

ACTION_NEW_POST = "home_new_post"
ACTION_SCHEDULE = "home_schedule_post"
ACTION_REFRESH = "home_refresh"
ACTION_JUMP = "home_jump"  # url buttons: Slack still tells the app, which only acks

NEW_POST_CALLBACK = "home_new_post_modal"
ACCOUNT_BLOCK, ACCOUNT_ACTION = "post_account", "post_account_select"
# a campaign (issue 21): the same post to more accounts, a variant each, one approval card
ALSO_BLOCK, ALSO_ACTION = "post_also", "post_also_select"
CAMPAIGN_BLOCK, CAMPAIGN_ACTION = "post_campaign", "post_campaign_name"
TEXT_BLOCK, TEXT_ACTION = "post_text", "post_text_input"
DATE_BLOCK, DATE_ACTION = "post_date", "post_date_pick"
TIME_BLOCK, TIME_ACTION = "post_time", "post_time_pick"

MAX_MENTIONS = 12
MAX_DRAFTS = 8
MAX_APPROVALS = 12

DRAFT_ICON = {"pending": ":hourglass_flowing_sand:", "approved": ":white_check_mark:",
              "publishing": ":rocket:", "published": ":globe_with_meridians:",
              "failed": ":warning:", "rejected": ":x:", "superseded": ":fast_forward:",
              "cancelled": ":heavy_minus_sign:", "expired": ":alarm_clock:"}


@dataclass(frozen=True)
class WaitingMention:
    ref: str
    service: str | None
    account_handle: str
    author_handle: str | None
    text: str
    arrived_at: datetime
    sla_due: datetime
    overdue: bool
    state: str  # open|claimed
    claimed_by: str | None
    link: str | None  # the alert message in its channel
    channel: str
    account_network: str = ""  # its network's key (integrations registry)
    priority: str = "normal"  # urgent ones come first (services/triage)
    sentiment: str | None = None
    private: bool = False  # a private message: its text is not shown here


@dataclass(frozen=True)
class DraftLine:
    ref: str
    kind: str
    account_handle: str
    text: str
    state: str
    author: str
    created_at: datetime
    scheduled_for: datetime | None
    mention_ref: str | None
    link: str | None  # the approval message
    published_url: str | None
    account_network: str = ""  # its network's key (integrations registry)


@dataclass(frozen=True)
class ServiceQueue:
    name: str
    waiting: int
    overdue: int
    oldest: datetime | None


@dataclass
class HomeData:
    user: str
    tz: ZoneInfo
    roles: list[str]
    services: list[str]
    banners: list[str] = field(default_factory=list)
    waiting: list[WaitingMention] = field(default_factory=list)
    waiting_total: int = 0
    drafts: list[DraftLine] = field(default_factory=list)
    approvals: list[DraftLine] | None = None  # None: not an approver/admin
    approvals_total: int = 0
    queues: list[ServiceQueue] | None = None  # admins: every service
    system: list[str] | None = None  # admins: health lines
    saved_replies: list[str] | None = None  # comms: the saved replies (mrkdwn, escaped)


def _md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": fit(text)}


def _section(text: str, url: str | None = None, label: str = "Open") -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": _md(text)}
    if url:
        block["accessory"] = {"type": "button", "action_id": ACTION_JUMP, "url": url,
                              "text": {"type": "plain_text", "text": label}}
    return block


def ago(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz).strftime("%d %b %H:%M")
    return f"<!date^{int(at.timestamp())}^{{ago}}|since {local}>"


def home_view(d: HomeData) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "commsdesk"}},
        {"type": "context", "elements": [_md(
            f"<@{d.user}> · {escape(', '.join(d.roles))}"
            + (f" · your services: {', '.join(escape(s) for s in d.services)}" if d.services
               else " · you are not in any service channel yet"))]},
    ]
    # banners and system lines: outside text in them is escaped where they are made
    blocks += [{"type": "section", "text": _md(b)} for b in d.banners[:4]]
    blocks.append({"type": "actions", "block_id": "home_buttons", "elements": [
        {"type": "button", "action_id": ACTION_NEW_POST, "style": "primary",
         "text": {"type": "plain_text", "text": "New post"}},
        {"type": "button", "action_id": ACTION_SCHEDULE,
         "text": {"type": "plain_text", "text": "Schedule a post"}},
        {"type": "button", "action_id": ACTION_REFRESH,
         "text": {"type": "plain_text", "text": "Refresh"}},
    ]})

    # mentions waiting in my services
    blocks.append({"type": "divider"})
    blocks.append(_section(f"*Mentions waiting in your services* ({d.waiting_total})"))
    if not d.waiting:
        blocks.append({"type": "context", "elements": [_md(
            "Nothing waiting. :sparkles:" if d.services
            else "Join your service's channel to see its mentions here.")]})
    for w in d.waiting:
        who = f"<@{w.claimed_by}> is on it" if w.state == "claimed" and w.claimed_by \
            else "unclaimed"
        due = (f":rotating_light: overdue since {slack_date(w.sla_due, d.tz)}" if w.overdue
               else f"reply due {slack_date(w.sla_due, d.tz)}")
        author = escape(f"@{w.author_handle}") if w.author_handle else "someone"
        flag = ":red_circle: *Urgent* · " if w.priority == "urgent" else ""
        tone = f" · {escape(w.sentiment)}" if w.sentiment else ""
        shown = ":lock: _private message_" if w.private else escape(truncate(w.text, 150))
        blocks.append(_section(
            f"{flag}*{w.ref}* · {escape(w.service or 'comms')} · {author} → {escape(account_label(w.account_handle, w.account_network))}{tone}"
            f"\n{shown}\n"
            f"_{ago(w.arrived_at, d.tz)} · {who} · {due}_", w.link))
    if d.waiting_total > len(d.waiting):
        blocks.append({"type": "context", "elements": [_md(
            f"…and {d.waiting_total - len(d.waiting)} more (newer) in the service channels.")]})

    # my drafts
    blocks.append({"type": "divider"})
    blocks.append(_section("*Your drafts*"))
    if not d.drafts:
        blocks.append({"type": "context", "elements": [_md(
            "No drafts yet: use *New post*, `/social post`, or *Draft reply* on an alert.")]})
    for dr in d.drafts:
        blocks.append(_section(_draft_text(dr, d.tz, mine=True),
                               dr.published_url or dr.link,
                               "View post" if dr.published_url else "Open"))

    # approvals
    if d.approvals is not None:
        blocks.append({"type": "divider"})
        blocks.append(_section(f"*Approval queue* ({d.approvals_total})"))
        if not d.approvals:
            blocks.append({"type": "context", "elements": [_md("No drafts waiting. :tada:")]})
        for dr in d.approvals:
            blocks.append(_section(_draft_text(dr, d.tz, mine=False), dr.link, "Review"))
        if d.approvals_total > len(d.approvals):
            blocks.append({"type": "context", "elements": [_md(
                f"…and {d.approvals_total - len(d.approvals)} more in the approvals channel.")]})

    if d.saved_replies is not None:  # the comms team keeps them (services/saved_replies)
        blocks.append({"type": "divider"})
        blocks.append(_section(f"*Saved replies* ({len(d.saved_replies)})\n"
                               + ("\n".join(d.saved_replies[:20]) or "None yet.")))
        blocks.append({"type": "context", "elements": [_md(
            "Keep them with `/social saved add|edit|remove &lt;[service/]name&gt; &lt;text&gt;`; "
            "`{author}`, `{ref}` and `{service}` are filled in when one is used.")]})
    if d.queues is not None:
        blocks.append({"type": "divider"})
        lines = [f"• *{escape(q.name)}*: {q.waiting} waiting"
                 + (f", {q.overdue} overdue" if q.overdue else "")
                 + (f", oldest {ago(q.oldest, d.tz)}" if q.oldest else "") for q in d.queues]
        blocks.append(_section("*Every service*\n" + ("\n".join(lines) or "No services.")))
    if d.system is not None:
        blocks.append(_section("*System*\n" + "\n".join(d.system)))
    return {"type": "home", "callback_id": "commsdesk_home", "blocks": blocks[:100]}


def _draft_text(dr: DraftLine, tz: ZoneInfo, *, mine: bool) -> str:
    what = f"reply to {dr.mention_ref}" if dr.mention_ref else "new post"
    extra = ""
    if dr.scheduled_for is not None:
        extra = f" · for {slack_date(dr.scheduled_for, tz)}"
    by = "" if mine else f" by <@{dr.author}>"
    return (f"{DRAFT_ICON.get(dr.state, '')} *{dr.ref}* · {what} as {escape(account_label(dr.account_handle, dr.account_network))}"
            f"{by} · {dr.state}{extra}\n{escape(truncate(dr.text, 150))}\n"
            f"_created {ago(dr.created_at, tz)}_")


# ---------------------------------------------------------------- new post modal


def new_post_modal(accounts: list[tuple[str, str]], *, schedule: bool, today: date,
                   tz_name: str) -> dict[str, Any]:
    """`accounts`: (name, label: blockkit.labels.account_label). With `schedule`, a date and a
    time (council time zone)."""
    options = [{"text": {"type": "plain_text", "text": label[:75]},
                "value": name} for name, label in accounts][:100]
    select: dict[str, Any] = {"type": "static_select", "action_id": ACCOUNT_ACTION,
                              "options": options}
    if options:
        select["initial_option"] = options[0]
    blocks: list[dict[str, Any]] = [
        {"type": "input", "block_id": ACCOUNT_BLOCK, "element": select,
         "label": {"type": "plain_text", "text": "Post as"}},
        {"type": "input", "block_id": TEXT_BLOCK,
         "label": {"type": "plain_text", "text": "Your post"},
         "element": {"type": "plain_text_input", "action_id": TEXT_ACTION, "multiline": True,
                     "min_length": 1, "max_length": 3000}},
    ]
    if len(options) > 1:
        blocks += [
            {"type": "input", "block_id": ALSO_BLOCK, "optional": True,
             "label": {"type": "plain_text", "text": "Also post to (a campaign: one card)"},
             "element": {"type": "multi_static_select", "action_id": ALSO_ACTION,
                         "options": options,
                         "placeholder": {"type": "plain_text", "text": "More accounts"}}},
            {"type": "input", "block_id": CAMPAIGN_BLOCK, "optional": True,
             "label": {"type": "plain_text", "text": "Campaign name (tags the posts)"},
             "element": {"type": "plain_text_input", "action_id": CAMPAIGN_ACTION,
                         "max_length": 128}},
        ]
    if schedule:
        blocks += [
            {"type": "input", "block_id": DATE_BLOCK,
             "label": {"type": "plain_text", "text": "Date"},
             "element": {"type": "datepicker", "action_id": DATE_ACTION,
                         "initial_date": (today + timedelta(days=1)).isoformat()}},
            {"type": "input", "block_id": TIME_BLOCK,
             "label": {"type": "plain_text", "text": f"Time ({tz_name})"},
             "element": {"type": "timepicker", "action_id": TIME_ACTION,
                         "initial_time": "09:00"}},
        ]
    blocks.append({"type": "context", "elements": [_md(
        "Nothing is published until a member of the comms team approves it.")]})
    return {
        "type": "modal", "callback_id": NEW_POST_CALLBACK,
        "private_metadata": "schedule" if schedule else "post",
        "title": {"type": "plain_text", "text": "Schedule a post" if schedule else "New post"},
        "submit": {"type": "plain_text", "text": "Send for approval"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }
