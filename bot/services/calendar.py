"""The publishing calendar (issue 21): scheduled and published posts of a week, by day and
account, with what is still waiting for approval and the pre-election (purdah) periods.

One model, four faces: text for `commsdesk calendar`, Block Kit for `/social calendar`
and App Home, and iCalendar (`--ics`, and the authenticated feed on `serve`) that Outlook
can subscribe to."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from icalendar import Calendar as ICal
from icalendar import Event
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from bot.blockkit.escape import escape, fit, truncate
from bot.clock import now
from bot.config import Config, PurdahPeriod
from bot.models import Account, Draft, DraftGroupItem

WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)
SHOWN_STATES = ("pending", "approved", "publishing", "published", "failed", "expired")
STATE_LABEL = {"pending": "waiting for approval", "approved": "scheduled",
               "publishing": "publishing", "published": "published", "failed": "failed",
               "expired": "missed (approved too late)"}
STATE_ICON = {"pending": ":hourglass:", "approved": ":calendar:",
              "publishing": ":arrows_counterclockwise:", "published": ":white_check_mark:",
              "failed": ":warning:", "expired": ":alarm_clock:"}


class WeekError(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    draft_id: int
    ref: str
    account: str
    network: str
    state: str
    at: datetime  # UTC: published_at when published, else scheduled_for
    text: str
    url: str | None
    campaign: str | None

    @property
    def waiting(self) -> bool:
        return self.state == "pending"


@dataclass
class Calendar:
    start: date  # first day shown (a Monday for a week)
    days: int
    tz: tzinfo
    entries: list[Entry] = field(default_factory=list)
    purdah: list[PurdahPeriod] = field(default_factory=list)

    @property
    def key(self) -> str:
        y, w, _ = self.start.isocalendar()
        return f"{y}-W{w:02d}"

    def day_list(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def on(self, day: date) -> list[Entry]:
        return [e for e in self.entries if e.at.astimezone(self.tz).date() == day]

    def purdah_on(self, day: date) -> list[PurdahPeriod]:
        return [p for p in self.purdah if p.start <= day <= p.end]


def week_start(key: str | None, tz: tzinfo, at: datetime) -> date:
    """The Monday of ISO week `YYYY-Www` (default: this week, in the council's time zone)."""
    if not key:
        today = at.astimezone(tz).date()
        return today - timedelta(days=today.weekday())
    m = WEEK.match(key.strip())
    if not m:
        raise WeekError(f"`{truncate(key, 40)}` is not an ISO week: use YYYY-Www, "
                        "e.g. 2026-W05.")
    try:
        return date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise WeekError(f"{m.group(1)} has no week {int(m.group(2))}.") from None


def _utc(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def build(s: Session, cfg: Config, start: date, days: int = 7) -> Calendar:
    tz = cfg.tz
    lo, hi = _utc(start, tz), _utc(start + timedelta(days=days), tz)
    cal = Calendar(start, days, tz)
    q = (select(Draft, Account).join(Account, Account.id == Draft.account_id)
         .where(Draft.state.in_(SHOWN_STATES), Draft.purged_at.is_(None),
                or_(and_(Draft.state == "published", Draft.published_at >= lo,
                         Draft.published_at < hi),
                    and_(Draft.state != "published", Draft.scheduled_for >= lo,
                         Draft.scheduled_for < hi))))
    rows = s.execute(q).all()
    ids = [d.id for d, _ in rows]
    campaigns: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        campaigns.update(dict(s.execute(
            select(DraftGroupItem.draft_id, DraftGroupItem.campaign)
            .where(DraftGroupItem.draft_id.in_(ids[i:i + 500]),
                   DraftGroupItem.campaign.is_not(None))).all()))
    for d, a in rows:
        at = d.published_at if d.state == "published" else d.scheduled_for
        if at is None:
            continue
        cal.entries.append(Entry(d.id, d.ref, a.name, a.network, d.state, at, d.text,
                                 d.published_url, campaigns.get(d.id)))
    cal.entries.sort(key=lambda e: (e.at, e.account, e.draft_id))
    last = start + timedelta(days=days - 1)
    cal.purdah = [p for p in cfg.purdah if p.start <= last and p.end >= start]
    return cal


def _period_line(p: PurdahPeriod) -> str:
    who = ", ".join(p.accounts) if p.accounts else "every account"
    rule = ("nothing is published" if p.rule == "block"
            else "a second approval is needed")
    return f"{p.name} ({p.start:%a %d %b} to {p.end:%a %d %b}, {who}): {rule}"


def text(cal: Calendar) -> str:
    """Plain text for the command line."""
    end = cal.start + timedelta(days=cal.days - 1)
    lines = [f"Week {cal.key} ({cal.start:%a %d %b} to {end:%a %d %b %Y})"]
    for p in cal.purdah:
        lines.append(f"Purdah: {_period_line(p)}")
    waiting = sum(1 for e in cal.entries if e.waiting)
    lines.append(f"{len(cal.entries)} post(s); {waiting} waiting for approval")
    for day in cal.day_list():
        lines.append("")
        marks = "".join(f"  [purdah: {p.name}]" for p in cal.purdah_on(day))
        lines.append(f"{day:%a %d %b}{marks}")
        entries = cal.on(day)
        if not entries:
            lines.append("  nothing")
        for account in sorted({e.account for e in entries}):
            lines.append(f"  {account}")
            for e in (x for x in entries if x.account == account):
                extra = f" [{e.campaign}]" if e.campaign else ""
                url = f" {e.url}" if e.url else ""
                lines.append(f"    {e.at.astimezone(cal.tz):%H:%M} {e.ref} "
                             f"{STATE_LABEL[e.state]}{extra}: "
                             f"{truncate(' '.join(e.text.split()), 80)}{url}")
    return "\n".join(lines)


def blocks(cal: Calendar, *, max_blocks: int = 20) -> list[dict[str, Any]]:
    """Block Kit: a header, the purdah periods, then one section per day (by account)."""
    end = cal.start + timedelta(days=cal.days - 1)
    waiting = sum(1 for e in cal.entries if e.waiting)
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text",
                                    "text": f"Calendar · week {cal.key}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"{cal.start:%a %d %b} to {end:%a %d %b %Y} · {len(cal.entries)} post(s) · "
            f"{waiting} waiting for approval")}]}]
    for p in cal.purdah:
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": fit(
            f":ballot_box_with_ballot: *Purdah*: {escape(_period_line(p))}")}})
    for day in cal.day_list():
        entries = cal.on(day)
        marks = "".join(f" · :ballot_box_with_ballot: {escape(p.name)}"
                        for p in cal.purdah_on(day))
        lines = [f"*{day:%a %d %b}*{marks}"]
        if not entries:
            lines.append("_nothing_")
        for account in sorted({e.account for e in entries}):
            lines.append(f"*{escape(account)}*")
            for e in (x for x in entries if x.account == account):
                extra = f" · {escape(truncate(e.campaign, 40))}" if e.campaign else ""
                lines.append(f"{STATE_ICON[e.state]} {e.at.astimezone(cal.tz):%H:%M} {e.ref} "
                             f"{STATE_LABEL[e.state]}{extra}: "
                             f"{escape(truncate(' '.join(e.text.split()), 70))}")
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": fit("\n".join(lines))}})
    return out[:max_blocks]


