"""Insight figures: mentions in, replies out, response times in working hours, SLA met,
busiest hours. Pure computations over plain facts; `services/stats.py` loads them.

Definitions (also in docs/insight.md):
- a mention *arrives* when it was posted (or, if the network gave no time, fetched);
- *time to first claim*: arrival to "I'm on it";
- *time to reply*: arrival to the first published reply;
- a mention is *answered* by its first published reply or by "no reply needed";
- *SLA met*: answered within its service's SLA, counted over the mentions whose SLA
  has run out or that were answered (ones still inside their SLA are not counted yet);
- percentiles are nearest-rank: p50 of [1, 2, 3, 4] is 2, p90 is 4.
All durations are working hours (office hours, no weekends or bank holidays).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.working_hours import WorkingHours

UNROUTED = "(unrouted)"
DASH = "\u2013"  # an en dash, for ranges and "no figure"


@dataclass(frozen=True)
class MentionFacts:
    id: int
    account: str
    services: tuple[str, ...]  # the services it is routed to now (empty: nobody's)
    arrived_at: datetime
    sla_hours: float
    claimed_at: datetime | None = None
    replied_at: datetime | None = None  # first published reply
    closed_at: datetime | None = None  # "no reply needed"

    @property
    def answered_at(self) -> datetime | None:
        times = [t for t in (self.replied_at, self.closed_at) if t is not None]
        return min(times) if times else None


@dataclass(frozen=True)
class PublishedFacts:
    kind: str  # reply|post
    account: str
    services: tuple[str, ...]  # of the mention replied to
    published_at: datetime
    campaign: str | None = None  # the campaign that tagged it (issue 21)


@dataclass(frozen=True)
class Figures:
    scope: str
    mentions_in: int
    replies_out: int
    posts_out: int
    claim_p50: float | None
    claim_p90: float | None
    reply_p50: float | None
    reply_p90: float | None
    sla_due: int
    sla_met: int
    busiest_hours: tuple[tuple[int, int], ...]  # (local hour, mentions), busiest first

    @property
    def sla_met_pct(self) -> float | None:
        return None if not self.sla_due else 100.0 * self.sla_met / self.sla_due


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def sla_outcome(m: MentionFacts, hours: WorkingHours, at: datetime) -> bool | None:
    """True met, False missed, None not decided yet (unanswered and still inside its SLA)."""
    limit = m.sla_hours * 3600.0
    answered = m.answered_at
    if answered is not None and answered <= at:
        return hours.seconds_between(m.arrived_at, answered) <= limit + 1e-6
    if hours.seconds_between(m.arrived_at, at) > limit + 1e-6:
        return False
    return None


def compute(scope: str, mentions: Iterable[MentionFacts], published: Iterable[PublishedFacts],
            hours: WorkingHours, at: datetime, top_hours: int = 3) -> Figures:
    mentions = list(mentions)
    published = list(published)
    claims = [hours.hours_between(m.arrived_at, m.claimed_at) for m in mentions
              if m.claimed_at is not None and m.claimed_at <= at]
    replies = [hours.hours_between(m.arrived_at, m.replied_at) for m in mentions
               if m.replied_at is not None and m.replied_at <= at]
    outcomes = [sla_outcome(m, hours, at) for m in mentions]
    by_hour = Counter(m.arrived_at.astimezone(hours.tz).hour for m in mentions)
    busiest = tuple(sorted(by_hour.items(), key=lambda kv: (-kv[1], kv[0]))[:top_hours])
    return Figures(
        scope=scope,
        mentions_in=len(mentions),
        replies_out=sum(1 for p in published if p.kind == "reply"),
        posts_out=sum(1 for p in published if p.kind != "reply"),
        claim_p50=percentile(claims, 50), claim_p90=percentile(claims, 90),
        reply_p50=percentile(replies, 50), reply_p90=percentile(replies, 90),
        sla_due=sum(1 for o in outcomes if o is not None),
        sla_met=sum(1 for o in outcomes if o is True),
        busiest_hours=busiest,
    )


@dataclass(frozen=True)
class CampaignFigures:
    name: str
    posts: int
    accounts: tuple[tuple[str, int], ...]  # (account, posts published), most first


def by_campaign(published: Iterable[PublishedFacts]) -> list[CampaignFigures]:
    """Published posts per campaign (issue 21), each by account; most posts first.
    Posts no campaign tagged are not counted here."""
    counts: dict[str, Counter[str]] = {}
    for p in published:
        if p.campaign:
            counts.setdefault(p.campaign, Counter())[p.account] += 1
    out = [CampaignFigures(name, sum(c.values()),
                           tuple(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))))
           for name, c in counts.items()]
    return sorted(out, key=lambda f: (-f.posts, f.name))


def in_service(service: str, services: tuple[str, ...]) -> bool:
    return service in services or (service == UNROUTED and not services)


# ---------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    label: str

    def contains(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end


class PeriodError(ValueError):
    pass


_DAYS = re.compile(r"^(\d{1,3})d$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-?[Ww](\d{1,2})$")


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def iso_week(year: int, week: int, tz: ZoneInfo) -> Period:
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise PeriodError(f"{year}-W{week:02d} is not an ISO week") from None
    sunday = monday + timedelta(days=6)
    label = f"week {year}-W{week:02d} ({monday:%-d %b} {DASH} {sunday:%-d %b %Y})"
    return Period(_local_midnight(monday, tz), _local_midnight(monday + timedelta(days=7), tz),
                  label)


def week_of(day: date, tz: ZoneInfo) -> Period:
    year, week, _ = day.isocalendar()
    return iso_week(year, week, tz)


def last_full_week(at: datetime, tz: ZoneInfo) -> Period:
    return week_of(at.astimezone(tz).date() - timedelta(days=7), tz)


def week_key(p: Period, tz: ZoneInfo) -> str:
    year, week, _ = p.start.astimezone(tz).date().isocalendar()
    return f"{year}-W{week:02d}"


def looks_like_period(text: str) -> bool:
    return bool(re.match(r"^\d+d$|^\d{4}-\d{1,2}$|^\d{4}-?[Ww]\d+$", text.strip()))


def parse_period(text: str | None, at: datetime, tz: ZoneInfo) -> Period:
    """`7d`, `30d` (up to now), `YYYY-MM` (a calendar month) or `YYYY-Www` (an ISO week)."""
    value = (text or "7d").strip().lower()
    m = _DAYS.match(value)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= 366:
            raise PeriodError("give between 1d and 366d")
        return Period(at - timedelta(days=n), at, f"last {n} day{'s' if n > 1 else ''}")
    m = _MONTH.match(value)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise PeriodError(f"{value} is not a month (YYYY-MM)")
        first = date(year, month, 1)
        after = date(year + (month == 12), month % 12 + 1, 1)
        return Period(_local_midnight(first, tz), _local_midnight(after, tz),
                      f"{first:%B %Y}")
    m = _WEEK.match(value)
    if m:
        return iso_week(int(m.group(1)), int(m.group(2)), tz)
    raise PeriodError(f"`{text}` is not a period: use 7d, 30d, YYYY-MM or YYYY-Www")


# ---------------------------------------------------------------- presentation


def hours_text(value: float | None) -> str:
    if value is None:
        return DASH
    if value < 1:
        return f"{round(value * 60)} min"
    return f"{value:.1f} h"


def pct_text(value: float | None) -> str:
    return DASH if value is None else f"{value:.0f}%"


def busiest_text(busiest: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"{hour_range(h)} ({n})" for h, n in busiest) or DASH


def hour_range(hour: int) -> str:
    return f"{hour:02d}:00{DASH}{(hour + 1) % 24:02d}:00"
