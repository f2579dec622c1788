"""App Home: what each person sees, published with views.publish when they open the
tab, and republished when what it shows changes (a digest of the last view is kept, so
an unchanged Home is not sent again: Slack's views.publish limits are respected)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot import logs
from bot.blockkit import home as hb
from bot.blockkit.escape import account_link_hosts, allowed_url, escape, truncate
from bot.blockkit.home import (
    MAX_APPROVALS,
    MAX_DRAFTS,
    MAX_MENTIONS,
    DraftLine,
    HomeData,
    ServiceQueue,
    WaitingMention,
    ago,
    home_view,
    new_post_modal,
)
from bot.blockkit.labels import account_label
from bot.clock import now
from bot.config import Config
from bot.db import reading, transaction
from bot.domain import slash
from bot.domain.triage import sla_hours
from bot.domain.working_hours import WorkingHours
from bot.models import (
    Account,
    Alert,
    Draft,
    FollowerSnapshot,
    HomeView,
    Mention,
    OutboxMessage,
    Pause,
    PollCursor,
)
from bot.runtime import Runtime
from bot.services import calendar, campaigns, drafting, saved_replies
from bot.services.stats import arrival

log = logs.get("commsdesk.home")

CACHE_SECONDS = 60.0
KEEP_FRESH_DAYS = 14  # homes opened within this are kept current
REFRESH_BATCH = 50  # views.publish calls per refresh pass at most
OPEN_DRAFTS = ("pending", "approved", "publishing", "failed", "expired")
COMMS = "comms"  # the default channel's mentions, shown as this "service"

_lock = threading.Lock()


def _cache(rt: Runtime) -> dict[str, tuple[float, Any]]:
    """Per running bot: channel members and the workspace URL, kept CACHE_SECONDS."""
    return vars(rt).setdefault("_home_cache", {})  # type: ignore[no-any-return]


def _cached(rt: Runtime, key: str, fetch: Any) -> Any:
    with _lock:
        hit = _cache(rt).get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
    value = fetch()
    with _lock:
        _cache(rt)[key] = (time.monotonic(), value)
    return value


def forget(rt: Runtime) -> None:
    with _lock:
        _cache(rt).clear()


def channel_members(rt: Runtime, channel: str) -> frozenset[str]:
    def fetch() -> frozenset[str]:
        members: set[str] = set()
        cursor = None
        try:
            for _ in range(20):
                resp = rt.slack.conversations_members(channel=channel, limit=1000,
                                                      cursor=cursor)
                members |= set(resp.get("members") or [])
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("channel members unavailable", channel=channel, error=str(exc))
        return frozenset(members)

    return _cached(rt, f"members:{channel}", fetch)  # type: ignore[no-any-return]


def team_url(rt: Runtime) -> str | None:
    def fetch() -> str | None:
        try:
            return str(rt.slack.auth_test().get("url") or "") or None
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("auth.test failed", error=str(exc))
            return None

    return _cached(rt, "team_url", fetch)  # type: ignore[no-any-return]


def permalink(base: str | None, channel: str | None, ts: str | None) -> str | None:
    """Slack's message link (https://<team>.slack.com/archives/<channel>/p<ts digits>)."""
    if not base or not channel or not ts:
        return None
    return f"{base.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


# ---------------------------------------------------------------- who is who


def roles(rt: Runtime, user: str) -> tuple[bool, bool, list[str]]:
    """(comms approver, admin, accounts this person may approve for)."""
    cfg = rt.settings.config
    members = rt.approvers.members_of
    comms = user in members(cfg.slack.approvers_usergroup)
    admins = cfg.slack.admins_usergroup
    admin = bool(admins) and user in members(admins)
    accounts = [a.name for a in cfg.accounts if comms or (
        a.approvers_usergroup and user in members(a.approvers_usergroup))]
    return comms, admin, accounts


def user_services(rt: Runtime, user: str) -> list[str]:
    """The services whose channel this person is in (or whose drafters group has them)."""
    cfg = rt.settings.config
    out = []
    for svc in cfg.services:
        group = svc.drafters_usergroup
        if user in channel_members(rt, svc.channel) or (
                group and user in rt.approvers.members_of(group)):
            out.append(svc.name)
    if user in channel_members(rt, cfg.slack.default_channel):
        out.append(COMMS)
    return out


