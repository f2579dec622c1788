"""Response-time reminders: a thread reply on a mention's alert when it passes 75% and
100% of its service's SLA (working hours) unanswered, once each; and a daily digest of
breaches for the comms team. Every message goes through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot import logs
from bot.blockkit.alerts import slack_date
from bot.clock import now
from bot.config import Config
from bot.db import transaction
from bot.domain.stats import hours_text
from bot.domain.triage import service_sla_hours, sla_hours
from bot.domain.working_hours import WorkingHours
from bot.models import Alert, Draft, InsightRun, Mention, SlaReminder
from bot.runtime import Runtime
from bot.services import audit
from bot.services.outbox import enqueue
from bot.services.stats import arrival

log = logs.get("commsdesk.reminders")

LEVELS = (75, 100)
# an urgent mention (services/triage) has its own, earlier reminder at half its (shorter)
# target, posted in its alert's thread and to the comms channel
URGENT_LEVEL = 50
URGENT_LEVELS = (URGENT_LEVEL, *LEVELS)
UNANSWERED = ("open", "claimed")
REMINDER_CHUNK = 500  # alerts examined per query by check_reminders
DIGEST_LINES = 25


def _insert(s: Session):  # type: ignore[no-untyped-def]
    return pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


def claim_run(s: Session, kind: str, key: str) -> bool:
    """True for the one caller (of any replica) that gets to do this period's work."""
    won = s.execute(_insert(s)(InsightRun).values(kind=kind, key=key, created_at=now())
                    .on_conflict_do_nothing(index_elements=["kind", "key"])
                    .returning(InsightRun.kind)).scalar()
    return won is not None


def comms_channel(cfg: Config) -> str:
    return cfg.insight.comms_channel or cfg.slack.default_channel


# ---------------------------------------------------------------- reminders


@dataclass(frozen=True)
class _Due:
    alert_id: int
    mention_id: int
    levels: dict[int, datetime]  # level -> when it was reached (only the ones reached)
    sla: float


def _reminder_text(level: int, mention: Mention, sla: float, due: datetime,
                   elapsed_hours: float, pending: int, cfg: Config) -> str:
    when = slack_date(due, cfg.tz)
    if mention.priority == "urgent":
        head = (f":red_circle: *Urgent* *{mention.ref}* has no answer yet: {level}% of its "
                f"{sla:g}-working-hour urgent target ({hours_text(elapsed_hours)} so far).")
    elif level >= 100:
        head = (f":rotating_light: *{mention.ref}* has passed its {sla:g}-working-hour "
                f"response target without an answer (it was due {when}).")
    else:
        head = (f":hourglass_flowing_sand: *{mention.ref}* has waited "
                f"{hours_text(elapsed_hours)} of its {sla:g} working hours ({level}%) "
                "for an answer.")
    if mention.state == "claimed" and mention.claimed_by:
        who = f" <@{mention.claimed_by}> is on it."
    else:
        who = " Nobody has claimed it yet: *I'm on it*, *Draft reply* or *No reply needed* above."
    if pending:
        who += " A draft reply is waiting for approval."
    return head + who


def check_reminders(rt: Runtime) -> int:
    """Queue the reminders now due (each level once per alert). Returns how many."""
    cfg = rt.settings.config
    if not cfg.insight.reminders:
        return 0
    t = now()
    hours = WorkingHours.from_config(cfg)
    due: list[_Due] = []
    # in id-ordered chunks of plain columns: with a large backlog of unanswered mentions
    # (100,000 in bench/memory_soak.py) loading them all as ORM objects every minute
    # took hundreds of MB at once
    last_id = 0
    with rt.sessions() as s:
        while True:
            rows = s.execute(
                select(Alert.id, Alert.service, Mention.id.label("mention_id"),
                       Mention.posted_at, Mention.fetched_at, Mention.priority)
                .join(Mention, Mention.id == Alert.mention_id)
                .where(Alert.active.is_(True), Alert.service.is_not(None),
                       Alert.ts.is_not(None), Mention.state.in_(UNANSWERED),
                       Alert.id > last_id)
                .order_by(Alert.id).limit(REMINDER_CHUNK)).all()
            if not rows:
                break
            last_id = rows[-1].id
            done: set[tuple[int, int]] = {(a, lvl) for a, lvl in s.execute(
                select(SlaReminder.alert_id, SlaReminder.level)
                .where(SlaReminder.alert_id.in_([r.id for r in rows])))}
            for row in rows:
                alert_id = row.id
                levels = URGENT_LEVELS if row.priority == "urgent" else LEVELS
                if all((alert_id, lvl) in done for lvl in levels):
                    continue
                sla = sla_hours(cfg, row.service, row.priority)
                arrived = arrival(row)  # uses posted_at and fetched_at only
                reached = {}
                for lvl in levels:
                    if (alert_id, lvl) in done:
                        continue
                    at = hours.add(arrived, sla * 3600.0 * lvl / 100.0)
                    if t >= at:
                        reached[lvl] = at
                if reached:
                    due.append(_Due(alert_id, row.mention_id, reached, sla))
    sent = 0
    for d in due:
        sent += _remind(rt, d, hours, t)
    if sent:
        rt.kick_outbox()
    return sent


