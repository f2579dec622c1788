"""Triage: every new mention gets a priority and a sentiment, in the transaction that
stores it, so its alert shows both from the start.

- **Priority**: `urgent` when the text has one of its services' `urgent_keywords`
  (whole words or phrases, any case; a mention routed to no service is checked against
  every service's) or a safeguarding term; else `normal`. Urgent mentions have the
  shorter `urgent_sla_hours` (the service's, else `[insight]`'s), an urgent reminder of
  their own (services/reminders.py), and come first in App Home's queue.
- **Sentiment**: VADER (vaderSentiment, its lexicon bundled with the package: no
  network, no model download), compound score ≥ 0.05 positive, ≤ -0.05 negative.
- **Corrections**: staff who may act on the alert pick the right value from its
  "Triage" menu: a compare-and-set on the mention, a `triage_corrections` row (counted in
  `/social stats` and the weekly report) and an audit record `mention.triage_corrected`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.config import Config
from bot.domain.triage import (
    NORMAL,
    PRIORITIES,
    SENTIMENTS,
    URGENT,
    Correction,
    priority,
    sentiment,
)
from bot.models import Alert, Mention, TriageCorrection
from bot.services import audit
from bot.services.alerts import refresh_alerts


def classify(s: Session, cfg: Config, mention_ids: Sequence[int]) -> None:
    """Priority and sentiment for mentions just stored (their alerts already inserted)."""
    if not mention_ids:
        return
    services: dict[int, list[str]] = {}
    for mid, service in s.execute(select(Alert.mention_id, Alert.service).where(
            Alert.mention_id.in_(list(mention_ids)), Alert.service.is_not(None))):
        services.setdefault(mid, []).append(service)
    rows = []
    for mid, text, escalated in s.execute(select(Mention.id, Mention.text, Mention.escalated)
                                          .where(Mention.id.in_(list(mention_ids)))).all():
        prio, reason = priority(cfg, services.get(mid, []), text, bool(escalated))
        tone, score = sentiment(text)
        rows.append({"id": mid, "priority": prio, "priority_reason": reason,
                     "sentiment": tone, "sentiment_score": score})
    if rows:  # one executemany (a burst of mentions is one statement, not one each)
        s.execute(update(Mention), rows)


# ------------------------------------------------------------------ corrections


def correct(s: Session, c: Correction, user: str) -> tuple[bool, str]:
    """Set the mention's priority or sentiment (CAS on the value shown), record and audit
    the correction, refresh its alerts."""
    alert = s.get(Alert, c.alert_id)
    if alert is None:
        return False, "That alert no longer exists."
    mention = s.get_one(Mention, alert.mention_id)
    column = Mention.priority if c.field == "priority" else Mention.sentiment
    old = mention.priority if c.field == "priority" else mention.sentiment
    if old == c.value:
        return False, f"{mention.ref} is already marked {c.value}."
    values: dict[str, Any] = {c.field: c.value}
    if c.field == "priority":
        values["priority_reason"] = "set by staff" if c.value == URGENT else None
    done = s.execute(update(Mention).where(Mention.id == mention.id, column == old)
                     .values(**values)).rowcount
    if done != 1:
        return False, f"{mention.ref} was changed by someone else meanwhile; look again."
    s.add(TriageCorrection(mention_id=mention.id, field=c.field, old_value=old,
                           new_value=c.value, corrected_by=user))
    audit.record(s, actor=user, action="mention.triage_corrected", subject_kind="mention",
                 subject_id=mention.id, details={"field": c.field, "from": old, "to": c.value,
                                                 "alert": alert.id})
    refresh_alerts(s, mention.id)
    return True, f"{mention.ref}: {c.field} is now {c.value}."


def corrected_ids(s: Session, mention_ids: Sequence[int]) -> set[int]:
    if not mention_ids:
        return set()
    return set(s.scalars(select(TriageCorrection.mention_id).where(
        TriageCorrection.mention_id.in_(list(mention_ids)))))


# ------------------------------------------------------------------ stats and report


def breakdown(s: Session, start: datetime, end: datetime, services: Sequence[str] | None = None
              ) -> tuple[Counter[str], Counter[str], int]:
    """Mentions that arrived in [start, end) by priority and by sentiment, and how many
    triage corrections were made in it."""
    q = select(Mention.id, Mention.priority, Mention.sentiment).where(
        Mention.fetched_at >= start, Mention.fetched_at < end)
    if services is not None:
        q = q.where(Mention.id.in_(select(Alert.mention_id).where(
            Alert.service.in_(list(services)), Alert.active.is_(True))))
    prio: Counter[str] = Counter()
    tone: Counter[str] = Counter()
    for _mid, p, t in s.execute(q):
        prio[p or NORMAL] += 1
        tone[t or "unknown"] += 1
    corrections = s.scalar(select(func.count()).select_from(TriageCorrection).where(
        TriageCorrection.created_at >= start, TriageCorrection.created_at < end)) or 0
    return prio, tone, int(corrections)


def breakdown_lines(s: Session, start: datetime, end: datetime,
                    services: Sequence[str] | None = None) -> list[str]:
    prio, tone, corrections = breakdown(s, start, end, services)
    return [
        "By priority: " + " · ".join(f"{p} *{prio.get(p, 0)}*" for p in PRIORITIES),
        "By sentiment: " + " · ".join(f"{t} *{tone.get(t, 0)}*" for t in SENTIMENTS)
        + f" · Triage corrections: *{corrections}*",
    ]