def ics(cal: Calendar, name: str = "commsdesk") -> bytes:
    """An iCalendar (RFC 5545) feed: each post an event, each purdah period all-day."""
    feed = ICal()
    feed.add("prodid", "-//commsdesk//publishing calendar//EN")
    feed.add("version", "2.0")
    feed.add("x-wr-calname", f"{name} publishing calendar")
    stamp = datetime.now(UTC).replace(microsecond=0)
    for e in cal.entries:
        ev = Event()
        ev.add("uid", f"draft-{e.draft_id}@commsdesk")
        ev.add("dtstamp", stamp)
        ev.add("dtstart", e.at.astimezone(UTC).replace(microsecond=0))
        ev.add("dtend", (e.at + timedelta(minutes=15)).astimezone(UTC).replace(microsecond=0))
        ev.add("summary", f"[{e.account}] {STATE_LABEL[e.state]}: "
                          f"{truncate(' '.join(e.text.split()), 60)}")
        ev.add("description", e.text + (f"\n{e.url}" if e.url else ""))
        ev.add("status", "TENTATIVE" if e.waiting else "CONFIRMED")
        if e.campaign:
            ev.add("categories", [e.campaign])
        if e.url:
            ev.add("url", e.url)
        feed.add_component(ev)
    for i, p in enumerate(cal.purdah):
        ev = Event()
        ev.add("uid", f"purdah-{p.start.isoformat()}-{i}@commsdesk")
        ev.add("dtstamp", stamp)
        ev.add("dtstart", p.start)
        ev.add("dtend", p.end + timedelta(days=1))
        ev.add("summary", f"Purdah: {p.name}")
        ev.add("description", _period_line(p))
        ev.add("transp", "TRANSPARENT")
        feed.add_component(ev)
    return feed.to_ical()


def feed_range(cfg: Config, at: datetime) -> tuple[date, int]:
    """What the subscribed feed covers: four weeks back to thirteen ahead."""
    monday = week_start(None, cfg.tz, at)
    return monday - timedelta(weeks=4), 7 * 17


HOME_MAX_BLOCKS = 100  # Slack's limit for a Home tab


def add_to_home(rt: Any, s: Session, view: dict[str, Any]) -> dict[str, Any]:
    """App Home's week view: this week's calendar after what Home already shows (within
    Slack's 100 blocks)."""
    cfg = rt.settings.config
    room = HOME_MAX_BLOCKS - len(view.get("blocks") or []) - 1
    if room < 3:
        return view
    cal = build(s, cfg, week_start(None, cfg.tz, now()))
    view["blocks"] = [*view["blocks"], {"type": "divider"}, *blocks(cal, max_blocks=room)]
    return view