def _remind(rt: Runtime, d: _Due, hours: WorkingHours, t: datetime) -> int:
    cfg = rt.settings.config
    with transaction(rt.sessions) as s:
        alert = s.get_one(Alert, d.alert_id)
        mention = s.get_one(Mention, d.mention_id)
        if mention.state not in UNANSWERED or not alert.active:
            return 0
        top = max(d.levels)
        inserted = []
        for lvl, at in sorted(d.levels.items()):
            new_id = s.execute(_insert(s)(SlaReminder).values(
                alert_id=alert.id, mention_id=mention.id, service=alert.service, level=lvl,
                due_at=at, sent=(lvl == top), created_at=t)
                .on_conflict_do_nothing(index_elements=["alert_id", "level"])
                .returning(SlaReminder.id)).scalar()
            if new_id is not None:
                inserted.append(lvl)
        if top not in inserted:
            return 0  # another replica got there first
        pending = s.scalar(select(func.count()).select_from(Draft).where(
            Draft.mention_id == mention.id,
            Draft.state.in_(("pending", "approved", "publishing")))) or 0
        elapsed = hours.hours_between(arrival(mention), t)
        text = _reminder_text(top, mention, d.sla, d.levels[top], elapsed, pending, cfg)
        enqueue(s, alert.channel, "notice", payload={"text": text, "thread_ts": alert.ts})
        if mention.priority == "urgent" and alert.channel != comms_channel(cfg):
            enqueue(s, comms_channel(cfg), "notice", payload={"text": (
                f":red_circle: *Urgent* *{mention.ref}* in <#{alert.channel}> has no answer "
                f"yet ({top}% of its {d.sla:g}-working-hour target).")})
        audit.record(s, actor="system", action="mention.sla_reminder", subject_kind="mention",
                     subject_id=mention.id,
                     details={"service": alert.service, "channel": alert.channel, "level": top,
                              "sla_hours": d.sla, "due_at": d.levels[top].isoformat()})
    log.info("sla reminder queued", mention=d.mention_id, level=top)
    return 1


# ---------------------------------------------------------------- daily digest


def digest_text(s: Session, cfg: Config, since: datetime, t: datetime) -> str | None:
    hours = WorkingHours.from_config(cfg)
    rows = s.execute(
        select(SlaReminder, Mention, Alert)
        .join(Mention, Mention.id == SlaReminder.mention_id)
        .join(Alert, Alert.id == SlaReminder.alert_id)
        .where(SlaReminder.level == 100, SlaReminder.created_at >= since,
               SlaReminder.created_at < t)
        .order_by(SlaReminder.id)).all()
    still = s.execute(
        select(func.count(func.distinct(SlaReminder.mention_id)))
        .join(Mention, Mention.id == SlaReminder.mention_id)
        .join(Alert, Alert.id == SlaReminder.alert_id)
        .where(SlaReminder.level == 100, Mention.state.in_(UNANSWERED),
               Alert.active.is_(True))).scalar() or 0
    if not rows and not still:
        return None
    lines = [f":rotating_light: *Response targets missed since {slack_date(since, cfg.tz)}:* "
             f"{len(rows)}"]
    for _rem, mention, alert in rows[:DIGEST_LINES]:
        if mention.state in UNANSWERED:
            state = f"still unanswered after {hours_text(hours.hours_between(arrival(mention), t))}"
        elif mention.state == "replied":
            state = "replied since"
        else:
            state = f"{mention.state} since"
        lines.append(f"• *{mention.ref}* · {alert.service} · target {service_sla_hours(cfg, alert.service):g} "
                     f"working h · {state} · <#{alert.channel}>")
    if len(rows) > DIGEST_LINES:
        lines.append(f"…and {len(rows) - DIGEST_LINES} more (`commsdesk stats` has the figures).")
    lines.append(f"Unanswered past their target right now: *{still}*.")
    return "\n".join(lines)


def run_digest(rt: Runtime) -> bool:
    """Post the day's digest to comms once, on working days after `insight.digest_time`."""
    cfg = rt.settings.config
    if not cfg.insight.daily_digest:
        return False
    t = now()
    local = t.astimezone(cfg.tz)
    if not WorkingHours.from_config(cfg).is_working_day(local.date()) or \
            local.time() < cfg.insight.digest_time:
        return False
    with transaction(rt.sessions) as s:
        previous = s.scalar(select(func.max(InsightRun.created_at))
                            .where(InsightRun.kind == "digest"))
        if not claim_run(s, "digest", local.date().isoformat()):
            return False
        since = previous or t - timedelta(days=1)
        text = digest_text(s, cfg, since, t)
        if text is None:
            return False
        enqueue(s, comms_channel(cfg), "notice", payload={"text": text})
    rt.kick_outbox()
    log.info("daily digest queued")
    return True