# ---------------------------------------------------------------- what a Home shows


def _banners(s: Session, cfg: Config, at: datetime) -> list[str]:
    out = []
    for pause, handle, network in s.execute(
            select(Pause, Account.handle, Account.network).outerjoin(Account, Account.id == Pause.account_id)
            .where(Pause.resumed_at.is_(None)).order_by(Pause.id)):
        what = escape(account_label(handle, network)) if handle else "every account"
        out.append(f":octagonal_sign: *Publishing paused* for {what} by <@{pause.paused_by}> "
                   f"({ago(pause.paused_at, cfg.tz)}): {escape(truncate(pause.reason, 500))}. "
                   "Alerts still arrive; approved drafts wait.")
    today = at.astimezone(cfg.tz).date()
    for period in cfg.purdah:
        if not period.start <= today <= period.end:
            continue
        scope = ", ".join(escape(account_label(a.handle, a.network)) for a in cfg.accounts
                          if not period.accounts or a.name in period.accounts)
        rule = ("publishing is blocked" if period.rule == "block"
                else "a second approval is required")
        out.append(f":ballot_box_with_ballot: *{period.name}* (pre-election period) until "
                   f"{period.end:%d %B %Y} for {scope}: {rule}.")
    return out


def _waiting(rt: Runtime, s: Session, services: list[str] | None, at: datetime
             ) -> list[tuple[WaitingMention, str]]:
    """Unanswered mentions in these services (None: all), oldest first, with their service."""
    cfg = rt.settings.config
    hours = WorkingHours.from_config(cfg)
    q = (select(Alert, Mention, Account.handle, Account.network)
         .join(Mention, Mention.id == Alert.mention_id)
         .join(Account, Account.id == Mention.account_id)
         .where(Alert.active.is_(True), Mention.state.in_(("open", "claimed")))
         .order_by(Mention.id).limit(2000))
    if services is not None:
        named = [x for x in services if x != COMMS]
        cond = Alert.service.in_(named)
        if COMMS in services:
            cond = cond | (Alert.service.is_(None) & (Alert.channel == cfg.slack.default_channel))
        q = q.where(cond)
    base = team_url(rt)
    seen: set[int] = set()
    out = []
    for alert, mention, handle, network in s.execute(q):
        if mention.id in seen:
            continue
        seen.add(mention.id)
        arrived = arrival(mention)
        due = hours.add(arrived, sla_hours(cfg, alert.service, mention.priority) * 3600.0)
        out.append((WaitingMention(
            ref=mention.ref, service=alert.service, account_handle=handle,
            author_handle=mention.author_handle, text=mention.text, arrived_at=arrived,
            sla_due=due, overdue=at >= due, state=mention.state, claimed_by=mention.claimed_by,
            link=permalink(base, alert.channel, alert.ts), channel=alert.channel,
            account_network=network, priority=mention.priority, sentiment=mention.sentiment,
            private=mention.origin == "private"),
            alert.service or COMMS))
    # urgent ones jump the queue (services/triage), then oldest first
    out.sort(key=lambda wm: (wm[0].priority != "urgent", wm[0].arrived_at, wm[0].ref))
    return out


def _draft_line(d: Draft, handle: str, mention_ref: str | None, base: str | None,
                network: str) -> DraftLine:
    return DraftLine(ref=d.ref, kind=d.kind, account_handle=handle, text=d.text, state=d.state,
                     author=d.author, created_at=d.created_at, scheduled_for=d.scheduled_for,
                     mention_ref=mention_ref,
                     link=permalink(base, d.approval_channel, d.approval_ts),
                     published_url=d.published_url, account_network=network)


def _drafts(s: Session, q: Any, base: str | None, cfg: Config) -> list[DraftLine]:
    rows = s.execute(q.join(Account, Account.id == Draft.account_id)
                     .add_columns(Account.handle, Account.name, Account.network)).all()
    out = []
    for d, handle, name, network in rows:
        line = _draft_line(d, handle, f"M{d.mention_id}" if d.mention_id else None, base,
                           network)
        hosts = account_link_hosts(network, cfg.account(name))
        if line.published_url and allowed_url(line.published_url, hosts) is None:
            line = dataclasses.replace(line, published_url=None)  # never a button to elsewhere
        out.append(line)
    return out


