"""Stats from the database: `/social stats` and `commsdesk stats` (figures in domain/stats)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from bot.blockkit.escape import escape, truncate
from bot.clock import now
from bot.config import Config
from bot.domain import stats
from bot.domain.stats import (
    UNROUTED,
    Figures,
    MentionFacts,
    Period,
    PeriodError,
    PublishedFacts,
)
from bot.domain.triage import service_sla_hours, urgent_sla_hours
from bot.domain.working_hours import WorkingHours
from bot.models import Account, Alert, Draft, DraftGroupItem, Mention
from bot.runtime import Runtime
from bot.services import inbox


def arrival(m: Mention) -> datetime:
    """When the resident's clock started: the post's time (never after we fetched it)."""
    if m.posted_at is None:
        return m.fetched_at
    return min(m.posted_at, m.fetched_at)


def mention_services(s: Session, mention_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    out: dict[int, set[str]] = defaultdict(set)
    for i in range(0, len(mention_ids), 500):
        chunk = list(mention_ids[i:i + 500])
        for mid, service in s.execute(select(Alert.mention_id, Alert.service).where(
                Alert.mention_id.in_(chunk), Alert.active.is_(True), Alert.service.is_not(None))):
            out[mid].add(service)
    return {mid: tuple(sorted(v)) for mid, v in out.items()}


def first_replies(s: Session, mention_ids: Sequence[int]) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    for i in range(0, len(mention_ids), 500):
        chunk = list(mention_ids[i:i + 500])
        out.update({mid: at for mid, at in s.execute(
            select(Draft.mention_id, func.min(Draft.published_at))
            .where(Draft.mention_id.in_(chunk), Draft.kind == "reply",
                   Draft.published_at.is_not(None))
            .group_by(Draft.mention_id)) if mid is not None and at is not None})
    return out


def facts_for(s: Session, cfg: Config, mentions: Sequence[tuple[Mention, str]]
              ) -> list[MentionFacts]:
    ids = [m.id for m, _ in mentions]
    services = mention_services(s, ids)
    replies = first_replies(s, ids)
    out = []
    for m, account in mentions:
        svcs = services.get(m.id, ())
        sla = min((service_sla_hours(cfg, x) for x in svcs),
                  default=service_sla_hours(cfg, None))
        if m.priority == "urgent":  # urgent ones have the shorter target (services/triage)
            sla = min(sla, *(urgent_sla_hours(cfg, x) for x in svcs or (None,)))
        out.append(MentionFacts(
            id=m.id, account=account, services=svcs, arrived_at=arrival(m), sla_hours=sla,
            claimed_at=m.claimed_at, replied_at=replies.get(m.id),
            closed_at=m.closed_at if m.state == "closed" else None))
    return out


def load_mentions(s: Session, cfg: Config, period: Period) -> list[MentionFacts]:
    """Every mention that arrived in the period."""
    rows = s.execute(
        select(Mention, Account.name).join(Account, Account.id == Mention.account_id)
        .where(Mention.fetched_at >= period.start,
               or_(Mention.fetched_at < period.end,
                   and_(Mention.posted_at.is_not(None), Mention.posted_at < period.end)))
        .order_by(Mention.id)).all()
    chosen = [(m, name) for m, name in rows if period.contains(arrival(m))]
    return facts_for(s, cfg, chosen)


def load_published(s: Session, period: Period) -> list[PublishedFacts]:
    rows = s.execute(
        select(Draft.id, Draft.kind, Draft.mention_id, Draft.published_at, Account.name)
        .join(Account, Account.id == Draft.account_id)
        .where(Draft.published_at >= period.start, Draft.published_at < period.end)).all()
    services = mention_services(s, [r.mention_id for r in rows if r.mention_id is not None])
    campaigns = campaigns_of(s, [r.id for r in rows if r.kind != "reply"])
    return [PublishedFacts(r.kind, r.name, services.get(r.mention_id, ()) if r.mention_id
                           else (), r.published_at, campaigns.get(r.id)) for r in rows]


def campaigns_of(s: Session, draft_ids: Sequence[int]) -> dict[int, str]:
    """The campaign that tagged each draft (a campaign card's or a CSV row's), if any."""
    out: dict[int, str] = {}
    for i in range(0, len(draft_ids), 500):
        out.update({did: name for did, name in s.execute(
            select(DraftGroupItem.draft_id, func.min(DraftGroupItem.campaign))
            .where(DraftGroupItem.draft_id.in_(list(draft_ids[i:i + 500])),
                   DraftGroupItem.campaign.is_not(None))
            .group_by(DraftGroupItem.draft_id)) if name})
    return out


# ---------------------------------------------------------------- scopes


@dataclass(frozen=True)
class Scope:
    kind: str  # all|service|account
    name: str = ""

    @property
    def label(self) -> str:
        return {"all": "all services", "service": f"service {self.name}",
                "account": f"account {self.name}"}[self.kind]


def resolve_scope(cfg: Config, word: str | None) -> Scope:
    if not word or word.lower() in ("all", "*"):
        return Scope("all")
    name = word.lower().lstrip("@")
    if any(svc.name == name for svc in cfg.services):
        return Scope("service", name)
    acc = next((a for a in cfg.accounts
                if a.name == name or a.handle.lower() == name), None)
    if acc is not None:
        return Scope("account", acc.name)
    services = ", ".join(x.name for x in cfg.services) or "none"
    accounts = ", ".join(a.name for a in cfg.accounts) or "none"
    raise PeriodError(f"`{word}` is neither a service nor an account. "
                      f"Services: {services}. Accounts: {accounts}.")


def split_args(cfg: Config, words: Sequence[str], at: datetime) -> tuple[Scope, Period]:
    """`[service|account] [period]` in either order."""
    scope_word: str | None = None
    period_word: str | None = None
    for w in words:
        try:
            stats.parse_period(w, at, cfg.tz)
        except PeriodError:
            if stats.looks_like_period(w):
                raise
            if scope_word is not None:
                raise PeriodError(f"`{w}` is not a period (7d, 30d, YYYY-MM or YYYY-Www), "
                                  f"and `{scope_word}` is already the scope.") from None
            scope_word = w
        else:
            if period_word is not None:
                raise PeriodError("Give one period only.")
            period_word = w
    return resolve_scope(cfg, scope_word), stats.parse_period(period_word, at, cfg.tz)


def table(s: Session, cfg: Config, scope: Scope, period: Period, at: datetime
          ) -> list[Figures]:
    """The figures for a scope; for "all", the total first, then each service and account."""
    hours = WorkingHours.from_config(cfg)  # outcomes as known at `at` (answers may come later)
    mentions = load_mentions(s, cfg, period)
    published = load_published(s, period)

    def for_service(name: str) -> Figures:
        own = service_sla_hours(cfg, None if name == UNROUTED else name)  # the service's own target
        return stats.compute(name, [replace(m, sla_hours=own) for m in mentions
                                    if stats.in_service(name, m.services)],
                             [p for p in published if p.kind == "reply"
                              and stats.in_service(name, p.services)], hours, at)

    def for_account(name: str) -> Figures:
        return stats.compute(f"@{name}", [m for m in mentions if m.account == name],
                             [p for p in published if p.account == name], hours, at)

    if scope.kind == "service":
        return [for_service(scope.name)]
    if scope.kind == "account":
        return [for_account(scope.name)]
    rows = [stats.compute("all", mentions, published, hours, at)]
    rows += [for_service(svc.name) for svc in cfg.services]
    if any(not m.services for m in mentions):
        rows.append(for_service(UNROUTED))
    rows += [for_account(a.name) for a in cfg.accounts]
    return rows


def total_figures(s: Session, cfg: Config, period: Period, at: datetime) -> Figures:
    """The figures for every mention and post of the period."""
    hours = WorkingHours.from_config(cfg)
    return stats.compute("all", load_mentions(s, cfg, period), load_published(s, period),
                         hours, at)


# ---------------------------------------------------------------- presentation

COLUMNS = ("scope", "mentions_in", "replies_out", "posts_out", "claim_p50_h", "claim_p90_h",
           "reply_p50_h", "reply_p90_h", "sla_met_pct", "sla_due", "busiest_hours")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def row_values(f: Figures) -> list[str]:
    pct = f.sla_met_pct
    return [f.scope, str(f.mentions_in), str(f.replies_out), str(f.posts_out),
            _num(f.claim_p50), _num(f.claim_p90), _num(f.reply_p50), _num(f.reply_p90),
            "" if pct is None else f"{pct:.1f}", str(f.sla_due),
            " ".join(f"{h:02d}:00({n})" for h, n in f.busiest_hours)]


def to_csv(rows: Sequence[Figures]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in rows:
        writer.writerow(row_values(f))
    return buf.getvalue()


def to_table(rows: Sequence[Figures]) -> str:
    header = ["scope", "in", "replies", "posts", "claim p50", "claim p90", "reply p50",
              "reply p90", "SLA met", "busiest hours"]
    body = [[f.scope, str(f.mentions_in), str(f.replies_out), str(f.posts_out),
             stats.hours_text(f.claim_p50), stats.hours_text(f.claim_p90),
             stats.hours_text(f.reply_p50), stats.hours_text(f.reply_p90),
             stats.pct_text(f.sla_met_pct) + (f" of {f.sla_due}" if f.sla_due else ""),
             stats.busiest_text(f.busiest_hours)] for f in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in (0, 9) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)]) + "\n"


def _figures_lines(f: Figures) -> list[str]:
    return [
        f"Mentions in: *{f.mentions_in}* · Replies out: *{f.replies_out}*"
        + (f" · New posts: *{f.posts_out}*" if f.posts_out else ""),
        f"Time to first claim: p50 {stats.hours_text(f.claim_p50)} · "
        f"p90 {stats.hours_text(f.claim_p90)}",
        f"Time to reply: p50 {stats.hours_text(f.reply_p50)} · "
        f"p90 {stats.hours_text(f.reply_p90)}",
        f"SLA met: {stats.pct_text(f.sla_met_pct)}"
        + (f" ({f.sla_met} of {f.sla_due} due)" if f.sla_due else " (none due yet)"),
        f"Busiest hours: {stats.busiest_text(f.busiest_hours)}",
    ]


def slack_text(rows: Sequence[Figures], scope: Scope, period: Period, cfg: Config) -> str:
    first = rows[0]
    lines = [f":bar_chart: *Stats · {period.label}* · {scope.label}",
             *_figures_lines(first),
             "_Times are working hours (office hours, no weekends or bank holidays)._"]
    if scope.kind == "all" and len(rows) > 1:
        lines.append("")
        lines.append("```" + to_table(rows).rstrip() + "```")
    return "\n".join(lines)


MAX_CAMPAIGNS = 10  # lines in /social stats; the rest counted in one line


def campaign_lines(s: Session, scope: Scope, period: Period) -> list[str]:
    """Published posts by campaign (issue 21), each by account: for every account, or
    the one asked about (a service's figures are its replies, which no campaign tags)."""
    if scope.kind == "service":
        return []
    published = [p for p in load_published(s, period)
                 if scope.kind == "all" or p.account == scope.name]
    figures = stats.by_campaign(published)
    if not figures:
        return []
    lines = ["", "*Campaigns* (posts published):"]
    for f in figures[:MAX_CAMPAIGNS]:
        accounts = ", ".join(f"{escape(name)} {n}" for name, n in f.accounts)
        lines.append(f"• {escape(truncate(f.name, 80))}: *{f.posts}* ({accounts})")
    if len(figures) > MAX_CAMPAIGNS:
        rest = figures[MAX_CAMPAIGNS:]
        lines.append(f"…and {len(rest)} more campaign(s), "
                     f"{sum(f.posts for f in rest)} post(s)")
    return lines


def stats_text(s: Session, cfg: Config, words: Sequence[str], at: datetime) -> str:
    """The answer to `/social stats ...` (raises PeriodError on bad words)."""
    scope, period = split_args(cfg, words, at)
    return "\n".join([slack_text(table(s, cfg, scope, period, at), scope, period, cfg),
                      *inbox.stats_lines(s, [scope.name] if scope.kind == "service" else None,
                                         period),
                      *campaign_lines(s, scope, period)])


def week_before(period: Period) -> Period:
    return Period(period.start - timedelta(days=7), period.start, "the week before")


def answer(rt: Runtime, args: Sequence[str]) -> str:
    """`/social stats` for Slack: the figures, or what was wrong with the words."""
    cfg = rt.settings.config
    try:
        with rt.sessions() as s:
            return stats_text(s, cfg, args, now())
    except PeriodError as err:
        return (f"{escape(truncate(str(err), 1000))}\n"
                "Use: `/social stats [service|account] [7d|30d|YYYY-MM]`")
