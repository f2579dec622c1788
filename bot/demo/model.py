"""What the page shows, built from the emulators' recorded state and the database."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy import select

from bot.demo import data
from bot.demo.mrkdwn import EMOJI, mrkdwn, plain
from bot.demo.stage import Stage
from bot.models import AuditEvent
from bot.runtime import Runtime

HOME = "home"
TZ = ZoneInfo("Europe/London")


def local_time(ts: str | float, with_date: bool = False) -> str:
    moment = datetime.fromtimestamp(float(ts), UTC).astimezone(TZ)
    return moment.strftime("%d %b %H:%M" if with_date else "%H:%M")


class Names:
    """Turns Slack ids into names, and Slack text objects into safe HTML."""

    def __init__(self, state: dict[str, Any]):
        self.users = {u["id"]: u["real_name"] or u["name"] for u in state["users"]}
        self.channels = {c["id"]: c.get("name") or c["id"] for c in state["channels"]}
        self.groups = {g["id"]: g["handle"] for g in state["usergroups"]}

    def user(self, uid: str | None) -> str:
        return self.users.get(uid or "", uid or "someone")

    def plain(self, text: str) -> str:
        """Text with Slack's people, group and channel markup (`<@U0PRIYA>`,
        `<!subteam^S0COMMS>`, `<#C0WASTE>`) turned into names; everything else as it is."""
        def name(m: re.Match[str]) -> str:
            kind, ident, label = m.group(1), m.group(2), m.group(3)
            if label:
                return ("#" if kind == "#" else "@") + label
            if kind == "@":
                return "@" + self.user(ident)
            if kind == "#":
                return "#" + self.channels.get(ident, ident)
            if kind == "!subteam^":
                return "@" + self.groups.get(ident, ident)
            return "@" + ident  # <!here>, <!channel>, <!everyone>
        return SLACK_MARKUP.sub(name, text)

    def md(self, text: str) -> Markup:
        return mrkdwn(text, user_name=self.user,
                      channel_name=lambda c: self.channels.get(c, c),
                      group_name=lambda g: self.groups.get(g, g))

    def text(self, obj: Any) -> Markup:
        """A Block Kit text object (mrkdwn or plain_text) as safe HTML."""
        if isinstance(obj, str):
            return self.md(obj)
        if not isinstance(obj, dict):
            return Markup("")
        if obj.get("type") == "mrkdwn":
            return self.md(str(obj.get("text") or ""))
        return plain(str(obj.get("text") or ""), with_emoji=obj.get("emoji") is not False)


@dataclass
class Item:
    """One message (or ephemeral) as shown in a channel."""

    ts: str
    channel: str
    author: str
    is_bot: bool
    time: str
    text: str
    blocks: list[dict[str, Any]]
    ephemeral: bool = False
    edited: bool = False
    reactions: list[dict[str, Any]] = field(default_factory=list)
    replies: list[Item] = field(default_factory=list)
    files: list[dict[str, str]] = field(default_factory=list)  # uploaded images (id, title)


def _reactions(msg: dict[str, Any], me: str, names: Names) -> list[dict[str, Any]]:
    out = []
    for r in msg.get("reactions") or []:
        who = ", ".join(names.user(u) for u in r["users"])
        out.append({"name": r["name"], "emoji": EMOJI.get(r["name"], f":{r['name']}:"),
                    "count": r["count"], "mine": me in r["users"], "who": who})
    return out


def _item(msg: dict[str, Any], me: str, names: Names, channel: str) -> Item:
    ephemeral = msg.get("source") is not None and "bot_id" not in msg
    is_bot = bool(msg.get("bot_id")) or ephemeral
    return Item(
        ts=msg["ts"], channel=channel,
        author="commsdesk" if is_bot else names.user(msg.get("user")),
        is_bot=is_bot, time=local_time(msg["ts"]), text=msg.get("text") or "",
        blocks=msg.get("blocks") or [], ephemeral=ephemeral, edited=bool(msg.get("edited")),
        reactions=[] if ephemeral else _reactions(msg, me, names),
        files=[{"id": str(f.get("id")), "title": str(f.get("title") or f.get("name") or ""),
                "alt": str(f.get("alt_txt") or f.get("title") or "an uploaded file")}
               for f in msg.get("files") or [] if f.get("id")],
    )


def timeline(state: dict[str, Any], channel_id: str, me: str, names: Names) -> list[Item]:
    """Top-level messages oldest first, each with its thread; my ephemerals mixed in."""
    channel = next((c for c in state["channels"] if c["id"] == channel_id), None)
    messages = channel["messages"] if channel else []
    tops: list[Item] = []
    replies: dict[str, list[Item]] = defaultdict(list)
    for msg in messages:
        parent = msg.get("thread_ts")
        if parent and parent != msg["ts"]:
            replies[parent].append(_item(msg, me, names, channel_id))
            if msg.get("subtype") != "thread_broadcast":
                continue
        tops.append(_item(msg, me, names, channel_id))
    top_ts = {t.ts for t in tops}
    for eph in state["ephemerals"]:
        if eph["user"] != me or eph["channel"] != channel_id:
            continue
        item = _item(eph, me, names, channel_id)
        if eph.get("thread_ts") in top_ts:
            replies[eph["thread_ts"]].append(item)
        else:
            tops.append(item)
    for top in tops:
        top.replies = sorted(replies.get(top.ts, []), key=lambda i: float(i.ts))
    return sorted(tops, key=lambda i: float(i.ts))


def sidebar(state: dict[str, Any], me: str, selected: str,
            seen: dict[str, float] | None = None) -> dict[str, Any]:
    """`seen`: per channel, the newest message `me` has seen there; the badges count the
    top-level messages after it (not `me`'s own); the open channel has none."""
    seen = seen or {}
    counts = {c["id"]: 0 if c["id"] == selected else sum(
        1 for m in c["messages"] if not m.get("parent_user_id") and m.get("user") != me
        and float(m["ts"]) > seen.get(c["id"], 0.0)) for c in state["channels"]}
    channels = [{"id": cid, "name": name, "purpose": purpose, "count": counts.get(cid, 0),
                 "selected": cid == selected} for cid, name, purpose in data.CHANNELS]
    dm = "D" + me[1:]
    has_dm = any(c["id"] == dm and c["messages"] for c in state["channels"])
    return {"channels": channels, "home_selected": selected == HOME,
            "dm": {"id": dm, "selected": selected == dm, "count": counts.get(dm, 0)}
            if has_dm else None}


def mark_seen(state: dict[str, Any], channel: str, seen: dict[str, float]) -> None:
    """`channel` is open: everything in it so far has been seen."""
    for c in state["channels"]:
        if c["id"] == channel and c["messages"]:
            seen[channel] = max(seen.get(channel, 0.0),
                                max(float(m["ts"]) for m in c["messages"]))


def open_modal(state: dict[str, Any], me: str) -> dict[str, Any] | None:
    modals = [v for v in state["views"]
              if v["type"] == "modal" and v["user"] == me and not v["closed"]]
    return modals[-1] if modals else None


def home_view(state: dict[str, Any], me: str) -> dict[str, Any] | None:
    homes = [v for v in state["views"] if v["type"] == "home" and v["user"] == me]
    return homes[-1] if homes else None


# --------------------------------------------------------------------- the public side


@dataclass
class Post:
    id: str
    author: str
    handle: str
    council: bool
    time: str
    text: str
    replies: list[Post] = field(default_factory=list)


def public_timelines(stage: Stage) -> list[dict[str, Any]]:
    """Per council account: mentions of it and its own posts, replies under their parent."""
    council = {a.user_id for a in data.ACCOUNTS}
    every = stage.posts()
    out = []
    for acc in data.ACCOUNTS:
        mine = [p for p in every if p.author_id == acc.user_id or (
            p.author_id not in council
            and p.mentions(acc))]
        posts = {p.id: Post(p.id, p.author, p.handle, p.author_id in council,
                            local_time(p.created_at.timestamp(), with_date=True), p.text)
                 for p in mine}
        roots: list[Post] = []
        for p in mine:
            if p.parent_id in posts:
                posts[p.parent_id].replies.append(posts[p.id])
            else:
                roots.append(posts[p.id])
        out.append({"account": acc, "posts": list(reversed(roots)), "count": len(mine)})
    return out


# --------------------------------------------------------------------- the audit trail

SUMMARY_KEYS = ("text", "reason", "routes", "attempted", "via", "version", "url",
                "published_url", "error", "service", "channel", "author")


SLACK_MARKUP = re.compile(r"<(@|#|!subteam\^|!)([A-Za-z0-9_]+)(?:\|([^<>]*))?>")


def _summary(action: str, details: dict[str, Any], names: Names) -> str:
    parts = []
    for key in SUMMARY_KEYS:
        value = details.get(key)
        if value in (None, "", []) or (key == "url" and action == "mention.received"):
            continue
        if key == "routes" and isinstance(value, list):
            value = ", ".join(f"#{data_channel_name(r.get('channel'))}" for r in value)
        text = names.users.get(str(value)) or names.plain(str(value))  # a bare user id too
        parts.append(f"{key}: {text[:140] + '…' if len(text) > 140 else text}")
    return " · ".join(parts)


def data_channel_name(cid: str | None) -> str:
    return next((name for c, name, _ in data.CHANNELS if c == cid), cid or "?")


def _subject(kind: str, sid: str) -> str:
    prefix = {"draft": "D", "mention": "M"}.get(kind)
    return f"{kind} {prefix}{sid}" if prefix and sid.isdigit() else f"{kind} {sid}"


def audit_rows(rt: Runtime, names: Names, limit: int = 150) -> tuple[list[dict[str, Any]], int]:
    with rt.sessions() as s:
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)))
        total = events[0].id if events else 0
        rows = [{
            "id": e.id, "time": local_time(e.at.timestamp()),
            "actor": "system" if e.actor == "system" else names.user(e.actor),
            "action": e.action, "subject": _subject(e.subject_kind, e.subject_id),
            "summary": _summary(e.action, e.details if isinstance(e.details, dict) else {},
                                names),
        } for e in events]
    return rows, total