def home_data(rt: Runtime, s: Session, user: str) -> HomeData:
    cfg = rt.settings.config
    at = now()
    comms, admin, approve_for = roles(rt, user)
    services = user_services(rt, user)
    labels = (["comms approver"] if comms else
              [f"approver for {', '.join(approve_for)}"] if approve_for else ["drafter"])
    if admin:
        labels.append("admin")
    base = team_url(rt)
    data = HomeData(user=user, tz=cfg.tz, roles=labels,
                    services=[x for x in services if x != COMMS] + (
                        [f"{COMMS} (unrouted)"] if COMMS in services else []),
                    banners=_banners(s, cfg, at))
    waiting = _waiting(rt, s, services, at)
    data.waiting = [w for w, _ in waiting[:MAX_MENTIONS]]
    data.waiting_total = len(waiting)
    open_first = [Draft.author == user]
    data.drafts = _drafts(s, select(Draft).where(*open_first, Draft.state.in_(OPEN_DRAFTS))
                          .order_by(Draft.id.desc()).limit(MAX_DRAFTS), base, cfg)
    if len(data.drafts) < MAX_DRAFTS:
        data.drafts += _drafts(s, select(Draft).where(
            *open_first, Draft.state.not_in(OPEN_DRAFTS),
            Draft.updated_at >= at - timedelta(days=14))
            .order_by(Draft.id.desc()).limit(MAX_DRAFTS - len(data.drafts)), base, cfg)
    if comms:
        data.saved_replies = saved_replies.home_lines(s)
    if approve_for or admin:
        accounts = [a.id for a in s.scalars(select(Account)) if admin or a.name in approve_for]
        pending = (Draft.state == "pending", Draft.account_id.in_(accounts))
        data.approvals = _drafts(s, select(Draft).where(*pending).order_by(Draft.id)
                                 .limit(MAX_APPROVALS), base, cfg)
        data.approvals_total = s.scalar(select(func.count()).select_from(Draft)
                                        .where(*pending)) or 0
    if admin:
        everything = _waiting(rt, s, None, at)
        data.queues = []
        for name in [x.name for x in cfg.services] + [COMMS]:
            mine = [w for w, svc in everything if svc == name]
            data.queues.append(ServiceQueue(name, len(mine), sum(1 for w in mine if w.overdue),
                                            min((w.arrived_at for w in mine), default=None)))
        data.system = _system(s, cfg)
    return data


def _system(s: Session, cfg: Config) -> list[str]:
    by_status = dict(s.execute(select(OutboxMessage.status, func.count())
                               .group_by(OutboxMessage.status)).all())
    failed = s.scalar(select(func.count()).select_from(Draft)
                      .where(Draft.state == "failed")) or 0
    lines = [f"Slack messages waiting: {by_status.get('pending', 0)}"
             + (f" · blocked: {by_status['blocked']}" if by_status.get("blocked") else "")
             + (f" · refused by Slack: {by_status['failed']}" if by_status.get("failed") else ""),
             f"Drafts whose publishing failed: {failed}"]
    for handle, network, polled, snap in s.execute(
            select(Account.handle, Account.network, PollCursor.updated_at,
                   select(func.max(FollowerSnapshot.day))
                   .where(FollowerSnapshot.account_id == Account.id).scalar_subquery())
            .outerjoin(PollCursor, PollCursor.account_id == Account.id).order_by(Account.id)):
        lines.append(f"{escape(account_label(handle, network))}: last polled " + (ago(polled, cfg.tz) if polled else "never")
                     + (f" · followers counted {snap:%d %b}" if snap else ""))
    return lines


def build_home(rt: Runtime, user: str) -> dict[str, Any]:
    with reading(rt.sessions) as s:
        view = home_view(home_data(rt, s, user))
        return calendar.add_to_home(rt, s, view)  # this week's calendar (issue 21)


def _digest(view: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()


def _insert(s: Session):  # type: ignore[no-untyped-def]
    return pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


def publish_home(rt: Runtime, user: str, *, opened: bool = False, force: bool = True) -> bool:
    """Build and publish one person's Home. `opened`: they just opened it (keep it fresh
    from now on). Without `force`, an unchanged Home is not sent. True if published."""
    view = build_home(rt, user)
    digest = _digest(view)
    t = now()
    with transaction(rt.sessions) as s:
        ins = _insert(s)(HomeView).values(user_id=user, opened_at=t)
        if opened:
            s.execute(ins.on_conflict_do_update(index_elements=["user_id"],
                                                set_={"opened_at": t}))
        else:
            s.execute(ins.on_conflict_do_nothing(index_elements=["user_id"]))
        row = s.get_one(HomeView, user)
        if not force and row.digest == digest:
            return False
    try:
        rt.slack.views_publish(user_id=user, view=view)
    except (SlackApiError, SlackClientError, OSError) as exc:
        log.warning("home not published", user=user, error=str(exc))
        return False
    with transaction(rt.sessions) as s:
        row = s.get_one(HomeView, user)
        row.digest, row.published_at = digest, now()
    return True


def refresh_homes(rt: Runtime, limit: int = REFRESH_BATCH) -> int:
    """Republish the Homes (opened lately) whose content changed. Returns how many."""
    since = now() - timedelta(days=KEEP_FRESH_DAYS)
    with reading(rt.sessions) as s:
        users = list(s.scalars(select(HomeView.user_id).where(HomeView.opened_at >= since)
                               .order_by(HomeView.published_at.is_not(None),
                                         HomeView.published_at)))
    published = 0
    for user in users:
        if published >= limit:
            break
        try:
            published += publish_home(rt, user, force=False)
        except Exception:  # one person's Home must not stop the others'
            log.exception("home refresh failed", user=user)
    return published


# ---------------------------------------------------------------- Home buttons


def open_post_modal(rt: Runtime, client: Any, body: dict[str, Any], *, schedule: bool) -> None:
    cfg = rt.settings.config
    view = new_post_modal([(a.name, account_label(a.handle, a.network)) for a in cfg.accounts],
                          schedule=schedule,
                          today=now().astimezone(cfg.tz).date(), tz_name=cfg.timezone)
    client.views_open(trigger_id=body["trigger_id"], view=view)


def submit_new_post(rt: Runtime, user: str, view: dict[str, Any]) -> dict[str, str] | None:
    """Create the draft from the New post modal; errors by block id, or None when stored."""
    values = (view.get("state") or {}).get("values") or {}

    def value(block: str, action: str, key: str) -> Any:
        return ((values.get(block) or {}).get(action) or {}).get(key)

    account = (value(hb.ACCOUNT_BLOCK, hb.ACCOUNT_ACTION, "selected_option") or {}).get("value")
    text = slash.clean_text(value(hb.TEXT_BLOCK, hb.TEXT_ACTION, "value") or "")
    if not account:
        return {hb.ACCOUNT_BLOCK: "Pick the account to post as."}
    if not text:
        return {hb.TEXT_BLOCK: "Write the post first."}
    cmd: slash.Post | slash.Schedule = slash.Post(account, text)
    if view.get("private_metadata") == "schedule":
        day = value(hb.DATE_BLOCK, hb.DATE_ACTION, "selected_date")
        clock = value(hb.TIME_BLOCK, hb.TIME_ACTION, "selected_time")
        try:
            cmd = slash.Schedule(account, datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M"),
                                 text)
        except (TypeError, ValueError):
            return {hb.DATE_BLOCK: "Pick a date and a time."}
    also = [o.get("value") for o in
            value(hb.ALSO_BLOCK, hb.ALSO_ACTION, "selected_options") or []]
    if any(a and a != account for a in also):  # a campaign (issue 21)
        more = [a for a in dict.fromkeys(also) if a and a != account]
        return campaigns.from_modal(rt, user, cmd, [account, *more],
                                    value(hb.CAMPAIGN_BLOCK, hb.CAMPAIGN_ACTION, "value"))
    done = drafting.submit(rt, user, cmd, via="home")
    if done.error is not None:
        block = hb.DATE_BLOCK if "past" in done.error.message else hb.TEXT_BLOCK
        return {block: done.error.message[:150]}
    if done.refusal is not None:
        return {hb.ACCOUNT_BLOCK: done.refusal[:150]}
    return None
